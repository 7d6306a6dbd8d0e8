"""Idempotency records: the same key never sends twice, on any node, and returns the first report
(for as long as its record is kept).

A request with a key first *claims* it with an INSERT on a unique (tenant, key); the database
decides the race, so two nodes sharing PostgreSQL cannot both win. The winner sends and then
stores its report; a loser reads the stored report (or waits for it). A claim left pending by a
crash stays pending: the code may have gone out, so it is never sent again under that key. Only
a delivery known never to have reached a provider gives its claim back (:meth:`release`).
Records older than the retention (days) are deleted by :meth:`purge`, and their keys are free.
A claim keeps where its delivery goes (recipient, channel, purpose), so that one a crash left
pending is accounted for once, by whichever comes first: the sweep (:meth:`stale`, then
:meth:`settle`) or a retry that finds it.

Every call is one statement on a kept connection (:mod:`runtime.store.kept`), compiled once:
on PostgreSQL one round trip, on SQLite no pool checkout. The calls block; the pipeline runs
them through :class:`~runtime.store.executor.StoreExecutor`.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, bindparam, delete, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite

from runtime.errors import StoreUnavailableError
from runtime.ids import new_id
from runtime.store.db import (
    DATABASE_ERRORS,
    describe,
    prepare,
    type_processors,
    unavailable,
    write_transaction,
)
from runtime.store.kept import KeptConnections
from runtime.store.schema import idempotency_records

__all__ = ["PURGE_BATCH", "STALE_BATCH", "Claim", "IdempotencyStore", "StaleClaim", "fingerprint"]

PURGE_BATCH = 500
"""Records deleted per :meth:`IdempotencyStore.purge` call, in one transaction: a write lock
of a few milliseconds."""
STALE_BATCH = 100
"""Stale pending claims read by one :meth:`IdempotencyStore.stale` call."""

_t = idempotency_records.c
_KEY = (_t.tenant == bindparam("w_tenant"), _t.key == bindparam("w_key"))
_READ = select(_t.fingerprint, _t.report, _t.created_at, _t.claim_id).where(*_KEY)
_COMPLETE = (
    update(idempotency_records)
    .where(*_KEY)
    .values(report=bindparam("report"), completed_at=bindparam("completed_at"))
)
_RELEASE = delete(idempotency_records).where(*_KEY, _t.report.is_(None))
# The answer for a claim a crash left pending, stored only while it is still pending and still
# the same claim (a key purged and claimed anew in between is another delivery's).
_SETTLE_VALUES: dict[str, Any] = {
    "report": bindparam("report"),
    "completed_at": bindparam("completed_at"),
}
_SETTLE = (
    update(idempotency_records)
    .where(*_KEY, _t.report.is_(None), _t.claim_id == bindparam("w_claim"))
    .values(_SETTLE_VALUES)
)
_SETTLE_ANY = (  # whichever claim holds the key (a retry job's own delivery)
    update(idempotency_records).where(*_KEY, _t.report.is_(None)).values(_SETTLE_VALUES)
)
_SETTLE_UNNAMED = (  # a claim made before claims had ids
    update(idempotency_records)
    .where(*_KEY, _t.report.is_(None), _t.claim_id.is_(None))
    .values(_SETTLE_VALUES)
)
# Same condition as the partial index ix_idempotency_records_pending: only it is read.
_STALE = (
    select(_t.tenant, _t.key, _t.recipient, _t.channel, _t.purpose, _t.created_at, _t.claim_id)
    .where(_t.report.is_(None), _t.recipient.is_not(None), _t.created_at < bindparam("cutoff"))
    .order_by(_t.created_at)
    .limit(STALE_BATCH)
)
_VALUES: dict[str, Any] = {
    "tenant": bindparam("tenant"),
    "key": bindparam("key"),
    "fingerprint": bindparam("fingerprint"),
    "created_at": bindparam("created_at"),
    "claim_id": bindparam("claim_id"),
    "recipient": bindparam("recipient"),
    "channel": bindparam("channel"),
    "purpose": bindparam("purpose"),
}


@functools.cache
def _claims_sql(count: int) -> str:
    """PostgreSQL: ``count`` claims in one INSERT, returning the keys it won."""
    row = (
        "(%s::VARCHAR, %s::VARCHAR, %s::VARCHAR, %s::TIMESTAMP WITH TIME ZONE, %s::VARCHAR, "
        "%s::VARCHAR, %s::VARCHAR, %s::VARCHAR)"
    )
    return (
        "INSERT INTO idempotency_records "
        "(tenant, key, fingerprint, created_at, claim_id, recipient, channel, purpose) "
        "VALUES " + ", ".join([row] * count) + " ON CONFLICT DO NOTHING RETURNING tenant, key"
    )


@functools.cache
def _completions_sql(count: int) -> str:
    """PostgreSQL: ``count`` reports stored by one UPDATE (returning the keys, so that the
    statement has rows to read)."""
    row = "(%s::VARCHAR, %s::VARCHAR, %s::TEXT, %s::TIMESTAMP WITH TIME ZONE)"
    return (
        "UPDATE idempotency_records AS r SET report = v.report, completed_at = v.completed_at "
        "FROM (VALUES " + ", ".join([row] * count) + ") AS v (tenant, key, report, completed_at) "
        "WHERE r.tenant = v.tenant AND r.key = v.key RETURNING r.key"
    )


def fingerprint(*parts: str) -> str:
    """A digest of what the request asks for, so a key reused for another message is caught."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


@dataclass(frozen=True)
class Claim:
    """The outcome of claiming a key: ``won`` (send now) or the record another request holds.

    ``created_at`` (UTC) is when the key was first claimed: a claim still pending (``report``
    None) long after it was made was left by a crash. ``claim_id`` names the claim that made
    the record (None for records older than it).
    """

    won: bool
    fingerprint: str
    report: str | None = None
    created_at: datetime | None = None
    claim_id: str | None = None


@dataclass(frozen=True)
class StaleClaim:
    """A pending claim older than the sweep's cut-off: where its delivery went, and when."""

    tenant: str
    key: str
    recipient: str
    channel: str
    purpose: str
    created_at: datetime | None
    claim_id: str | None


class IdempotencyStore:
    """Claims, completes and releases idempotency keys. Blocking calls: database errors and
    timeouts raise :class:`~runtime.errors.StoreUnavailableError`."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.database = describe(engine)
        self.local = engine.dialect.name == "sqlite"
        self._kept = KeptConnections(engine)
        # The report written at completion need not wait for PostgreSQL's WAL flush: lost in
        # a database crash, the claim stays pending and is answered outcome_unknown, never
        # sent again. The claim itself is durable. (One flush per message instead of two.)
        self._relaxed = self._kept if self.local else KeptConnections(engine, durable=False)
        dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
        claim = dialect.insert(idempotency_records).values(_VALUES).on_conflict_do_nothing()
        self._claim = prepare(engine, claim)
        self._read = prepare(engine, _READ)
        self._complete = prepare(engine, _COMPLETE)
        self._release = prepare(engine, _RELEASE)
        self._settle = prepare(engine, _SETTLE)
        self._settle_unnamed = prepare(engine, _SETTLE_UNNAMED)
        self._settle_any = prepare(engine, _SETTLE_ANY)
        self._to_db, self._from_db = type_processors(engine, _t.created_at)

    def claim(
        self,
        tenant: str,
        key: str,
        digest: str,
        recipient: str | None = None,
        channel: str | None = None,
        purpose: str | None = None,
    ) -> Claim:
        """Claim ``key`` for a request whose :func:`fingerprint` is ``digest``: won, or the
        record of the request that holds it. ``recipient``, ``channel`` and ``purpose`` say
        where the delivery goes (a claim without them is never swept: :meth:`stale`)."""
        claim_id = new_id()
        for _ in range(3):  # a holder that releases between our insert and read: try again
            now = datetime.now(UTC)
            row = {
                "tenant": tenant,
                "key": key,
                "fingerprint": digest,
                "created_at": self._to_db(now),
                "claim_id": claim_id,
                "recipient": recipient,
                "channel": channel,
                "purpose": purpose,
            }
            inserted, _ = self._kept.execute("claim", self._claim, row, repeatable=True)
            if inserted == 1:
                return Claim(won=True, fingerprint=digest, created_at=now, claim_id=claim_id)
            existing = self.get(tenant, key)
            if existing is not None:
                return _own(existing, claim_id)
        raise unavailable(self._engine, "claim (the key was released under it three times)")

    def claim_many(self, requests: list[tuple[str, ...]]) -> list[Claim | Exception]:
        """:meth:`claim` for several ``(tenant, key, digest[, recipient, channel, purpose])`` at
        once: one transaction for
        the inserts, so one commit (on PostgreSQL one WAL flush) for them all. A key the
        batch did not win (held already, or twice in the batch) is read as :meth:`claim`
        reads it; a failure there is that request's alone."""
        now = datetime.now(UTC)
        created = self._to_db(now)
        ids = [new_id() for _ in requests]
        rows = [
            {
                "tenant": request[0],
                "key": request[1],
                "fingerprint": request[2],
                "created_at": created,
                "claim_id": claim_id,
                "recipient": request[3] if len(request) > 3 else None,
                "channel": request[4] if len(request) > 4 else None,
                "purpose": request[5] if len(request) > 5 else None,
            }
            for request, claim_id in zip(requests, ids, strict=True)
        ]
        if self.local or len(rows) == 1:
            inserted = self._kept.execute_many("claim", self._claim, rows, repeatable=True)
        else:
            inserted = self._claim_rows(rows)
        outcomes: list[Claim | Exception] = []
        for (tenant, key, digest, *about), claim_id, count in zip(
            requests, ids, inserted, strict=True
        ):
            if count == 1:
                outcomes.append(
                    Claim(won=True, fingerprint=digest, created_at=now, claim_id=claim_id)
                )
                continue
            try:  # a read first: it waits for no write lock, so the batch's winners do not
                held = self.get(tenant, key)  # wait for it either
                outcomes.append(
                    _own(held, claim_id)
                    if held is not None
                    else self.claim(tenant, key, digest, *about)
                )
            except StoreUnavailableError as exc:
                outcomes.append(exc)
        return outcomes

    def _claim_rows(self, rows: list[dict[str, Any]]) -> list[int]:
        """PostgreSQL: the batch's inserts as one statement (one round trip, one WAL flush):
        1 for each request that won its key (the first of a key that comes twice), else 0.

        Each key once, in (tenant, key) order: two nodes claiming the same keys lock them in
        the same order, so their batches never deadlock."""
        first: dict[tuple[str, str], dict[str, Any]] = {}
        for row in rows:
            first.setdefault((row["tenant"], row["key"]), row)
        args: list[object] = []
        for (tenant, key), row in sorted(first.items()):
            args += (tenant, key, row["fingerprint"], row["created_at"], row["claim_id"])
            args += (row["recipient"], row["channel"], row["purpose"])
        sql = _claims_sql(len(first))
        won = set(self._kept.fetch_all("claim", sql, args, repeatable=True))
        counts = []
        for row in rows:
            counts.append(1 if (row["tenant"], row["key"]) in won else 0)
            won.discard((row["tenant"], row["key"]))
        return counts

    def get(self, tenant: str, key: str) -> Claim | None:
        """The record of ``key`` (``won`` is False), or None when nobody holds it."""
        params = {"w_tenant": tenant, "w_key": key}
        _, row = self._kept.execute("read", self._read, params, repeatable=True, fetch=True)
        if row is None:
            return None
        return Claim(
            won=False,
            fingerprint=row[0],
            report=row[1],
            created_at=self._utc(row[2]),
            claim_id=row[3],
        )

    def complete(self, tenant: str, key: str, report_json: str) -> None:
        """Store the report of the delivery that claimed ``key``; later requests replay it."""
        params = self._report_params(tenant, key, report_json)
        self._relaxed.execute("complete", self._complete, params, repeatable=True)

    def complete_many(
        self,
        completions: list[tuple[str, str, str, Any]],
        before: Callable[..., None] | None = None,
    ) -> list[None]:
        """:meth:`complete` for several ``(tenant, key, report_json, payload)`` at once, the
        records in one transaction. ``before(*payloads)`` runs first, once (the payloads that
        are not None): the pipeline writes the deliveries' log lines there, in one write."""
        payloads = [payload for *_, payload in completions if payload is not None]
        if before is not None and payloads:
            before(*payloads)
        now = self._to_db(datetime.now(UTC))
        rows = [
            {"w_tenant": tenant, "w_key": key, "report": report, "completed_at": now}
            for tenant, key, report, _ in completions
        ]
        if self.local or len(rows) == 1:
            self._relaxed.execute_many("complete", self._complete, rows, repeatable=True)
        else:  # PostgreSQL: one statement, one round trip
            args: list[object] = []
            for row in rows:
                args += (row["w_tenant"], row["w_key"], row["report"], row["completed_at"])
            sql = _completions_sql(len(rows))
            self._relaxed.fetch_all("complete", sql, args, repeatable=True)
        return [None] * len(completions)

    def release(self, tenant: str, key: str) -> None:
        """Give ``key`` back while it is still pending: for a delivery that never reached a
        provider, so a retry may send. A completed record is kept."""
        params = {"w_tenant": tenant, "w_key": key}
        self._kept.execute("release", self._release, params, repeatable=True)

    def stale(self, older_than: float) -> list[StaleClaim]:
        """Up to :data:`STALE_BATCH` pending claims made more than ``older_than`` seconds ago
        that say where their delivery went, oldest first: claims a crash left pending (a live
        delivery ends within its budget). Read through their own small index."""
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than)  # bound by SQLAlchemy
        try:
            with self._engine.connect() as conn:
                rows = conn.execute(_STALE, {"cutoff": cutoff}).all()
        except DATABASE_ERRORS as exc:
            raise unavailable(self._engine, "reading stale idempotency claims", exc) from None
        return [
            StaleClaim(tenant, key, recipient, channel, purpose or "", _as_utc(created), claim_id)
            for tenant, key, recipient, channel, purpose, created, claim_id in rows
        ]

    def settle_pending(self, tenant: str, key: str, report_json: str) -> str | None:
        """:meth:`settle` for the claim that holds ``key`` now, whichever it is: a retry job
        takes over its own delivery's record, which its first report never reached."""
        params = self._report_params(tenant, key, report_json)
        self._kept.execute("settle", self._settle_any, params, repeatable=True)
        held = self.get(tenant, key)
        return None if held is None else held.report

    def settle(self, tenant: str, key: str, claim_id: str | None, report_json: str) -> str | None:
        """Store ``report_json`` as the answer of the pending claim ``claim_id`` of ``key``
        (one a crash left), unless it has one already: the report now on the record, so the
        caller learns whether its own was stored (then it alone writes the event) or another
        one was first. None when the record is gone (purged, released)."""
        params = {**self._report_params(tenant, key, report_json), "w_claim": claim_id}
        statement = self._settle if claim_id is not None else self._settle_unnamed
        self._kept.execute("settle", statement, params, repeatable=True)
        held = self.get(tenant, key)
        if held is None or (claim_id is not None and held.claim_id != claim_id):
            return None
        return held.report

    def _report_params(self, tenant: str, key: str, report_json: str) -> dict[str, Any]:
        """The parameters of a statement that stores ``report_json`` on ``key``'s record."""
        return {
            "w_tenant": tenant,
            "w_key": key,
            "report": report_json,
            "completed_at": self._to_db(datetime.now(UTC)),
        }

    def purge(self, older_than_days: float) -> int:
        """Delete up to :data:`PURGE_BATCH` records claimed more than ``older_than_days`` ago,
        completed or not, in one short transaction: how many. A caller with more to delete
        calls again, leaving the write lock and this store thread to others in between
        (:class:`~runtime.delivery.key_retention.KeyRetention`)."""
        cutoff = datetime.now(UTC) - timedelta(days=older_than_days)
        old = select(_t.tenant, _t.key).where(_t.created_at < cutoff).limit(PURGE_BATCH)
        try:
            # SQLite: the write lock from the start, or a write meanwhile fails the delete
            with write_transaction(self._engine) as conn:
                keys = [tuple(row) for row in conn.execute(old)]
                if keys:
                    conn.execute(
                        delete(idempotency_records).where(
                            tuple_(_t.tenant, _t.key).in_(keys), _t.created_at < cutoff
                        )
                    )
        except DATABASE_ERRORS as exc:
            raise unavailable(self._engine, "purging old idempotency records", exc) from None
        return len(keys)

    def close(self) -> None:
        """Give back the kept connections (the next call opens another)."""
        self._kept.close()
        if self._relaxed is not self._kept:
            self._relaxed.close()

    def _utc(self, value: object) -> datetime | None:
        """SQLite drops the time zone on the way back; every stored time is UTC."""
        moment = self._from_db(value)
        if not isinstance(moment, datetime):
            return None
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _own(held: Claim, claim_id: str) -> Claim:
    """``held`` as read back after a claim that did not insert: won when it is this claim's own
    record (its INSERT committed, but the answer was lost and the statement ran again)."""
    if held.claim_id == claim_id and held.report is None:
        return Claim(
            won=True, fingerprint=held.fingerprint, created_at=held.created_at, claim_id=claim_id
        )
    return held


def _as_utc(moment: datetime | None) -> datetime | None:
    """A time read through SQLAlchemy (a datetime already): SQLite drops its zone (UTC)."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)
