"""The ``usage_triggers``, ``usage_counts`` and ``usage_trigger_fires`` tables. Blocking calls:
run them on the store executor. A trigger's webhook secret is sealed with the master key and
shown once, in the answer that created it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from runtime.errors import (
    UNKNOWN_PROPERTY,
    InvalidInputError,
    LimitExceededError,
    NotFoundError,
)
from runtime.outbound import OutboundRules
from runtime.signing import new_secret
from runtime.store.crypto import Keyring
from runtime.store.db import DATABASE_ERRORS, serialized, unavailable, write_transaction
from runtime.store.schema import usage_counts, usage_trigger_fires, usage_triggers
from runtime.store.service.common import iso, new_id, require_tenant

__all__ = ["MAX_PER_TENANT", "PERIODS", "Firing", "UsageTriggerStore", "period_start"]

PERIODS = ("hour", "day", "month")
MAX_PER_TENANT = 10
MAX_THRESHOLD = 1_000_000_000
_FIELDS = {"period", "threshold", "url"}
_t = usage_triggers.c


def period_start(period: str, moment: datetime) -> datetime:
    """The start (UTC) of the hour, day or month that holds ``moment``."""
    moment = moment.astimezone(UTC)
    if period == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    if period == "day":
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class Firing:
    """A trigger that crossed its threshold in a period: its webhook is due once."""

    trigger_id: str
    tenant: str
    period: str
    period_start: datetime
    threshold: int
    count: int


class UsageTriggerStore:
    def __init__(
        self, engine: Engine, keyring: Keyring, *, allow_hosts: Iterable[str] = ()
    ) -> None:
        """``allow_hosts``: the operator's ``outbound_allow_hosts`` (local fakes in tests)."""
        self._engine = engine
        self._keys = keyring
        self._rules = OutboundRules(allow_hosts)
        self._postgres = engine.dialect.name == "postgresql"

    # -- the API's calls --------------------------------------------------------------------

    def create(self, tenant: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """A new trigger from ``body`` (period, threshold, url); its answer, with the secret."""
        period, threshold, url = _validated(body, self._rules)
        trigger_id = new_id("utr_")
        secret = new_secret()
        moment = datetime.now(UTC)
        with write_transaction(self._engine) as conn:
            require_tenant(conn, tenant)
            serialized(conn, f"usage_triggers:{tenant}")  # the count below holds until commit
            held = conn.execute(
                select(func.count()).select_from(usage_triggers).where(_t.tenant == tenant)
            ).scalar_one()
            if held >= MAX_PER_TENANT:
                raise LimitExceededError(
                    f"a tenant has at most {MAX_PER_TENANT} usage triggers", field="(body)"
                )
            conn.execute(
                usage_triggers.insert().values(
                    id=trigger_id,
                    tenant=tenant,
                    period=period,
                    threshold=threshold,
                    url=url,
                    secret=self._keys.seal(secret.encode(), _context(trigger_id)),
                    created_at=moment,
                    updated_at=moment,
                )
            )
        row = {"id": trigger_id, "period": period, "threshold": threshold, "url": url}
        return {**row, "created_at": iso(moment), "secret": secret}

    def listing(self, tenant: str) -> list[dict[str, Any]]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(_t.id, _t.period, _t.threshold, _t.url, _t.created_at)
                .where(_t.tenant == tenant)
                .order_by(_t.created_at, _t.id)
            ).all()
        return [_shown(row) for row in rows]

    def get(self, tenant: str, trigger_id: str) -> dict[str, Any]:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(_t.id, _t.period, _t.threshold, _t.url, _t.created_at).where(
                    _t.tenant == tenant, _t.id == trigger_id
                )
            ).first()
        if row is None:
            raise NotFoundError(f"no usage trigger {trigger_id!r}")
        return _shown(row)

    def delete(self, tenant: str, trigger_id: str) -> None:
        with write_transaction(self._engine) as conn:
            done = conn.execute(
                delete(usage_triggers).where(_t.tenant == tenant, _t.id == trigger_id)
            )
            if done.rowcount != 1:
                raise NotFoundError(f"no usage trigger {trigger_id!r}")
            conn.execute(
                delete(usage_trigger_fires).where(usage_trigger_fires.c.trigger_id == trigger_id)
            )

    # -- the counter's and the webhook's calls ------------------------------------------------

    def add_counts(self, counts: Mapping[str, int], moment: datetime) -> list[Firing]:
        """Add ``counts`` (messages per tenant) to the periods holding ``moment``, for the
        tenants that have triggers; the triggers that reached their threshold and had not
        fired in this period (each is returned once, ever, across nodes)."""
        try:
            with write_transaction(self._engine) as conn:
                return self._add_counts(conn, counts, moment)
        except DATABASE_ERRORS as exc:
            raise unavailable(self._engine, "counting usage", exc) from None

    def _add_counts(
        self, conn: Connection, counts: Mapping[str, int], moment: datetime
    ) -> list[Firing]:
        triggers = conn.execute(
            select(_t.id, _t.tenant, _t.period, _t.threshold).where(_t.tenant.in_(list(counts)))
        ).all()
        totals: dict[tuple[str, str], int] = {}
        firings: list[Firing] = []
        for trigger in sorted(triggers, key=lambda t: (t.tenant, t.period, t.id)):
            key = (trigger.tenant, trigger.period)
            start = period_start(trigger.period, moment)
            if key not in totals:
                totals[key] = self._count(conn, trigger.tenant, trigger.period, start, counts)
            total = totals[key]
            if total < trigger.threshold:
                continue
            fired = self._upsert(usage_trigger_fires).values(
                trigger_id=trigger.id, period_start=start, count=total, fired_at=moment
            )
            fired = fired.on_conflict_do_nothing().returning(usage_trigger_fires.c.trigger_id)
            if conn.execute(fired).first() is not None:
                firings.append(
                    Firing(
                        trigger.id, trigger.tenant, trigger.period, start, trigger.threshold, total
                    )
                )
        return firings

    def _count(
        self, conn: Connection, tenant: str, period: str, start: datetime, counts: Mapping[str, int]
    ) -> int:
        """Add this batch's messages of ``tenant`` to its count for the period; the new count."""
        added = counts[tenant]
        statement = self._upsert(usage_counts).values(
            tenant=tenant, period=period, period_start=start, count=added
        )
        statement = statement.on_conflict_do_update(
            index_elements=["tenant", "period", "period_start"],
            set_={"count": usage_counts.c.count + added},
        ).returning(usage_counts.c.count)
        return int(conn.execute(statement).scalar_one())

    def _upsert(self, table: Any) -> Any:
        return pg_insert(table) if self._postgres else sqlite_insert(table)

    def target(self, trigger_id: str) -> tuple[str, str] | None:
        """The trigger's ``(url, secret)``, or None once it was deleted."""
        with self._engine.connect() as conn:
            row = conn.execute(select(_t.url, _t.secret).where(_t.id == trigger_id)).first()
        if row is None:
            return None
        return row.url, self._keys.open(row.secret, _context(trigger_id)).decode()

    def purge(self, before: datetime) -> None:
        """Drop counts and firings of periods that started before ``before``."""
        with write_transaction(self._engine) as conn:
            conn.execute(delete(usage_counts).where(usage_counts.c.period_start < before))
            conn.execute(
                delete(usage_trigger_fires).where(usage_trigger_fires.c.period_start < before)
            )


def _validated(body: Mapping[str, Any], rules: OutboundRules) -> tuple[str, int, str]:
    if not isinstance(body, Mapping):
        raise InvalidInputError("must be an object", field="(body)")
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise InvalidInputError(UNKNOWN_PROPERTY, field=unknown[0])
    for required in ("period", "threshold", "url"):
        if body.get(required) is None:
            raise InvalidInputError("missing (it is required)", field=required)
    period = body.get("period")
    if period not in PERIODS:
        raise InvalidInputError("must be one of hour, day, month", field="period")
    threshold = body.get("threshold")
    if isinstance(threshold, bool) or not isinstance(threshold, int):
        raise InvalidInputError("must be a whole number", field="threshold")
    if not 1 <= threshold <= MAX_THRESHOLD:
        raise InvalidInputError(f"must be from 1 to {MAX_THRESHOLD}", field="threshold")
    url = body.get("url")
    if not isinstance(url, str) or len(url) > 2048:
        raise InvalidInputError("must be a URL of at most 2048 characters", field="url")
    return str(period), threshold, rules.check(url, "url")  # no private address (SSRF)


def _shown(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "period": row.period,
        "threshold": row.threshold,
        "url": row.url,
        "created_at": iso(row.created_at),
    }


def _context(trigger_id: str) -> str:
    """Associated data of a trigger's sealed secret: it opens only in its own row."""
    return f"usage_triggers.secret:{trigger_id}"
