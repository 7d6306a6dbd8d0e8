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

from runtime.errors import StoreUnavailableError
from runtime.ids import new_id
from runtime.store.db import describe, prepare
from runtime.store.kept import KeptConnections
from runtime.store.schema import default_sender_usage

__all__ = ["DefaultSenderUsage"]

_u = default_sender_usage.c
_USED = select(_u.used).where(_u.tenant == bindparam("w_tenant"))
_LAST = select(_u.last_reservation).where(_u.tenant == bindparam("w_tenant"))
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
        insert = dialect.insert(default_sender_usage).values(
            tenant=bindparam("tenant"), used=1, last_reservation=bindparam("reservation")
        )
        reserve = insert.on_conflict_do_update(
            index_elements=[_u.tenant],
            set_={"used": _u.used + 1, "last_reservation": insert.excluded.last_reservation},
            where=_u.used < bindparam("cap"),
        ).returning(_u.used)
        self._reserve = prepare(engine, reserve)
        self._refund = prepare(engine, _REFUND)
        self._used = prepare(engine, _USED)
        self._last = prepare(engine, _LAST)

    def reserve(self, tenant: str, cap: int) -> bool:
        """Take one of ``tenant``'s ``cap`` sends: True if one was left (now used), else False.
        Not repeated on a lost connection: the first try may have counted, which the row's
        ``last_reservation`` then says (this call's id: counted, and this caller's)."""
        if cap <= 0:
            return False
        reservation = new_id()
        params = {"tenant": tenant, "cap": cap, "reservation": reservation}
        try:
            _, row = self._kept.execute(
                "reserving a default-sender send",
                self._reserve,
                params,
                repeatable=False,
                fetch=True,
            )
        except StoreUnavailableError:
            # the answer may have been lost after the upsert committed (a reset connection):
            # counted if the row names this reservation, and then it is this caller's
            if self._last_reservation(tenant) == reservation:
                return True
            raise
        return row is not None

    def _last_reservation(self, tenant: str) -> str | None:
        """The row's last reservation, or None when it cannot be read either."""
        try:
            _, row = self._kept.execute(
                "reading the last default-sender reservation",
                self._last,
                {"w_tenant": tenant},
                repeatable=True,
                fetch=True,
            )
        except StoreUnavailableError:
            return None
        return None if row is None else row[0]

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
