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
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import PoolProxiedConnection

from runtime.store.db import Prepared, engine_timeout, unavailable

__all__ = ["KeptConnections"]


class KeptConnections:
    """Runs prepared statements on kept connections; errors become StoreUnavailableError."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"
        self.timeout = engine_timeout(engine)
        self._errors: type[BaseException] = engine.dialect.loaded_dbapi.Error
        self._lock = threading.RLock()  # SQLite: the one connection's owner
        self._conn: PoolProxiedConnection | None = None
        self._local = threading.local()  # PostgreSQL: this thread's connection
        self._all: list[PoolProxiedConnection] = []
        self._all_lock = threading.Lock()

    def execute(
        self, what: str, statement: Prepared, params: Mapping[str, Any], *, repeatable: bool
    ) -> Any:
        """Run ``statement``; the driver's cursor (``rowcount``, ``fetchone``).

        ``what`` names the call in errors; ``repeatable`` allows one more try on a fresh
        connection when the kept one turned out dead (a restarted server).
        """
        if self.sqlite:
            return self._execute_sqlite(what, statement, params)
        return self._execute_server(what, statement, params, repeatable)

    def _execute_sqlite(self, what: str, statement: Prepared, params: Mapping[str, Any]) -> Any:
        if not self._lock.acquire(timeout=self.timeout):
            raise unavailable(
                self.engine, f"{what} (waiting {self.timeout:g} s for the connection)"
            )
        try:
            conn = self._conn
            if conn is None or not conn.is_valid:
                conn = self._conn = self._open(what)
            try:
                return conn.driver_connection.execute(statement.sql, statement.args(params))  # type: ignore[union-attr]
            except self._errors as exc:
                raise unavailable(self.engine, what, exc) from None
        finally:
            self._lock.release()

    def _execute_server(
        self, what: str, statement: Prepared, params: Mapping[str, Any], repeatable: bool
    ) -> Any:
        for attempt in (1, 2):
            conn: PoolProxiedConnection | None = getattr(self._local, "conn", None)
            if conn is None or not conn.is_valid:
                conn = self._local.conn = self._open(what)
                conn.driver_connection.autocommit = True  # type: ignore[union-attr]
            try:
                return conn.driver_connection.execute(statement.sql, statement.args(params))  # type: ignore[union-attr]
            except self._errors as exc:
                dead = self.engine.dialect.is_disconnect(exc, conn, None)  # type: ignore[arg-type]
                if dead:
                    self._drop(conn)
                if not (dead and repeatable and attempt == 1):
                    raise unavailable(self.engine, what, exc) from None
        raise AssertionError("unreachable")

    def _open(self, what: str) -> PoolProxiedConnection:
        try:
            conn = self.engine.raw_connection()
        except (SQLAlchemyError, self._errors) as exc:
            raise unavailable(self.engine, f"{what} (connecting)", exc) from None
        with self._all_lock:
            self._all.append(conn)
        return conn

    def _drop(self, conn: PoolProxiedConnection) -> None:
        with self._all_lock:
            if conn in self._all:
                self._all.remove(conn)
        self._local.conn = None
        with contextlib.suppress(Exception):  # already broken; the pool forgets it anyway
            conn.invalidate()

    def close(self) -> None:
        """Give every kept connection back to the pool (the next call opens another)."""
        held = self._lock.acquire(timeout=self.timeout)  # let a running SQLite call finish
        try:
            with self._all_lock:
                kept, self._all = self._all, []
            self._conn = None
            self._local = threading.local()
        finally:
            if held:
                self._lock.release()
        for conn in kept:
            try:
                if not self.sqlite and conn.is_valid:
                    conn.driver_connection.autocommit = False  # type: ignore[union-attr]
                conn.close()
            except Exception:  # a dead connection: nothing to give back
                pass
