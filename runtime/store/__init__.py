"""Persistent state through SQLAlchemy: SQLite by default, PostgreSQL by URL.

Engines with time limits (:func:`create_engine_for`), the schema by Alembic migrations
(:func:`migrate`), the stores (idempotency keys, the default sender's usage), and the
executor their blocking calls run on (:class:`StoreExecutor`).
"""

from runtime.store.db import create_engine_for, metadata, migrate
from runtime.store.executor import StoreExecutor
from runtime.store.idempotency import Claim, IdempotencyStore
from runtime.store.usage import DefaultSenderUsage

__all__ = [
    "Claim",
    "DefaultSenderUsage",
    "IdempotencyStore",
    "StoreExecutor",
    "create_engine_for",
    "metadata",
    "migrate",
]
