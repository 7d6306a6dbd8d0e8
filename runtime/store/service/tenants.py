"""Tenants: id, friendly name, delivery policy and the config version nodes poll.

``settings`` holds the delivery policy that has no Auth0 endpoint (``fallback``,
``default_country``, ``record``...) and, for a tenant imported from a tenants file, the
provider it used when that provider has no Auth0 counterpart; its credentials are sealed apart
(``credentials`` / ``set_credentials``) and never part of a row.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from runtime.errors import ConflictError, InvalidInputError, NotFoundError
from runtime.store.crypto import Keyring
from runtime.store.db import write_transaction
from runtime.store.schema import tenants
from runtime.store.service.common import bump, dumps, loads, now
from runtime.store.service.rows import TenantRow
from runtime.tenants import TENANT_ID_PATTERN, TenantConfig

__all__ = ["POLICY_FIELDS", "TenantRepository"]

POLICY_FIELDS = frozenset(
    {
        "fallback",
        "default_country",
        "record",
        "record_keep",
        "provider",
        "provider_settings",
        "templates",
        "voice_templates",
    }
)
"""The keys of ``settings``: TenantConfig's fields that the Auth0 endpoints do not set."""
_SEALED = "credentials_sealed"
VERSION_PAGE = 500
"""Ids per ``IN (...)`` query of :meth:`TenantRepository.versions_of` (SQLite allows 32766
parameters, PostgreSQL 65535: a page stays far below both and keeps each query short)."""


def _context(tenant: str) -> str:
    return f"tenant-credentials:{tenant}"


def check_policy(tenant: str, settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` if TenantConfig accepts them; else one error naming the field."""
    unknown = sorted(set(settings) - POLICY_FIELDS)
    if unknown:
        raise InvalidInputError("unknown setting", field=f"settings.{unknown[0]}")
    try:
        TenantConfig.model_validate({"id": tenant, **settings})
    except ValidationError as exc:
        raise InvalidInputError.from_validation_errors(exc.errors(), prefix="settings") from None
    return settings


class TenantRepository:
    def __init__(self, engine: Engine, keyring: Keyring) -> None:
        self._engine = engine
        self._keyring = keyring

    def create(
        self, id: str, friendly_name: str | None = None, *, settings: dict[str, Any] | None = None
    ) -> TenantRow:
        """A new tenant; :class:`ConflictError` when the id is taken."""
        import re

        if not isinstance(id, str) or not re.match(TENANT_ID_PATTERN, id):
            raise InvalidInputError(
                "must be 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit",
                field="id",
            )
        policy = check_policy(id, dict(settings or {}))
        moment = now()
        try:
            with write_transaction(self._engine) as conn:
                conn.execute(
                    insert(tenants).values(
                        id=id,
                        friendly_name=friendly_name,
                        settings=dumps(policy),
                        version=1,
                        created_at=moment,
                        updated_at=moment,
                    )
                )
        except IntegrityError:
            raise ConflictError(f"tenant {id!r} already exists") from None
        return self.get(id)

    def get(self, id: str) -> TenantRow:
        with self._engine.connect() as conn:
            row = conn.execute(select(tenants).where(tenants.c.id == id)).first()
        if row is None:
            raise NotFoundError(f"no tenant {id!r}")
        return _row(row._mapping)

    def list(self) -> list[TenantRow]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(tenants).order_by(tenants.c.id)).all()
        return [_row(r._mapping) for r in rows]

    def versions(self) -> dict[str, int]:
        """Every tenant's config version: one cheap query for pollers."""
        with self._engine.connect() as conn:
            rows = conn.execute(select(tenants.c.id, tenants.c.version)).all()
        return {r.id: r.version for r in rows}

    def versions_of(self, ids: Sequence[str]) -> dict[str, int]:
        """The config versions of ``ids`` (absent: no such tenant), :data:`VERSION_PAGE` ids
        per query: pollers ask only about the tenants they hold, never about every one."""
        found: dict[str, int] = {}
        with self._engine.connect() as conn:
            for start in range(0, len(ids), VERSION_PAGE):
                page = list(ids[start : start + VERSION_PAGE])
                query = select(tenants.c.id, tenants.c.version).where(tenants.c.id.in_(page))
                found.update({r.id: int(r.version) for r in conn.execute(query)})
        return found

    def version(self, id: str) -> int:
        with self._engine.connect() as conn:
            found = conn.execute(select(tenants.c.version).where(tenants.c.id == id)).first()
        if found is None:
            raise NotFoundError(f"no tenant {id!r}")
        return int(found.version)

    def update(self, id: str, **fields: Any) -> TenantRow:
        """Change ``friendly_name`` and/or ``settings`` (replaced whole)."""
        unknown = sorted(set(fields) - {"friendly_name", "settings"})
        if unknown:
            raise InvalidInputError("unknown field", field=unknown[0])
        with write_transaction(self._engine) as conn:
            row = conn.execute(select(tenants).where(tenants.c.id == id)).first()
            if row is None:
                raise NotFoundError(f"no tenant {id!r}")
            values: dict[str, Any] = {}
            if "friendly_name" in fields:
                values["friendly_name"] = fields["friendly_name"]
            if "settings" in fields:
                policy = check_policy(id, dict(fields["settings"] or {}))
                values["settings"] = _with_sealed(policy, loads(row.settings, {}).get(_SEALED))
            if values:
                conn.execute(update(tenants).where(tenants.c.id == id).values(**values))
            bump(conn, id)
        return self.get(id)

    def update_policy(self, id: str, fields: dict[str, Any]) -> TenantRow:
        """PATCH of ``settings``: the fields given replace the stored ones (``None`` removes
        one: its default applies), checked whole; on an error nothing is stored. One
        transaction, the version bump first (it locks the row on PostgreSQL), so two
        concurrent changes of different fields both stay."""
        with write_transaction(self._engine) as conn:
            bump(conn, id)
            row = conn.execute(select(tenants.c.settings).where(tenants.c.id == id)).first()
            assert row is not None  # bump raised NotFoundError otherwise
            stored = loads(row.settings, {})
            sealed = stored.pop(_SEALED, None)
            merged = {k: v for k, v in {**stored, **fields}.items() if v is not None}
            settings = _with_sealed(check_policy(id, merged), sealed)
            conn.execute(update(tenants).where(tenants.c.id == id).values(settings=settings))
        return self.get(id)

    def set_credentials(self, id: str, values: dict[str, str]) -> None:
        """Seal the credentials of the tenant's own provider (``settings.provider``)."""
        sealed = self._keyring.seal(json.dumps(values).encode(), _context(id)) if values else None
        with write_transaction(self._engine) as conn:
            row = conn.execute(select(tenants.c.settings).where(tenants.c.id == id)).first()
            if row is None:
                raise NotFoundError(f"no tenant {id!r}")
            settings = loads(row.settings, {})
            settings.pop(_SEALED, None)
            if sealed:
                settings[_SEALED] = sealed
            conn.execute(update(tenants).where(tenants.c.id == id).values(settings=dumps(settings)))
            bump(conn, id)

    def credentials(self, id: str) -> dict[str, str]:
        """The tenant's own provider credentials, opened: for deliveries, never for the API."""
        with self._engine.connect() as conn:
            row = conn.execute(select(tenants.c.settings).where(tenants.c.id == id)).first()
        if row is None:
            raise NotFoundError(f"no tenant {id!r}")
        sealed = loads(row.settings, {}).get(_SEALED)
        if not sealed:
            return {}
        opened: dict[str, str] = json.loads(self._keyring.open(sealed, _context(id)))
        return opened


def _row(m: Any) -> TenantRow:
    settings = loads(m["settings"], {})
    settings.pop(_SEALED, None)
    return TenantRow(
        id=m["id"],
        friendly_name=m["friendly_name"],
        settings=settings,
        version=int(m["version"]),
        created_at=m["created_at"],
        updated_at=m["updated_at"],
    )


def _with_sealed(policy: dict[str, Any], sealed: Any) -> str:
    """The stored ``settings``: the checked policy, and the sealed credentials kept as they
    were (a policy change never touches them)."""
    return dumps({**policy, **({_SEALED: sealed} if sealed else {})})
