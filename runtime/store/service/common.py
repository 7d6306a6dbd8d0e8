"""What every repository shares: times, ids, JSON columns, the tenant's config version.

Every change of configuration bumps ``tenants.version`` in the same transaction
(:func:`bump`), so that nodes polling that column (``StoreTenantDirectory``) see the change;
the bump also proves the tenant exists (a missing tenant is :class:`NotFoundError`).
"""

from __future__ import annotations

import json
import secrets
import string
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select, update

from runtime.errors import InvalidInputError, NotFoundError
from runtime.store.schema import tenants

__all__ = ["bump", "dumps", "iso", "loads", "new_id", "now", "require_tenant", "text_field"]

_ALPHABET = string.ascii_letters + string.digits


def now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime | None) -> str | None:
    """ISO-8601 in UTC with milliseconds and ``Z``, as Auth0 writes times."""
    if moment is None:
        return None
    if moment.tzinfo is None:  # SQLite gives naive datetimes back: they were stored in UTC
        moment = moment.replace(tzinfo=UTC)
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def new_id(prefix: str) -> str:
    """``prefix`` and 22 random letters and digits, the shape of Auth0's ``pro_``/``tem_`` ids."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(22))


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def loads(text: str | None, default: Any = None) -> Any:
    return default if text is None else json.loads(text)


def text_field(value: object, field: str, *, maximum: int, minimum: int = 1) -> str:
    """``value`` as a string of ``minimum``..``maximum`` characters, or one error naming it."""
    if not isinstance(value, str):
        raise InvalidInputError("must be a string", field=field)
    if not minimum <= len(value) <= maximum:
        raise InvalidInputError(
            f"must be {minimum} to {maximum} characters, not {len(value)}", field=field
        )
    return value


def require_tenant(conn: Connection, tenant: str) -> None:
    """:class:`NotFoundError` unless ``tenant`` exists."""
    found = conn.execute(select(tenants.c.id).where(tenants.c.id == tenant)).first()
    if found is None:
        raise NotFoundError(f"no tenant {tenant!r}")


def bump(conn: Connection, tenant: str) -> None:
    """Mark ``tenant``'s configuration changed (inside the caller's transaction)."""
    done = conn.execute(
        update(tenants)
        .where(tenants.c.id == tenant)
        .values(version=tenants.c.version + 1, updated_at=now())
    )
    if done.rowcount != 1:
        raise NotFoundError(f"no tenant {tenant!r}")
