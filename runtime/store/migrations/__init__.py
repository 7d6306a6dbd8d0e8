"""The runtime database's Alembic migrations; run them with :func:`runtime.store.db.migrate`."""
