"""A durable job queue in the runtime database: work that must outlive a process.

Generic on purpose: a job is a ``kind`` (which handler runs it), a ``tenant`` (whose work it is,
for caps), a payload sealed at rest with the master key (:mod:`runtime.store.crypto`), and a
due time. Retries that actions ask for (``api.notification.retry``) are one kind; log streams
will be another.

- :meth:`JobQueue.enqueue` adds a job, refusing it when the tenant already has ``max_pending``
  unfinished jobs of that kind (every piece of work a tenant can cause is bounded).
- :meth:`JobQueue.claim` takes due jobs under a lease: on PostgreSQL ``SELECT .. FOR UPDATE
  SKIP LOCKED`` (nodes never wait for each other's rows), on SQLite inside ``BEGIN IMMEDIATE``
  (the write lock is taken before the read, so two processes cannot claim the same row). With
  a cap per tenant (what the job runner asks for), the rows are read unlocked and claimed by
  an ``UPDATE`` that checks again that each is due. A running job whose lease expired (its
  node crashed) is due again; each job runs at most once at a time across nodes.
- :meth:`complete`, :meth:`reschedule` and :meth:`fail` are fenced by the lease: a node that
  lost its lease cannot overwrite what the new owner does.

Why not procrastinate (the reference design's PostgreSQL queue): it runs on PostgreSQL only, and
the embedded default database is SQLite. The calls block; run them on the store executor.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, delete, func, or_, select, text, update

from runtime.ids import new_id
from runtime.store.crypto import Keyring
from runtime.store.db import DATABASE_ERRORS, describe, unavailable, write_transaction
from runtime.store.schema import jobs

__all__ = ["Job", "JobQueue", "QueueFullError"]

_j = jobs.c
QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
_UNFINISHED = (QUEUED, RUNNING)
_ERROR_CHARS = 1024


class QueueFullError(Exception):
    """The tenant already has as many unfinished jobs of this kind as it may."""


@dataclass(frozen=True)
class Job:
    """A claimed job. ``attempts`` counts its runs started, this one included: more than the
    handler expects means an earlier run was interrupted (its node died holding the lease)."""

    id: str
    kind: str
    tenant: str
    sealed: str | None
    attempts: int
    due_at: datetime
    created_at: datetime


class JobQueue:
    """The ``jobs`` table. Blocking calls; database errors and timeouts raise
    :class:`~runtime.errors.StoreUnavailableError`."""

    def __init__(self, engine: Engine, keys: Keyring) -> None:
        self._engine = engine
        self._keys = keys
        self.database = describe(engine)
        self._postgres = engine.dialect.name == "postgresql"

    def enqueue(
        self,
        kind: str,
        tenant: str,
        payload: bytes,
        *,
        delay: float = 0.0,
        max_pending: int | None = None,
    ) -> str:
        """Add a job due in ``delay`` seconds; its id. :class:`QueueFullError` when ``tenant``
        already has ``max_pending`` unfinished jobs of ``kind``."""
        job_id = new_id()
        now = _now()
        row = {
            "id": job_id,
            "kind": kind,
            "tenant": tenant,
            "payload": self._keys.seal(payload, _context(job_id)),
            "due_at": now + timedelta(seconds=delay),
            "attempts": 0,
            "state": QUEUED,
            "created_at": now,
            "updated_at": now,
        }
        with self._transaction("enqueueing a job") as conn:
            if max_pending is not None:
                if self._postgres:  # the count below is exact under this per-tenant lock
                    conn.execute(
                        text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                        {"key": f"jobs:{kind}:{tenant}"},
                    )
                pending = conn.execute(
                    select(func.count())
                    .select_from(jobs)
                    .where(_j.tenant == tenant, _j.kind == kind, _j.state.in_(_UNFINISHED))
                ).scalar_one()
                if pending >= max_pending:
                    raise QueueFullError(
                        f"tenant {tenant!r} already has {pending} {kind} jobs waiting "
                        f"(limit {max_pending})"
                    )
            conn.execute(jobs.insert().values(row))
        return job_id

    def claim(
        self,
        owner: str,
        *,
        limit: int,
        lease: float,
        kinds: tuple[str, ...] | None = None,
        per_tenant: int | None = None,
        busy: dict[str, int] | None = None,
    ) -> list[Job]:
        """Take up to ``limit`` due jobs for ``owner`` for ``lease`` seconds, oldest due first:
        queued ones whose time came, and running ones whose lease expired.

        With ``per_tenant``, no tenant gets more than that many jobs running for ``owner``,
        counting the ``busy`` ones it runs already: one tenant's slow jobs (a frozen log
        stream receiver) never take every slot from the others' (their retried codes)."""
        now = _now()
        due = or_(
            and_(_j.state == QUEUED, _j.due_at <= now),
            and_(_j.state == RUNNING, _j.lease_expires_at <= now),
        )
        if per_tenant is not None:
            return self._claim_fairly(owner, now, due, limit, lease, kinds, per_tenant, busy or {})
        query = select(_j.id, _j.kind, _j.tenant, _j.payload, _j.attempts, _j.due_at, _j.created_at)
        query = query.where(due)
        if kinds is not None:
            query = query.where(_j.kind.in_(kinds))
        # FOR UPDATE SKIP LOCKED on PostgreSQL; SQLite renders nothing (BEGIN IMMEDIATE locks)
        query = query.order_by(_j.due_at).limit(limit).with_for_update(skip_locked=True)
        with self._transaction("claiming jobs") as conn:
            rows = conn.execute(query).all()
            if not rows:
                return []
            conn.execute(
                update(jobs)
                .where(_j.id.in_([r.id for r in rows]))
                .values(_leased(owner, now, lease))
            )
        return [_job(r, attempts=r.attempts + 1) for r in rows]

    def _claim_fairly(
        self,
        owner: str,
        now: datetime,
        due: Any,
        limit: int,
        lease: float,
        kinds: tuple[str, ...] | None,
        per_tenant: int,
        busy: dict[str, int],
    ) -> list[Job]:
        """:meth:`claim` with a cap per tenant: each tenant's oldest due jobs, up to its room,
        oldest first across tenants. The rows are then claimed by an UPDATE that checks again
        that they are due, so two nodes never both take one (on PostgreSQL the second waits
        for the first's row, then finds it taken)."""
        full = [tenant for tenant, running in busy.items() if running >= per_tenant]
        where = [due, _j.tenant.not_in(full)] if full else [due]
        if kinds is not None:
            where.append(_j.kind.in_(kinds))
        place = func.row_number().over(partition_by=_j.tenant, order_by=(_j.due_at, _j.id))
        ranked = select(_j.id, _j.tenant, _j.due_at, place.label("place")).where(*where)
        ranked_rows = ranked.subquery()
        candidates = (
            select(ranked_rows.c.id, ranked_rows.c.tenant)
            .where(ranked_rows.c.place <= per_tenant)
            .order_by(ranked_rows.c.due_at, ranked_rows.c.id)
            .limit(limit * per_tenant)
        )
        with self._transaction("claiming jobs") as conn:
            taken: dict[str, int] = {}
            chosen: list[str] = []
            for job_id, tenant in conn.execute(candidates).all():
                if len(chosen) >= limit:
                    break
                if busy.get(tenant, 0) + taken.get(tenant, 0) >= per_tenant:
                    continue
                taken[tenant] = taken.get(tenant, 0) + 1
                chosen.append(job_id)
            if not chosen:
                return []
            claimed = conn.execute(
                update(jobs)
                .where(_j.id.in_(chosen), due)
                .values(_leased(owner, now, lease))
                .returning(
                    _j.id, _j.kind, _j.tenant, _j.payload, _j.attempts, _j.due_at, _j.created_at
                )
            ).all()
        ordered = sorted(claimed, key=lambda r: (_utc(r.due_at), r.id))
        return [_job(r, attempts=r.attempts) for r in ordered]

    def payload(self, job: Job) -> bytes:
        """The job's payload, opened (:class:`~runtime.store.crypto.SealError` if it cannot be:
        a key no longer given, or a value not made for this row)."""
        if job.sealed is None:
            return b""
        return self._keys.open(job.sealed, _context(job.id))

    def complete(self, job: Job, owner: str) -> bool:
        """The job is done: its payload is dropped. False when ``owner`` lost the lease."""
        return self._finish(job, owner, {"state": DONE, "payload": None})

    def fail(self, job: Job, owner: str, error: str) -> bool:
        """The job failed for good: its payload is dropped, ``error`` kept (one line, masked by
        the caller). False when ``owner`` lost the lease."""
        values = {"state": FAILED, "payload": None, "last_error": error[:_ERROR_CHARS]}
        return self._finish(job, owner, values)

    def reschedule(
        self,
        job: Job,
        owner: str,
        *,
        delay: float,
        payload: bytes | None = None,
        error: str | None = None,
    ) -> bool:
        """Run the job again in ``delay`` seconds, with a new ``payload`` if given. False when
        ``owner`` lost the lease."""
        values: dict[str, Any] = {
            "state": QUEUED,
            "due_at": _now() + timedelta(seconds=delay),
            "last_error": None if error is None else error[:_ERROR_CHARS],
        }
        if payload is not None:
            values["payload"] = self._keys.seal(payload, _context(job.id))
        return self._finish(job, owner, values)

    def state(self, job_id: str) -> tuple[str, int, str | None] | None:
        """``(state, attempts, last_error)`` of a job, or None when there is no such job."""
        with self._transaction("reading a job", write=False) as conn:
            row = conn.execute(
                select(_j.state, _j.attempts, _j.last_error).where(_j.id == job_id)
            ).first()
        return None if row is None else (row[0], row[1], row[2])

    def purge(self, older_than: float) -> int:
        """Delete finished jobs last updated more than ``older_than`` seconds ago."""
        cutoff = _now() - timedelta(seconds=older_than)
        with self._transaction("purging finished jobs") as conn:
            result = conn.execute(
                delete(jobs).where(_j.state.in_((DONE, FAILED)), _j.updated_at < cutoff)
            )
        return int(result.rowcount)

    def _finish(self, job: Job, owner: str, values: dict[str, Any]) -> bool:
        values = {**values, "lease_owner": None, "lease_expires_at": None, "updated_at": _now()}
        fenced = and_(
            _j.id == job.id,
            _j.state == RUNNING,
            _j.lease_owner == owner,
            _j.attempts == job.attempts,  # a later claim of the same owner id is another run
        )
        with self._transaction("finishing a job") as conn:
            result = conn.execute(update(jobs).where(fenced).values(values))
        return bool(result.rowcount == 1)

    @contextmanager
    def _transaction(self, what: str, *, write: bool = True) -> Iterator[Connection]:
        """A transaction (``BEGIN IMMEDIATE`` on SQLite when it writes) whose database
        errors become one :class:`~runtime.errors.StoreUnavailableError` naming ``what``."""
        try:
            with write_transaction(self._engine) if write else self._engine.begin() as conn:
                yield conn
        except DATABASE_ERRORS as exc:
            raise unavailable(self._engine, what, exc) from None


def _context(job_id: str) -> str:
    """Associated data of a job's payload: it opens only in its own row."""
    return f"jobs.payload:{job_id}"


def _leased(owner: str, now: datetime, lease: float) -> dict[str, Any]:
    """A claimed job's new values: running, leased to ``owner`` for ``lease`` seconds."""
    return {
        "state": RUNNING,
        "lease_owner": owner,
        "lease_expires_at": now + timedelta(seconds=lease),
        "attempts": _j.attempts + 1,
        "updated_at": now,
    }


def _job(row: Any, *, attempts: int) -> Job:
    return Job(
        id=row.id,
        kind=row.kind,
        tenant=row.tenant,
        sealed=row.payload,
        attempts=attempts,
        due_at=_utc(row.due_at),
        created_at=_utc(row.created_at),
    )


def _now() -> datetime:
    return datetime.now(UTC)


def _utc(value: datetime) -> datetime:
    """SQLite gives times back without a zone; every stored time is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
