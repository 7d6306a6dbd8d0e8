"""Persistent state through SQLAlchemy: SQLite by default, PostgreSQL by URL."""

from runtime.store.db import create_engine_for, metadata
from runtime.store.idempotency import Claim, IdempotencyStore

__all__ = ["Claim", "IdempotencyStore", "create_engine_for", "metadata"]
