"""Engines with time limits: every wait on the database ends within ``timeout`` seconds.

SQLite (the default) gets WAL, a busy timeout and real transactions: the driver's own
transaction handling is switched off and SQLAlchemy's ``begin`` emits ``BEGIN``, or ``BEGIN
IMMEDIATE`` for :func:`write_transaction` (the write lock taken before the first read, so a
count-then-insert is exact across processes). PostgreSQL gets a connect timeout, statement and
lock timeouts on the server, pre-pinged pool checkouts and a pool timeout. A database that
cannot be used is a :class:`~runtime.errors.StoreUnavailableError` (or a
:class:`~runtime.errors.ConfigurationError` for a bad URL) in one line, never a traceback.
"""

from __future__ import annotations

import math
import re
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, MetaData, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.sql.elements import ClauseElement

from runtime.errors import ConfigurationError, StoreUnavailableError
from runtime.store.schema import metadata

__all__ = [
    "DATABASE_ERRORS",
    "DEFAULT_TIMEOUT",
    "Prepared",
    "create_engine_for",
    "describe",
    "engine_timeout",
    "metadata",
    "migrate",
    "prepare",
    "serialized",
    "sqlite_file",
    "type_processors",
    "unavailable",
    "write_transaction",
]

DEFAULT_TIMEOUT = 2.0
DATABASE_ERRORS: tuple[type[Exception], ...] = (DBAPIError, PoolTimeoutError)
"""What a database that is down, locked or slow raises through SQLAlchemy (not our bugs)."""
_SETTING = "PHONE_ACTIONS_DATABASE_URL"
_BACKENDS = ("sqlite", "postgresql")
_TIMEOUTS: weakref.WeakKeyDictionary[Engine, float] = weakref.WeakKeyDictionary()


def create_engine_for(
    url: str, schema: MetaData | None = None, *, timeout: float = DEFAULT_TIMEOUT
) -> Engine:
    """An engine for ``url`` whose every wait (lock, connect, statement, pool) ends within
    ``timeout`` seconds. The runtime's tables come from :func:`migrate`; ``schema`` is for a
    plugin's own tables (created when missing), outside the runtime's migration chain."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigurationError(
            f"{_SETTING}: {_mask(url)!r} is not a database URL (expected e.g. "
            "sqlite:///data/phone-actions.sqlite3 or postgresql+psycopg://user@host/db)"
        ) from None
    backend = parsed.get_backend_name()
    if backend not in _BACKENDS:
        raise ConfigurationError(
            f"{_SETTING}: unsupported database {backend!r} in "
            f"{parsed.render_as_string(hide_password=True)!r} (use sqlite or postgresql)"
        )
    kwargs: dict[str, Any] = {}
    if backend == "sqlite":
        _make_folder(parsed.database)
        # The driver's timeout is SQLite's busy timeout: how long a statement waits for a lock.
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": timeout}
    else:
        ms = max(1, round(timeout * 1000))
        options = f"-c statement_timeout={ms} -c lock_timeout={ms}"
        given = parsed.query.get("options")
        if isinstance(given, str) and given:
            options = f"{given} {options}"
        kwargs["connect_args"] = {
            "connect_timeout": max(2, math.ceil(timeout)),  # libpq's minimum is 2 s
            "options": options,
            # A partition mid-call: the OS drops a connection whose sent data stays unacked
            # (tcp_user_timeout) or that answers no keepalive, so a stuck thread comes back.
            "tcp_user_timeout": ms * 2,
            "keepalives": 1,
            "keepalives_idle": max(1, math.ceil(timeout)),
            "keepalives_interval": 1,
            "keepalives_count": 3,
        }
        kwargs["pool_pre_ping"] = True
        kwargs["pool_timeout"] = timeout
        # Stores keep a connection per store thread (runtime.store.kept): room for several
        # stores on up to 16 threads before the pool makes anyone wait.
        kwargs["pool_size"] = 16
        kwargs["max_overflow"] = 48
    try:
        engine = create_engine(parsed, **kwargs)
    except (NoSuchModuleError, ImportError) as exc:
        raise ConfigurationError(
            f"{_SETTING}: no driver for {parsed.drivername!r} ({exc}); for PostgreSQL install "
            "phone-actions[postgres] and use postgresql+psycopg://"
        ) from None
    _TIMEOUTS[engine] = timeout
    if backend == "sqlite":
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
    if schema is not None:
        try:
            schema.create_all(engine)
        except DATABASE_ERRORS as exc:
            raise unavailable(engine, "creating tables", exc) from None
    return engine


def migrate(engine: Engine) -> None:
    """Bring the runtime's tables to the newest schema (Alembic ``upgrade head``) under a lock
    that lets many processes start at once; a database made before migrations is adopted.
    Alembic is imported only here: serving messages does not need it."""
    from runtime.store.upgrade import upgrade

    upgrade(engine)


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write after reading: on SQLite it takes the write lock at
    ``BEGIN IMMEDIATE`` (waiting up to the busy timeout), so what it read stays true until it
    commits. On PostgreSQL it is a plain transaction; lock what you read there."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin():
            yield conn


def serialized(conn: Connection, key: str) -> None:
    """Inside a :func:`write_transaction`: transactions of the same ``key`` run one at a time
    until this one ends, so a count read and then checked stays true (a per-tenant cap). On
    PostgreSQL a transaction-level advisory lock; SQLite's ``BEGIN IMMEDIATE`` did it already."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": key})


def engine_timeout(engine: Engine) -> float:
    """The ``timeout`` ``engine`` was made with (the default for engines made elsewhere)."""
    return _TIMEOUTS.get(engine, DEFAULT_TIMEOUT)


def describe(engine: Engine) -> str:
    """The database's URL with the password masked, for messages."""
    return engine.url.render_as_string(hide_password=True)


def unavailable(
    engine: Engine, what: str, exc: BaseException | None = None, *, committing: bool = False
) -> StoreUnavailableError:
    """A :class:`StoreUnavailableError` naming the database, what failed and why, in one line.
    ``committing``: it failed while committing, so the server may have committed it all the
    same (the answer lost); the error is then ``running`` (it may have taken effect)."""
    reason = ""
    if exc is not None:
        cause = getattr(exc, "orig", None) or exc
        first = str(cause).strip().splitlines()
        reason = f": {first[0] if first else type(cause).__name__}"
    maybe = "; it may have been committed all the same" if committing else ""
    return StoreUnavailableError(
        f"database {describe(engine)}: {what} failed{reason}{maybe}", running=committing
    )


@dataclass(frozen=True)
class Prepared:
    """A statement compiled once for one engine's dialect, run on its raw DBAPI connection.

    Building and compiling a statement per call costs more than SQLite's own work, and the
    SQLAlchemy execution layer as much again; the hot paths run these instead.
    """

    sql: str
    positions: tuple[str, ...] | None  # parameter order for positional drivers (sqlite3)
    constants: Mapping[str, Any]  # values the statement itself binds (``used + 1``)

    def args(self, params: Mapping[str, Any]) -> Sequence[Any] | Mapping[str, Any]:
        """``params`` in the form the driver takes."""
        if self.constants:
            params = {**self.constants, **params}
        if self.positions is None:
            return params
        return tuple(params[name] for name in self.positions)


def prepare(engine: Engine, statement: ClauseElement) -> Prepared:
    """``statement`` compiled for ``engine``'s dialect."""
    compiled = statement.compile(dialect=engine.dialect)
    positions = compiled.positiontup  # type: ignore[attr-defined]
    constants = {k: v for k, v in compiled.params.items() if v is not None}
    return Prepared(str(compiled), tuple(positions) if positions else None, constants)


def type_processors(
    engine: Engine, column: Any
) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """The dialect's (bind, result) converters for ``column``'s type (identity when none), so
    raw statements store and read values exactly as SQLAlchemy would."""
    impl = column.type.dialect_impl(engine.dialect)
    bind = impl.bind_processor(engine.dialect)
    result = impl.result_processor(engine.dialect, None)
    return (bind or _same), (result or _same)


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite ``url`` (None for other databases and in-memory SQLite)."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    return None if database.startswith("file:") else Path(database)


def _same(value: Any) -> Any:
    return value


def _make_folder(database: str | None) -> None:
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    folder = Path(database).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(  # the URL is the data folder's file unless it was set
            f"{_SETTING} (unset: a file in PHONE_ACTIONS_DATA_DIR): cannot create the "
            f"database folder {str(folder)!r}: {exc.strerror}"
        ) from None


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Transactions are SQLAlchemy's (see _sqlite_begin); a lone statement commits by itself.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    if conn.get_execution_options().get("sqlite_begin") == "IMMEDIATE":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")


def _mask(url: str) -> str:
    """``url`` with anything between ``user:`` and ``@`` hidden, for URLs that do not parse."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)
