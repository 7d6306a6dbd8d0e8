"""The tenant's phone provider (Auth0's Unified Phone Experience): one per tenant, ``twilio``
or ``custom`` (the action bound to custom-phone-provider). Credentials are sealed and never
returned."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from runtime.errors import ConflictError, InvalidInputError, NotFoundError
from runtime.store.crypto import Keyring
from runtime.store.db import write_transaction
from runtime.store.schema import actions, phone_providers, trigger_bindings
from runtime.store.service.common import bump, dumps, iso, loads, new_id, now

__all__ = ["NO_DEPLOYED_ACTION", "NoDeployedActionError", "PhoneProviderRepository"]

NAMES = ("twilio", "custom")
_METHODS = ("text", "voice")
_TWILIO_KEYS = {"sid", "delivery_methods", "default_from", "mssid"}
_NOT_FOUND = "Phone provider has not been configured."
_TRIGGER = "custom-phone-provider"
NO_DEPLOYED_ACTION = "custom_email_provider_deployed_action_not_found"
"""Auth0's ``errorCode`` for a ``custom`` provider without a deployed action ("email" is
Auth0's own spelling, in its "Configure a Custom Phone Provider" page)."""


class NoDeployedActionError(InvalidInputError):
    """A ``custom`` provider with no deployed action bound to custom-phone-provider: it
    would send nothing, so Auth0 refuses it (400, ``errorCode`` :data:`NO_DEPLOYED_ACTION`)."""

    error_code = NO_DEPLOYED_ACTION

    def __init__(self) -> None:
        super().__init__(
            f"custom needs a deployed action bound to the {_TRIGGER} trigger: create an "
            f"action for {_TRIGGER}, deploy it and bind it "
            f"(PATCH /api/v2/actions/triggers/{_TRIGGER}/bindings) first",
            field="name",
        )


def credentials_context(tenant: str, id: str) -> str:
    return f"phone-provider:{tenant}:{id}"


class PhoneProviderRepository:
    def __init__(self, engine: Engine, keyring: Keyring) -> None:
        self._engine = engine
        self._keyring = keyring

    def list(self, tenant: str, disabled: bool | None = None) -> list[dict[str, Any]]:
        query = select(phone_providers).where(phone_providers.c.tenant == tenant)
        if disabled is not None:
            query = query.where(phone_providers.c.disabled.is_(disabled))
        with self._engine.connect() as conn:
            return [_api(r._mapping) for r in conn.execute(query).all()]

    def get(self, tenant: str, id: str) -> dict[str, Any]:
        return _api(self._row(tenant, id))

    def create(
        self,
        tenant: str,
        *,
        name: object,
        disabled: object = False,
        configuration: object,
        credentials: object,
    ) -> dict[str, Any]:
        name = _name(name)
        config = _configuration(str(name), configuration)
        secret = _credentials(str(name), credentials, required=True)
        id = new_id("pro_")
        moment = now()
        try:
            with write_transaction(self._engine) as conn:
                bump(conn, tenant)
                if conn.execute(
                    select(phone_providers.c.id).where(phone_providers.c.tenant == tenant)
                ).first():
                    raise ConflictError("Custom phone provider conflict")
                if name == "custom":
                    _require_deployed_action(conn, tenant)
                conn.execute(
                    insert(phone_providers).values(
                        id=id,
                        tenant=tenant,
                        name=name,
                        disabled=_bool(disabled, "disabled"),
                        configuration=dumps(config),
                        credentials_sealed=self._seal(tenant, id, secret),
                        created_at=moment,
                        updated_at=moment,
                    )
                )
        except IntegrityError:  # PostgreSQL: another create won the race (one per tenant)
            raise ConflictError("Custom phone provider conflict") from None
        return self.get(tenant, id)

    def update(self, tenant: str, id: str, **fields: Any) -> dict[str, Any]:
        unknown = sorted(set(fields) - {"name", "disabled", "configuration", "credentials"})
        if unknown:
            raise InvalidInputError("unknown field", field=unknown[0])
        if not fields:
            raise InvalidInputError("give at least one field", field="(body)")
        with write_transaction(self._engine) as conn:
            bump(conn, tenant)
            row = conn.execute(
                select(phone_providers).where(
                    phone_providers.c.id == id, phone_providers.c.tenant == tenant
                )
            ).first()
            if row is None:
                raise NotFoundError(_NOT_FOUND)
            name = _name(fields["name"]) if "name" in fields else row.name
            values: dict[str, Any] = {"name": name, "updated_at": now()}
            if "disabled" in fields:
                values["disabled"] = _bool(fields["disabled"], "disabled")
            if "configuration" in fields or name != row.name:
                config = fields.get("configuration", loads(row.configuration, {}))
                values["configuration"] = dumps(_configuration(name, config))
            if "credentials" in fields:
                secret = _credentials(name, fields["credentials"], required=True)
                values["credentials_sealed"] = self._seal(tenant, id, secret)
            elif name != row.name:
                _credentials(name, {}, required=name == "twilio")  # twilio needs a token
            if name == "custom" and row.name != "custom":
                _require_deployed_action(conn, tenant)
            conn.execute(update(phone_providers).where(phone_providers.c.id == id).values(**values))
        return self.get(tenant, id)

    def delete(self, tenant: str, id: str) -> None:
        with write_transaction(self._engine) as conn:
            bump(conn, tenant)
            done = conn.execute(
                delete(phone_providers).where(
                    phone_providers.c.id == id, phone_providers.c.tenant == tenant
                )
            )
            if done.rowcount != 1:
                raise NotFoundError(_NOT_FOUND)

    def active(self, tenant: str) -> tuple[dict[str, Any], dict[str, str]] | None:
        """The enabled provider and its opened credentials, for deliveries (None if none)."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(phone_providers).where(
                    phone_providers.c.tenant == tenant, phone_providers.c.disabled.is_(False)
                )
            ).first()
        if row is None:
            return None
        opened: dict[str, str] = {}
        if row.credentials_sealed:
            opened = json.loads(
                self._keyring.open(row.credentials_sealed, credentials_context(tenant, row.id))
            )
        return _api(row._mapping), opened

    def _row(self, tenant: str, id: str) -> Any:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(phone_providers).where(
                    phone_providers.c.id == id, phone_providers.c.tenant == tenant
                )
            ).first()
        if row is None:
            raise NotFoundError(_NOT_FOUND)
        return row._mapping

    def _seal(self, tenant: str, id: str, secret: dict[str, str]) -> str | None:
        if not secret:
            return None
        return self._keyring.seal(json.dumps(secret).encode(), credentials_context(tenant, id))


def _api(m: Any) -> dict[str, Any]:
    return {
        "id": m["id"],
        "tenant": m["tenant"],
        "name": m["name"],
        "channel": "phone",
        "disabled": bool(m["disabled"]),
        "configuration": loads(m["configuration"], {}),
        "created_at": iso(m["created_at"]),
        "updated_at": iso(m["updated_at"]),
    }


def _require_deployed_action(conn: Connection, tenant: str) -> None:
    """Refuse a ``custom`` provider unless an action with a deployed version is bound to
    custom-phone-provider (what its deliveries run, runtime/store/tenant_config.py). Read in
    the write's transaction, after ``bump`` locked the tenant: a binding changed meanwhile
    waits for this write, or this write sees it."""
    bound = conn.execute(
        select(trigger_bindings.c.id)
        .join(actions, actions.c.id == trigger_bindings.c.action_id)
        .where(
            trigger_bindings.c.tenant == tenant,
            trigger_bindings.c.trigger_id == _TRIGGER,
            actions.c.tenant == tenant,
            actions.c.deployed_version_id.is_not(None),
        )
        .limit(1)
    ).first()
    if bound is None:
        raise NoDeployedActionError()


def _name(value: object) -> str:
    if value not in NAMES:
        raise InvalidInputError(f"must be one of {', '.join(NAMES)}", field="name")
    return str(value)


def _bool(value: object, field: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInputError("must be true or false", field=field)
    return value


def _configuration(name: str, value: object) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidInputError("must be an object", field="configuration")
    allowed = _TWILIO_KEYS if name == "twilio" else {"delivery_methods"}
    for key in value:
        if key not in allowed:
            raise InvalidInputError(f"unknown field for {name}", field=f"configuration.{key}")
    methods = value.get("delivery_methods")
    if (
        not isinstance(methods, list)
        or not methods
        or any(m not in _METHODS for m in methods)
        or len(set(methods)) != len(methods)
    ):
        raise InvalidInputError(
            "must be a non-empty list of text and voice", field="configuration.delivery_methods"
        )
    out: dict[str, Any] = {"delivery_methods": list(methods)}
    if name == "twilio":
        for key, required, maximum in (
            ("sid", True, 255),
            ("default_from", False, 16),
            ("mssid", False, 255),
        ):
            item = value.get(key)
            if item is None and not required:
                continue
            if not isinstance(item, str) or not 1 <= len(item) <= maximum:
                raise InvalidInputError(
                    f"must be a string of 1 to {maximum} characters", field=f"configuration.{key}"
                )
            out[key] = item
    return out


def _credentials(name: str, value: object, *, required: bool) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise InvalidInputError("must be an object", field="credentials")
    if name == "custom":
        if value:
            raise InvalidInputError("must be {} for custom", field="credentials")
        return {}
    for key in value:
        if key != "auth_token":
            raise InvalidInputError("unknown field", field=f"credentials.{key}")
    token = value.get("auth_token")
    if token is None and not required:
        return {}
    if not isinstance(token, str) or not 1 <= len(token) <= 255:
        raise InvalidInputError(
            "is required: a string of 1 to 255 characters", field="credentials.auth_token"
        )
    return {"auth_token": token}
