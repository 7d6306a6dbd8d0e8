"""The guardian phone factor's settings: message types, the selected provider, Twilio's
settings (the auth token sealed, never returned) and the two SMS templates."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from runtime import templates
from runtime.errors import InvalidInputError
from runtime.events import Purpose
from runtime.store.crypto import Keyring
from runtime.store.db import write_transaction
from runtime.store.schema import guardian_phone
from runtime.store.service.common import bump, dumps, loads, now

__all__ = ["DEFAULT_TEMPLATES", "MESSAGE_TYPES", "PROVIDERS", "GuardianRepository"]

MESSAGE_TYPES = ("sms", "voice")
PROVIDERS = ("auth0", "twilio", "phone-message-hook")
TEMPLATE_PURPOSES: dict[str, Purpose] = {
    "enrollment_message": "enrollment",
    "verification_message": "verification",
}
DEFAULT_TEMPLATES = {  # what a tenant without templates is sent: runtime.templates' SMS ones
    key: templates.DEFAULT_TEMPLATES["sms", purpose] for key, purpose in TEMPLATE_PURPOSES.items()
}
_TWILIO_LIMITS = {"from": 64, "sid": 1000, "messaging_service_sid": 1000, "auth_token": 1000}


def twilio_context(tenant: str) -> str:
    return f"guardian-twilio:{tenant}"


class GuardianRepository:
    def __init__(self, engine: Engine, keyring: Keyring) -> None:
        self._engine = engine
        self._keyring = keyring

    def settings(self, tenant: str) -> dict[str, Any] | None:
        """The stored row as plain values (None when never set), the token still sealed."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(guardian_phone).where(guardian_phone.c.tenant == tenant)
            ).first()
        return None if row is None else dict(row._mapping)

    def message_types(self, tenant: str) -> list[str]:
        row = self.settings(tenant)
        return list(loads(row["message_types"], ["sms"])) if row else ["sms"]

    def set_message_types(self, tenant: str, types: object) -> list[str]:
        if not isinstance(types, list) or any(t not in MESSAGE_TYPES for t in types):
            raise InvalidInputError("must be a list of sms and voice", field="message_types")
        chosen = [t for t in MESSAGE_TYPES if t in types]
        self._write(tenant, message_types=dumps(chosen))
        return chosen

    def selected_provider(self, tenant: str) -> str:
        row = self.settings(tenant)
        return str(row["selected_provider"]) if row else "auth0"

    def set_selected_provider(self, tenant: str, name: object) -> str:
        if name not in PROVIDERS:
            raise InvalidInputError(f"must be one of {', '.join(PROVIDERS)}", field="provider")
        self._write(tenant, selected_provider=str(name))
        return str(name)

    def twilio(self, tenant: str) -> dict[str, Any]:
        """Auth0's shape; ``auth_token`` is always None (write-only)."""
        row = self.settings(tenant)
        stored = loads(row["twilio"], {}) if row else {}
        return {
            "from": stored.get("from"),
            "messaging_service_sid": stored.get("messaging_service_sid"),
            "auth_token": None,
            "sid": stored.get("sid"),
        }

    def twilio_token(self, tenant: str) -> str | None:
        """The auth token, opened: for deliveries only."""
        row = self.settings(tenant)
        if not row or not row["twilio_token_sealed"]:
            return None
        return self._keyring.open(row["twilio_token_sealed"], twilio_context(tenant)).decode()

    def set_twilio(self, tenant: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Set the fields given (PUT: none required); a null clears one."""
        if not isinstance(fields, Mapping):
            raise InvalidInputError("must be an object", field="(body)")
        for key, value in fields.items():
            if key not in _TWILIO_LIMITS:
                raise InvalidInputError("unknown field", field=key)
            if value is not None and (
                not isinstance(value, str) or not 1 <= len(value) <= _TWILIO_LIMITS[key]
            ):
                raise InvalidInputError(
                    f"must be a string of 1 to {_TWILIO_LIMITS[key]} characters or null",
                    field=key,
                )
        row = self.settings(tenant)
        stored = loads(row["twilio"], {}) if row else {}
        stored.update({k: v for k, v in fields.items() if k != "auth_token"})
        values: dict[str, Any] = {"twilio": dumps(stored)}
        if "auth_token" in fields:
            token = fields["auth_token"]
            values["twilio_token_sealed"] = (
                self._keyring.seal(token.encode(), twilio_context(tenant)) if token else None
            )
        self._write(tenant, **values)
        return self.twilio(tenant)

    def templates(self, tenant: str) -> dict[str, str]:
        row = self.settings(tenant)
        stored = loads(row["templates"], None) if row else None
        return dict(stored) if stored else dict(DEFAULT_TEMPLATES)

    def custom_templates(self, tenant: str) -> dict[str, str] | None:
        """The templates the tenant set (None while it uses the defaults)."""
        row = self.settings(tenant)
        return loads(row["templates"], None) if row else None

    def set_templates(self, tenant: str, fields: Mapping[str, Any]) -> dict[str, str]:
        """Both templates (required, as Auth0's PUT); each must print the code."""
        if not isinstance(fields, Mapping):
            raise InvalidInputError("must be an object", field="(body)")
        for key in fields:
            if key not in DEFAULT_TEMPLATES:
                raise InvalidInputError("unknown field", field=key)
        chosen = {}
        for key, purpose in TEMPLATE_PURPOSES.items():
            value = fields.get(key)
            if not isinstance(value, str) or not value:
                raise InvalidInputError("is required: a non-empty string", field=key)
            problem = templates.check(value, "sms", purpose)
            if problem:
                raise InvalidInputError(problem, field=key)
            chosen[key] = value
        self._write(tenant, templates=dumps(chosen))
        return chosen

    def _write(self, tenant: str, **values: Any) -> None:
        with write_transaction(self._engine) as conn:
            bump(conn, tenant)  # first: on PostgreSQL it locks the tenant's row for this change
            self._ensure(conn, tenant)
            conn.execute(
                update(guardian_phone)
                .where(guardian_phone.c.tenant == tenant)
                .values(**values, updated_at=now())
            )

    @staticmethod
    def _ensure(conn: Connection, tenant: str) -> None:
        if conn.execute(
            select(guardian_phone.c.tenant).where(guardian_phone.c.tenant == tenant)
        ).first():
            return
        moment = now()
        conn.execute(
            insert(guardian_phone).values(
                tenant=tenant,
                message_types=json.dumps(["sms"]),
                selected_provider="auth0",
                twilio=None,
                twilio_token_sealed=None,
                templates=None,
                created_at=moment,
                updated_at=moment,
            )
        )
