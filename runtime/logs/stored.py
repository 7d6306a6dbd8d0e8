"""The stored log: every event of the JSON Lines log in the ``log_events`` table, searchable
(``GET /api/v2/logs``) and numbered by ``seq`` for the log streams' cursors.

Rows come from the file (:mod:`runtime.logs.ingest`), never straight from a delivery, so
whatever runtime/logs writes (delivery events, the Verify API's, any later kind) is stored the
same way, and a database that was down catches up from the file. A line read twice is one row
(``log_id`` is unique). On PostgreSQL the inserts of all nodes take one advisory lock, so rows
commit in ``seq`` order and a cursor never steps over a row that commits later. Blocking
calls: run them on the store executor.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Connection, Engine, and_, delete, func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from runtime.receipts.store import ReceiptStore
from runtime.store.db import DATABASE_ERRORS, describe, unavailable, write_transaction
from runtime.store.schema import log_events, log_ingest

__all__ = ["SORTABLE", "LogRepository", "LogRow", "row_of"]

_c = log_events.c
_i = log_ingest.c
_LOCK = "SELECT pg_advisory_xact_lock(hashtext('log_events'))"
# the fields of Auth0's log search a page can be sorted by that are columns here
SORTABLE = ("date", "type", "user_id", "user_name", "client_id", "ip", "log_id")


@dataclass(frozen=True)
class LogRow:
    """One stored event: its place in the log and its JSON text as the file has it."""

    seq: int
    log_id: str
    type: str
    event: str


def _cut(value: Any, size: int) -> str | None:
    return None if value is None else str(value)[:size]


def _order(sort: str, descending: bool) -> list[Any]:
    """ORDER BY for ``sort``: ``date`` is the stored order (``seq``: a node's events are
    stored as dated, and it never ties); another column breaks its ties by ``seq`` and
    puts events without it last, on SQLite as on PostgreSQL."""
    if sort not in SORTABLE:
        raise ValueError(f"not sortable: {sort!r}")
    seq = _c.seq.desc() if descending else _c.seq.asc()
    if sort == "date":
        return [seq]
    column = getattr(_c, sort)
    return [(column.desc() if descending else column.asc()).nulls_last(), seq]


def row_of(line: bytes) -> dict[str, Any] | None:
    """The ``log_events`` row for one JSON line of the log, or None when it is not an event
    (a torn line, or one without a tenant or type: nothing to file it under)."""
    try:
        event = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(event, dict):
        return None
    tenant, kind = event.get("tenant_name"), event.get("type")
    if not isinstance(tenant, str) or not isinstance(kind, str):
        return None
    try:
        date = datetime.fromisoformat(str(event.get("date")))
    except ValueError:
        date = datetime.now(UTC)
    date = date.astimezone(UTC) if date.tzinfo is not None else date.replace(tzinfo=UTC)
    log_id = event.get("log_id")
    if not isinstance(log_id, str) or not log_id:
        log_id = "h" + hashlib.sha256(line.strip()).hexdigest()[:40]  # the same line, same id
    return {
        "log_id": log_id[:64],
        "tenant": tenant[:64],
        "type": kind[:64],
        "date": date,
        "user_id": _cut(event.get("user_id"), 255),
        "user_name": _cut(event.get("user_name"), 255),
        "client_id": _cut(event.get("client_id"), 255),
        "ip": _cut(event.get("ip"), 64),
        "event": line.strip().decode("utf-8", "replace"),
    }


class LogRepository:
    """The ``log_events`` and ``log_ingest`` tables. Database errors and timeouts raise
    :class:`~runtime.errors.StoreUnavailableError`."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.database = describe(engine)
        self._postgres = engine.dialect.name == "postgresql"

    # -- writing (the ingester) ---------------------------------------------------------------

    def position(self, source: str) -> tuple[str, int] | None:
        """``(file_id, offset)`` read so far of ``source``'s file, or None (never read)."""
        with self._transaction("reading the log's position", write=False) as conn:
            row = conn.execute(select(_i.file_id, _i.offset).where(_i.source == source)).first()
        return None if row is None else (row[0], int(row[1]))

    def store(self, source: str, file_id: str, offset: int, rows: Sequence[dict[str, Any]]) -> int:
        """Insert ``rows`` (those already stored are skipped) and record that ``source``'s file
        was read up to ``offset``, in one transaction; how many rows were new."""
        insert = pg_insert if self._postgres else sqlite_insert
        new = 0
        with self._transaction("storing log events") as conn:
            if self._postgres:
                conn.execute(text(_LOCK))  # commits in seq order across nodes
            if rows:
                statement = insert(log_events).on_conflict_do_nothing(index_elements=["log_id"])
                new = int(conn.execute(statement, list(rows)).rowcount or 0)
            values = {"file_id": file_id, "offset": offset, "updated_at": datetime.now(UTC)}
            done = conn.execute(log_ingest.update().where(_i.source == source).values(values))
            if done.rowcount != 1:
                conn.execute(
                    insert(log_ingest)
                    .values(source=source, **values)
                    .on_conflict_do_nothing(index_elements=["source"])
                )
        return new

    def purge(self, older_than_days: float) -> int:
        """Delete events dated more than ``older_than_days`` ago (the retention), and the
        delivery receipts received as long ago, which made such events (they are kept only
        so that a provider's repeated callback is not logged twice)."""
        cutoff = datetime.now(UTC) - timedelta(days=older_than_days)
        with self._transaction("purging old log events") as conn:
            purged = int(conn.execute(delete(log_events).where(_c.date < cutoff)).rowcount)
        ReceiptStore(self._engine).purge(older_than_days)
        return purged

    # -- reading (the logs API, log streams) --------------------------------------------------

    def search(
        self,
        tenant: str,
        where: ColumnElement[bool],
        *,
        page: int,
        per_page: int,
        sort: str = "date",
        descending: bool = True,
        totals: bool,
    ) -> tuple[list[LogRow], int | None]:
        """One page of ``tenant``'s events matching ``where``, ordered by ``sort`` (one of
        :data:`SORTABLE`), and the total when asked."""
        condition = and_(_c.tenant == tenant, where)
        query = (
            select(_c.seq, _c.log_id, _c.type, _c.event)
            .where(condition)
            .order_by(*_order(sort, descending))
            .offset(page * per_page)
            .limit(per_page)
        )
        with self._transaction("searching the log", write=False) as conn:
            rows = [LogRow(*r) for r in conn.execute(query)]
            total = None
            if totals:
                count = select(func.count()).select_from(log_events).where(condition)
                total = int(conn.execute(count).scalar_one())
        return rows, total

    def after(self, tenant: str, log_id: str | None, take: int) -> list[LogRow] | None:
        """Checkpoint paging (Auth0's ``from`` and ``take``): up to ``take`` events stored
        after ``log_id`` (from the oldest when None), oldest first; None when the tenant has
        no event ``log_id`` (purged, or mistyped): starting over from the oldest would hand
        a reader the whole log again as if it were new."""
        with self._transaction("reading the log", write=False) as conn:
            start = 0
            if log_id is not None:
                found = conn.execute(
                    select(_c.seq).where(_c.tenant == tenant, _c.log_id == log_id)
                ).first()
                if found is None:
                    return None
                start = int(found[0])
            query = (
                select(_c.seq, _c.log_id, _c.type, _c.event)
                .where(_c.tenant == tenant, _c.seq > start)
                .order_by(_c.seq)
                .limit(take)
            )
            return [LogRow(*r) for r in conn.execute(query)]

    def get(self, tenant: str, log_id: str) -> LogRow | None:
        query = select(_c.seq, _c.log_id, _c.type, _c.event).where(
            _c.tenant == tenant, _c.log_id == log_id
        )
        with self._transaction("reading a log event", write=False) as conn:
            row = conn.execute(query).first()
        return None if row is None else LogRow(*row)

    def batch(
        self, conn: Connection, tenant: str, cursor: int, types: frozenset[str] | None, limit: int
    ) -> list[LogRow]:
        """Up to ``limit`` of ``tenant``'s events after ``cursor`` (of ``types`` only, when
        given), oldest first: a log stream's next batch, read in the caller's transaction."""
        condition = and_(_c.tenant == tenant, _c.seq > cursor)
        if types is not None:
            condition = and_(condition, _c.type.in_(sorted(types)))
        query = (
            select(_c.seq, _c.log_id, _c.type, _c.event)
            .where(condition)
            .order_by(_c.seq)
            .limit(limit)
        )
        return [LogRow(*r) for r in conn.execute(query)]

    def last_seq(self, tenant: str) -> int:
        """The newest ``seq`` of ``tenant`` (0 when none): how far a stream could be."""
        query = select(func.max(_c.seq)).where(_c.tenant == tenant)
        with self._transaction("reading the log", write=False) as conn:
            return int(conn.execute(query).scalar_one() or 0)

    @contextmanager
    def _transaction(self, what: str, *, write: bool = True) -> Iterator[Connection]:
        try:
            with write_transaction(self._engine) if write else self._engine.begin() as conn:
                yield conn
        except DATABASE_ERRORS as exc:
            raise unavailable(self._engine, what, exc) from None
