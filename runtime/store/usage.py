"""The default sender's lifetime cap per tenant, whichever provider is the default sender.

One counter row per tenant, moved by single statements: ``reserve`` is one upsert that adds
one only while the counter is under the cap and says whether it did (``INSERT .. ON CONFLICT
DO UPDATE .. WHERE used < cap RETURNING``). One statement is one transaction and is atomic on
both databases (SQLite holds its write lock for the whole statement; PostgreSQL locks the
row), so the cap is exact across processes and nodes: no count is read outside the write.
Like the idempotency store, each call is one statement on a kept connection.
"""

from __future__ import annotations

from sqlalchemy import Engine, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite

from runtime.store.db import describe, prepare
from runtime.store.kept import KeptConnections
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
        self.database = describe(engine)
        self._kept = KeptConnections(engine)
        dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
        insert = dialect.insert(default_sender_usage).values(tenant=bindparam("tenant"), used=1)
        reserve = insert.on_conflict_do_update(
            index_elements=[_u.tenant],
            set_={"used": _u.used + 1},
            where=_u.used < bindparam("cap"),
        ).returning(_u.used)
        self._reserve = prepare(engine, reserve)
        self._refund = prepare(engine, _REFUND)
        self._used = prepare(engine, _USED)

    def reserve(self, tenant: str, cap: int) -> bool:
        """Take one of ``tenant``'s ``cap`` sends: True if one was left (now used), else False.
        Not repeated on a lost connection: the first try may have counted."""
        if cap <= 0:
            return False
        params = {"tenant": tenant, "cap": cap}
        _, row = self._kept.execute(
            "reserving a default-sender send", self._reserve, params, repeatable=False, fetch=True
        )
        return row is not None

    def refund(self, tenant: str) -> None:
        """Give one back: the attempt failed without handing the message off."""
        self._kept.execute(
            "refunding a default-sender send", self._refund, {"w_tenant": tenant}, repeatable=False
        )

    def used(self, tenant: str) -> int:
        """How many of ``tenant``'s sends are taken."""
        params = {"w_tenant": tenant}
        what = "reading default-sender usage"
        _, row = self._kept.execute(what, self._used, params, repeatable=True, fetch=True)
        return 0 if row is None else int(row[0])

    def close(self) -> None:
        """Give back the kept connections (the next call opens another)."""
        self._kept.close()
