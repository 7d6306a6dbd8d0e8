"""A tenant's phone abuse protection (``runtime.policy.PhoneLimits``) in the ``phone_limits``
table: only the fields the tenant set are stored, so a tenant that set nothing follows the
defaults as they are in the running version."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection, Engine, insert, select, update

from runtime.errors import InvalidInputError
from runtime.policy import PhoneLimits
from runtime.store.crypto import Keyring
from runtime.store.db import write_transaction
from runtime.store.schema import phone_limits
from runtime.store.service.common import bump, dumps, loads, now, require_tenant

__all__ = ["PhoneLimitsRepository", "limits_of"]


def limits_of(fields: Mapping[str, Any]) -> PhoneLimits:
    """``fields`` as :class:`PhoneLimits`, or one :class:`InvalidInputError` naming each field."""
    if not isinstance(fields, Mapping):
        raise InvalidInputError("must be an object", field="(body)")
    try:
        return PhoneLimits.model_validate(dict(fields))
    except ValidationError as exc:
        raise InvalidInputError.from_validation_errors(exc.errors()) from None


class PhoneLimitsRepository:
    def __init__(self, engine: Engine, keyring: Keyring) -> None:
        self._engine = engine
        del keyring  # nothing here is secret

    def stored(self, tenant: str) -> dict[str, Any]:
        """The fields the tenant set (empty: the defaults)."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(phone_limits.c.settings).where(phone_limits.c.tenant == tenant)
            ).first()
        return dict(loads(row[0], {})) if row is not None else {}

    def get(self, tenant: str) -> dict[str, Any]:
        """Every field, the defaults filled in (NotFoundError for an unknown tenant)."""
        with self._engine.connect() as conn:
            require_tenant(conn, tenant)
        return limits_of(self.stored(tenant)).model_dump(mode="json")

    def update(self, tenant: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """PATCH: the fields given replace the stored ones (null turns a rate off); the
        result must validate whole, else nothing is stored."""
        if not isinstance(fields, Mapping):
            raise InvalidInputError("must be an object", field="(body)")
        with write_transaction(self._engine) as conn:
            bump(conn, tenant)  # first: it locks the tenant's row on PostgreSQL
            row = conn.execute(
                select(phone_limits.c.settings).where(phone_limits.c.tenant == tenant)
            ).first()
            merged = {**(loads(row[0], {}) if row is not None else {}), **fields}
            limits = limits_of(merged)
            chosen = limits.model_dump(mode="json", include=set(merged))
            _store(conn, tenant, chosen, exists=row is not None)
        return limits.model_dump(mode="json")

    def replace(self, tenant: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Store exactly ``fields`` (the others follow the defaults), validated as
        :meth:`update`'s: a tenants file's import sets a tenant's limits so, whatever an
        earlier import or the API stored. On an error nothing is stored."""
        if not isinstance(fields, Mapping):
            raise InvalidInputError("must be an object", field="(body)")
        limits = limits_of(fields)
        chosen = limits.model_dump(mode="json", include=set(fields))
        with write_transaction(self._engine) as conn:
            bump(conn, tenant)  # first: it locks the tenant's row on PostgreSQL
            row = conn.execute(
                select(phone_limits.c.tenant).where(phone_limits.c.tenant == tenant)
            ).first()
            _store(conn, tenant, chosen, exists=row is not None)
        return limits.model_dump(mode="json")


def _store(conn: Connection, tenant: str, chosen: dict[str, Any], *, exists: bool) -> None:
    """Write the tenant's limits row: the fields ``chosen``, the others the defaults."""
    moment = now()
    if not exists:
        conn.execute(
            insert(phone_limits).values(
                tenant=tenant, settings=dumps(chosen), created_at=moment, updated_at=moment
            )
        )
    else:
        conn.execute(
            update(phone_limits)
            .where(phone_limits.c.tenant == tenant)
            .values(settings=dumps(chosen), updated_at=moment)
        )
