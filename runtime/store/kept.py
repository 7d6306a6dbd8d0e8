"""Connections a store keeps open between calls, for its hot path (one statement per call).

A pool checkout costs about as much as the statement: on SQLite the reset on return, on
PostgreSQL the pre-ping round trip. So a store keeps raw DBAPI connections, each statement
committing by itself (SQLite with the driver's transactions off, PostgreSQL in autocommit): one
statement is one round trip and is atomic on its own.

- SQLite: one connection for the store, used by one thread at a time under a lock (SQLite
  admits one writer anyway); waiting for that lock is bounded by the engine's timeout.
- PostgreSQL: one connection per store thread (the :class:`~runtime.store.executor.
  StoreExecutor` has a few). A connection found dead is replaced and the statement tried once
  more, for statements the caller marks safe to repeat.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import PoolProxiedConnection

from runtime.store.db import Prepared, engine_timeout, unavailable

__all__ = ["KeptConnections"]

T = TypeVar("T")


class _Kept:
    """A pooled connection held by a store, with the one cursor reused for every call."""

    __slots__ = ("connection", "cursor")

    def __init__(self, connection: PoolProxiedConnection, cursor: Any) -> None:
        self.connection = connection
        self.cursor = cursor


class KeptConnections:
    """Runs prepared statements on kept connections; errors become StoreUnavailableError."""

    def __init__(self, engine: Engine, *, durable: bool = True) -> None:
        """``durable=False`` is for writes whose loss in a database crash is safe (PostgreSQL
        then commits without waiting for the WAL flush; SQLite is unchanged)."""
        self.engine = engine
        self.durable = durable
        self.sqlite = engine.dialect.name == "sqlite"
        self.timeout = engine_timeout(engine)
        self._errors: type[BaseException] = engine.dialect.loaded_dbapi.Error
        self._lock = threading.RLock()  # SQLite: the one connection's owner
        self._kept: _Kept | None = None
        self._local = threading.local()  # PostgreSQL: this thread's connection
        self._all: list[_Kept] = []
        self._all_lock = threading.Lock()

    def execute(
        self,
        what: str,
        statement: Prepared,
        params: Mapping[str, Any],
        *,
        repeatable: bool,
        fetch: bool = False,
    ) -> tuple[int, Any]:
        """Run ``statement``: the rows it changed, and with ``fetch`` its first row (or None).

        ``what`` names the call in errors; ``repeatable`` allows one more try on a fresh
        connection when the kept one turned out dead (a restarted server).
        """
        if self.sqlite:
            return self._execute_sqlite(what, statement, params, fetch)
        return self._execute_server(what, statement, params, repeatable, fetch)

    def execute_many(
        self,
        what: str,
        statement: Prepared,
        rows: Sequence[Mapping[str, Any]],
        *,
        repeatable: bool,
    ) -> list[int]:
        """Run ``statement`` once per row, all in one transaction (one commit): the rows each
        one changed. All or nothing: an error rolls every row back and raises
        StoreUnavailableError. SQLite, and a single row anywhere; a server database takes
        one multi-row statement instead (one round trip: :meth:`fetch_all`)."""
        if len(rows) == 1:  # one statement commits by itself: no BEGIN and COMMIT around it
            return [self.execute(what, statement, rows[0], repeatable=repeatable)[0]]
        if not self.sqlite:
            raise NotImplementedError("several rows on a server database: use fetch_all")
        return self._execute_many_sqlite(what, statement, rows)

    def fetch_all(
        self, what: str, sql: str, args: Sequence[Any], *, repeatable: bool
    ) -> list[tuple[Any, ...]]:
        """Run one statement written for this dialect (positional ``%s`` arguments on
        PostgreSQL), committing by itself: every row it returns."""
        if self.sqlite:
            raise NotImplementedError("fetch_all is for server databases")

        def run(cursor: Any) -> list[tuple[Any, ...]]:
            cursor.execute(sql, args)
            return list(cursor.fetchall())

        return self._on_server(what, repeatable, run)

    def _execute_many_sqlite(
        self, what: str, statement: Prepared, rows: Sequence[Mapping[str, Any]]
    ) -> list[int]:
        with self._sqlite_kept(what) as kept:
            cursor = kept.cursor
            counts: list[int] = []
            try:
                cursor.execute("BEGIN IMMEDIATE")  # waits up to the busy timeout, like one row
                for row in rows:
                    cursor.execute(statement.sql, statement.args(row))
                    counts.append(cursor.rowcount)
                cursor.execute("COMMIT")
            except BaseException as exc:  # whatever it was, the kept connection is left clean
                with contextlib.suppress(self._errors):
                    if kept.connection.driver_connection.in_transaction:  # type: ignore[union-attr]
                        cursor.execute("ROLLBACK")
                if isinstance(exc, self._errors):
                    raise unavailable(self.engine, what, exc) from None
                raise
            return counts

    def _execute_sqlite(
        self, what: str, statement: Prepared, params: Mapping[str, Any], fetch: bool
    ) -> tuple[int, Any]:
        with self._sqlite_kept(what) as kept:
            cursor = kept.cursor
            try:
                cursor.execute(statement.sql, statement.args(params))
                # fetchall: a statement left unfinished would hold SQLite's read snapshot.
                rows = cursor.fetchall() if fetch else None
            except self._errors as exc:
                raise unavailable(self.engine, what, exc) from None
            return cursor.rowcount, rows[0] if rows else None

    @contextlib.contextmanager
    def _sqlite_kept(self, what: str) -> Iterator[_Kept]:
        """SQLite's one kept connection, held by this thread for the block (opened if need
        be); waiting for it is bounded by the engine's timeout."""
        if not self._lock.acquire(timeout=self.timeout):
            raise unavailable(
                self.engine, f"{what} (waiting {self.timeout:g} s for the connection)"
            )
        try:
            kept = self._kept
            if kept is None or not kept.connection.is_valid:
                kept = self._kept = self._open(what)
            yield kept
        finally:
            self._lock.release()

    def _execute_server(
        self,
        what: str,
        statement: Prepared,
        params: Mapping[str, Any],
        repeatable: bool,
        fetch: bool,
    ) -> tuple[int, Any]:
        def run(cursor: Any) -> tuple[int, Any]:
            cursor.execute(statement.sql, statement.args(params))
            return cursor.rowcount, cursor.fetchone() if fetch else None

        return self._on_server(what, repeatable, run)

    def _on_server(self, what: str, repeatable: bool, run: Callable[[Any], T]) -> T:
        """``run(cursor)`` on this thread's kept connection; a connection found dead is
        replaced and ``run`` tried once more when ``repeatable``."""
        for attempt in (1, 2):
            kept: _Kept | None = getattr(self._local, "kept", None)
            if kept is None:
                kept = self._local.kept = self._open(what)
            cursor = kept.cursor
            try:
                return run(cursor)
            except self._errors as exc:
                dead = self.engine.dialect.is_disconnect(exc, kept.connection, cursor)  # type: ignore[arg-type]
                if dead:
                    self._drop(kept)
                if not (dead and repeatable and attempt == 1):
                    raise unavailable(self.engine, what, exc) from None
        raise AssertionError("unreachable")

    def _open(self, what: str) -> _Kept:
        try:
            connection = self.engine.raw_connection()
            driver: Any = connection.driver_connection
            if not self.sqlite:
                driver.autocommit = True  # one statement, one transaction, one round trip
            cursor = driver.cursor()
            if not self.sqlite and not self.durable:
                cursor.execute("SET synchronous_commit TO off")
            kept = _Kept(connection, cursor)
        except (SQLAlchemyError, self._errors) as exc:
            raise unavailable(self.engine, f"{what} (connecting)", exc) from None
        with self._all_lock:
            self._all.append(kept)
        return kept

    def _drop(self, kept: _Kept) -> None:
        with self._all_lock:
            if kept in self._all:
                self._all.remove(kept)
        self._local.kept = None
        with contextlib.suppress(Exception):  # already broken; the pool forgets it anyway
            kept.connection.invalidate()

    def close(self) -> None:
        """Give every kept connection back to the pool (the next call opens another)."""
        held = self._lock.acquire(timeout=self.timeout)  # let a running SQLite call finish
        try:
            with self._all_lock:
                kept, self._all = self._all, []
            self._kept = None
            self._local = threading.local()
        finally:
            if held:
                self._lock.release()
        for each in kept:
            # A dead connection has nothing to give back: each step may fail on its own.
            with contextlib.suppress(Exception):
                each.cursor.close()
            with contextlib.suppress(Exception):
                if not self.sqlite and not self.durable and each.connection.is_valid:
                    each.cursor.execute("RESET synchronous_commit")  # back to the pool as it was
            with contextlib.suppress(Exception):
                if not self.sqlite and each.connection.is_valid:
                    each.connection.driver_connection.autocommit = False  # type: ignore[union-attr]
            with contextlib.suppress(Exception):
                each.connection.close()
