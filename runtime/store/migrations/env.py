"""Alembic's environment: runs the migrations on the connection ``migrate()`` hands over.

:func:`runtime.store.upgrade.upgrade` opens the connection, takes the migration lock and the
transaction, and passes the connection in ``config.attributes``; nothing here connects.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from runtime.store.schema import metadata

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError(
        "run the runtime's migrations with runtime.store.db.migrate(engine), which takes the "
        "migration lock"
    )
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying
)
with context.begin_transaction():
    context.run_migrations()
