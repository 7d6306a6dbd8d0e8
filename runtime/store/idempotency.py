"""Idempotency records: the same key never sends twice, on any node, and returns the first report.

A request with a key first *claims* it with an INSERT on a unique (tenant, key); the database
decides the race, so two nodes sharing PostgreSQL cannot both win. The winner sends and then
stores its report; a loser reads the stored report (or waits for it). A claim left pending by a
crash stays pending: the code may have gone out, so it is never sent again under that key.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Engine,
    String,
    Table,
    Text,
    bindparam,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from runtime.store.db import metadata

__all__ = ["Claim", "IdempotencyStore", "fingerprint"]

idempotency_records = Table(
    "idempotency_records",
    metadata,
    Column("tenant", String(64), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("report", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("completed_at", DateTime(timezone=True), nullable=True),
)


# Statements built once: building one per call costs more than SQLite's own work.
_t = idempotency_records.c
_CLAIM = insert(idempotency_records)
_READ = select(_t.fingerprint, _t.report).where(
    _t.tenant == bindparam("w_tenant"), _t.key == bindparam("w_key")
)
_COMPLETE = (
    update(idempotency_records)
    .where(_t.tenant == bindparam("w_tenant"), _t.key == bindparam("w_key"))
    .values(report=bindparam("report"), completed_at=bindparam("completed_at"))
)


def fingerprint(*parts: str) -> str:
    """A digest of what the request asks for, so a key reused for another message is caught."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


@dataclass(frozen=True)
class Claim:
    """The outcome of claiming a key: ``won`` (send now) or the record another request holds."""

    won: bool
    fingerprint: str
    report: str | None = None


class IdempotencyStore:
    """Claims and completes idempotency keys. Blocking calls: run them in a thread."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        # A local SQLite file answers in microseconds: a thread hop would cost more than the
        # query. A server (PostgreSQL) is called from a worker thread, off the event loop.
        self.local = engine.dialect.name == "sqlite"
        # For SQLite, one connection kept open: checking one out of the pool and resetting it
        # cost as much as the statement itself (bench/pipeline.py, pipeline+idempotency).
        self._lock = threading.RLock()
        self._connection: Connection | None = None

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        """A connection inside a transaction that commits on success, rolls back on error."""
        if not self.local:
            with self._engine.begin() as conn:
                yield conn
            return
        with self._lock:
            kept = self._connection
            if kept is None or kept.closed or kept.invalidated:
                kept = self._connection = self._engine.connect()
            with kept.begin():
                yield kept

    def close(self) -> None:
        """Give back the kept SQLite connection (the next call opens another)."""
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def claim(self, tenant: str, key: str, digest: str) -> Claim:
        try:
            with self._transaction() as conn:
                conn.execute(
                    _CLAIM,
                    {
                        "tenant": tenant,
                        "key": key,
                        "fingerprint": digest,
                        "created_at": datetime.now(UTC),
                    },
                )
            return Claim(won=True, fingerprint=digest)
        except IntegrityError:
            existing = self.get(tenant, key)
            if existing is None:  # removed between our insert and read: try once more
                return self.claim(tenant, key, digest)
            return existing

    def get(self, tenant: str, key: str) -> Claim | None:
        with self._transaction() as conn:
            row = conn.execute(_READ, {"w_tenant": tenant, "w_key": key}).first()
        return None if row is None else Claim(won=False, fingerprint=row[0], report=row[1])

    def complete(self, tenant: str, key: str, report_json: str) -> None:
        with self._transaction() as conn:
            conn.execute(
                _COMPLETE,
                {
                    "w_tenant": tenant,
                    "w_key": key,
                    "report": report_json,
                    "completed_at": datetime.now(UTC),
                },
            )
