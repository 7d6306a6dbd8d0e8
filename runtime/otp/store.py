"""Enrollments and challenges in the database: the rows, and the one check of a code.

Blocking calls (the service runs them on the store executor). Every check is one write
transaction that locks the row (``BEGIN IMMEDIATE`` on SQLite, ``FOR UPDATE`` on PostgreSQL):
two nodes checking the same code at once count two attempts, and at most one of them wins a
right code, so a code is used once and wrong guesses stop at the limit on any number of nodes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Engine, Table, desc, select, update
from sqlalchemy.dialects import postgresql, sqlite

from runtime.errors import NotFoundError
from runtime.otp.codes import CodeHasher
from runtime.store.db import write_transaction
from runtime.store.schema import phone_challenges, phone_enrollments
from runtime.store.service.common import dumps, loads, new_id

__all__ = ["Check", "Kind", "OtpStore", "Outcome"]

Kind = Literal["enrollment", "challenge"]
Outcome = Literal["ok", "wrong", "expired", "exhausted", "used", "not_sent", "not_found"]

_TABLES: dict[Kind, Table] = {"enrollment": phone_enrollments, "challenge": phone_challenges}
_PREFIX: dict[Kind, str] = {"enrollment": "pen_", "challenge": "pch_"}
_DONE: dict[Kind, tuple[str, str]] = {
    "enrollment": ("confirmed", "confirmed_at"),
    "challenge": ("verified", "verified_at"),
}


@dataclass(frozen=True)
class Check:
    """What checking one code found; ``row`` is the row after the check (None: not found)."""

    outcome: Outcome
    attempts_left: int
    row: dict[str, Any] | None


class OtpStore:
    """The Verify API's rows. ``clock`` is for tests of expiry (UTC ``datetime``)."""

    def __init__(
        self,
        engine: Engine,
        hasher: CodeHasher,
        *,
        ttl: float,
        max_attempts: int,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.engine = engine
        self.hasher = hasher
        self.ttl = ttl
        self.max_attempts = max_attempts
        self.clock = clock or (lambda: datetime.now(UTC))
        self._dialect = postgresql if engine.dialect.name == "postgresql" else sqlite

    # -- making a row -----------------------------------------------------------------------

    def create(
        self,
        kind: Kind,
        *,
        tenant: str,
        user_id: str,
        channel: str,
        locale: str,
        code: str,
        digest: str,
        idempotency_key: str | None,
        phone_number: str | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """A new row holding ``code``'s HMAC, and True; or, when ``idempotency_key`` was used
        before, the row that request made, and False (nothing new is stored).

        A challenge goes to the user's latest confirmed enrollment: :class:`NotFoundError`
        when there is none; its channel is the enrollment's unless ``channel`` names one.
        """
        table = _TABLES[kind]
        now = self.clock()
        id = new_id(_PREFIX[kind])
        values: dict[str, Any] = {
            "id": id,
            "tenant": tenant,
            "user_id": user_id,
            "channel": channel,
            "locale": locale,
            "status": "pending",
            "idempotency_key": idempotency_key,
            "request_digest": digest,
            "code_hash": self.hasher.digest(id, code),
            "expires_at": now + timedelta(seconds=self.ttl),
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        }
        with write_transaction(self.engine) as conn:
            if idempotency_key is not None:
                found = self._by_key(conn, table, tenant, idempotency_key)
                if found is not None:
                    return found, False
            if kind == "challenge":
                enrollment = self._enrolled(conn, tenant, user_id)
                values["enrollment_id"] = enrollment["id"]
                values["channel"] = channel or enrollment["channel"]
            else:
                assert phone_number is not None
                values["phone_number"] = phone_number
            # a node that won the same key meanwhile (PostgreSQL): nothing inserted
            statement = self._dialect.insert(table).values(values).on_conflict_do_nothing()
            inserted = conn.execute(statement.returning(table.c.id)).first() is not None
        if not inserted and idempotency_key is not None:
            with self.engine.connect() as conn:
                found = self._by_key(conn, table, tenant, idempotency_key)
            if found is not None:
                return found, False
        return self.get(kind, tenant, id), True

    def phone_of(self, challenge: dict[str, Any]) -> str:
        """The phone number a challenge goes to (its enrollment's)."""
        return str(
            self.get("enrollment", challenge["tenant"], challenge["enrollment_id"])["phone_number"]
        )

    def record_delivery(
        self,
        kind: Kind,
        tenant: str,
        id: str,
        delivery: dict[str, Any],
        *,
        sent: bool,
        only_first: bool = False,
    ) -> bool:
        """Keep the delivery's summary on the row; a code never sent can never be checked.
        ``only_first``: only when the row has none yet (an interrupted delivery, accounted
        for by the first request that finds it). Whether the row took it."""
        table = _TABLES[kind]
        values: dict[str, Any] = {"delivery": dumps(delivery), "updated_at": self.clock()}
        if not sent:
            values["status"] = "not_sent"
        where = [table.c.id == id, table.c.tenant == tenant]
        if only_first:
            where.append(table.c.delivery.is_(None))
        else:
            where.append(table.c.status == "pending")
        with write_transaction(self.engine) as conn:
            done = conn.execute(update(table).where(*where).values(values))
        return bool(done.rowcount == 1)

    def get(self, kind: Kind, tenant: str, id: str) -> dict[str, Any]:
        """The row ``id`` of ``tenant``; :class:`NotFoundError` (another tenant's too)."""
        table = _TABLES[kind]
        with self.engine.connect() as conn:
            row = (
                conn.execute(select(table).where(table.c.id == id, table.c.tenant == tenant))
                .mappings()
                .first()
            )
        if row is None:
            raise NotFoundError(f"The {kind} does not exist.")
        return _plain(row)

    # -- checking a code --------------------------------------------------------------------

    def check(self, kind: Kind, tenant: str, id: str, code: str) -> Check:
        """Count one attempt at ``code`` and say how it went (see the module docstring)."""
        table = _TABLES[kind]
        done, done_at = _DONE[kind]
        now = self.clock()
        with write_transaction(self.engine) as conn:
            query = select(table).where(table.c.id == id, table.c.tenant == tenant)
            found = conn.execute(query.with_for_update()).mappings().first()
            if found is None:
                return Check("not_found", 0, None)
            row = _plain(found)
            left = max(0, self.max_attempts - row["attempts"])
            status = row["status"]
            if status == done:
                return Check("used", left, row)
            if status == "not_sent":
                return Check("not_sent", left, row)
            if status == "exhausted" or left == 0:
                return Check("exhausted", 0, row)
            if now >= _utc(row["expires_at"]):
                return Check("expired", left, row)
            attempts = row["attempts"] + 1
            values: dict[str, Any] = {"attempts": attempts, "updated_at": now}
            if self.hasher.matches(id, code, row["code_hash"]):
                outcome: Outcome = "ok"
                values.update({"status": done, done_at: now})
            else:
                outcome = "wrong"
                if attempts >= self.max_attempts:
                    values["status"] = "exhausted"
            conn.execute(update(table).where(table.c.id == id).values(values))
        row.update(values)
        return Check(outcome, max(0, self.max_attempts - attempts), row)

    # -- helpers ----------------------------------------------------------------------------

    @staticmethod
    def _by_key(conn: Any, table: Table, tenant: str, key: str) -> dict[str, Any] | None:
        found = (
            conn.execute(
                select(table).where(table.c.tenant == tenant, table.c.idempotency_key == key)
            )
            .mappings()
            .first()
        )
        return None if found is None else _plain(found)

    @staticmethod
    def _enrolled(conn: Any, tenant: str, user_id: str) -> dict[str, Any]:
        t = phone_enrollments.c
        found = (
            conn.execute(
                select(phone_enrollments)
                .where(t.tenant == tenant, t.user_id == user_id, t.status == "confirmed")
                .order_by(desc(t.confirmed_at))
                .limit(1)
            )
            .mappings()
            .first()
        )
        if found is None:
            raise NotFoundError("The user has no confirmed phone enrollment.")
        return _plain(found)


def _plain(row: Any) -> dict[str, Any]:
    values = dict(row)
    values["delivery"] = loads(values.get("delivery"), None)
    return values


def _utc(moment: datetime) -> datetime:
    """SQLite gives naive datetimes back: they were stored in UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
