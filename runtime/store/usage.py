"""The default sender's lifetime cap per tenant, whichever provider is the default sender.

One counter row per tenant, moved by single statements: ``reserve`` is one upsert that adds
one only while the counter is under the cap and says whether it did (``INSERT .. ON CONFLICT
DO UPDATE .. WHERE used < cap RETURNING``). One statement is atomic on both databases (SQLite
holds its write lock for it, here inside ``BEGIN IMMEDIATE``; PostgreSQL locks the row), so
the cap is exact across processes and nodes: no count read outside the write.
"""

from __future__ import annotations

from sqlalchemy import Engine, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite

from runtime.store.db import DATABASE_ERRORS, describe, unavailable, write_transaction
from runtime.store.schema import default_sender_usage

__all__ = ["DefaultSenderUsage"]

_u = default_sender_usage.c
_USED = select(_u.used).where(_u.tenant == bindparam("w_tenant"))
_REFUND = (
    update(default_sender_usage)
    .where(_u.tenant == bindparam("w_tenant"), _u.used > 0)
    .values(used=_u.used - 1)
)


class DefaultSenderUsage:
    """Counts what the default sender sent per tenant, against a lifetime cap. Blocking
    calls; database errors and timeouts raise :class:`~runtime.errors.StoreUnavailableError`."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.database = describe(engine)
        dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
        insert = dialect.insert(default_sender_usage).values(tenant=bindparam("tenant"), used=1)
        self._reserve = insert.on_conflict_do_update(
            index_elements=[_u.tenant],
            set_={"used": _u.used + 1},
            where=_u.used < bindparam("cap"),
        ).returning(_u.used)

    def reserve(self, tenant: str, cap: int) -> bool:
        """Take one of ``tenant``'s ``cap`` sends: True if one was left (now used), else False."""
        if cap <= 0:
            return False
        try:
            with write_transaction(self._engine) as conn:
                row = conn.execute(self._reserve, {"tenant": tenant, "cap": cap}).first()
        except DATABASE_ERRORS as exc:
            raise unavailable(self._engine, "reserving a default-sender send", exc) from None
        return row is not None

    def refund(self, tenant: str) -> None:
        """Give one back: the attempt failed without handing the message off."""
        try:
            with write_transaction(self._engine) as conn:
                conn.execute(_REFUND, {"w_tenant": tenant})
        except DATABASE_ERRORS as exc:
            raise unavailable(self._engine, "refunding a default-sender send", exc) from None

    def used(self, tenant: str) -> int:
        """How many of ``tenant``'s sends are taken."""
        try:
            with self._engine.connect() as conn:
                value = conn.execute(_USED, {"w_tenant": tenant}).scalar()
        except DATABASE_ERRORS as exc:
            raise unavailable(self._engine, "reading default-sender usage", exc) from None
        return int(value or 0)
