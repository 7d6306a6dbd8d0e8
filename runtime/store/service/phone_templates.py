"""Phone templates (Auth0's Unified Phone Experience): one per type and tenant. The two OTP
types feed deliveries, so their bodies must compile and print the code (runtime.templates)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from runtime import templates
from runtime.errors import ConflictError, InvalidInputError, NotFoundError
from runtime.events import Channel, Purpose
from runtime.store.crypto import Keyring
from runtime.store.db import write_transaction
from runtime.store.schema import phone_templates
from runtime.store.service.common import bump, dumps, iso, loads, new_id, now

__all__ = ["BUILT_IN_SOURCES", "DEFAULT_CONTENT", "PURPOSES", "TYPES", "PhoneTemplateRepository"]

TYPES = ("otp_verify", "otp_enroll", "change_password", "blocked_account", "password_breach")
PURPOSES: dict[str, Purpose] = {"otp_verify": "verification", "otp_enroll": "enrollment"}


def _built_in_source(channel: Channel, purpose: Purpose) -> str:
    """One Liquid body that renders exactly as runtime.templates' built-in messages: the
    language is the first non-empty subtag of ``locale`` (its ``.charset`` and ``@modifier``
    dropped, ``_`` read as ``-``, any case), as :func:`runtime.templates.locale_chain` picks
    it; a language without a translation is English."""
    languages = sorted(templates.LOCALISED_TEMPLATES)
    assert all(language.isalpha() for language in languages)  # no region: one subtag each
    lines = [
        '{%- assign parts = locale | split: "." | first | split: "@" | first '
        '| replace: "_", "-" | strip | downcase | split: "-" -%}',
        '{%- assign language = "" -%}',
        '{%- for part in parts -%}{%- if part != "" -%}{%- assign language = part -%}'
        "{%- break -%}{%- endif -%}{%- endfor -%}",
        "{%- case language -%}",
    ]
    for language in languages:
        if language != "en":
            lines.append(f'{{%- when "{language}" -%}}')
            lines.append(templates.LOCALISED_TEMPLATES[language][channel, purpose])
    lines.append("{%- else -%}")
    lines.append(templates.LOCALISED_TEMPLATES["en"][channel, purpose])
    lines.append("{%- endcase -%}")
    return "\n".join(lines)


BUILT_IN_SOURCES: dict[tuple[Channel, Purpose], str] = {
    key: _built_in_source(*key) for key in templates.DEFAULT_TEMPLATES
}
"""The built-in messages, every language of one channel and purpose in one Liquid body: a
template holding one sends what a tenant without templates is sent. They are the default
bodies of ``otp_verify`` and ``otp_enroll``, so creating or resetting one of those changes
nothing a delivery sends, in any language."""

DEFAULT_CONTENT: dict[str, dict[str, Any]] = {
    kind: {
        "syntax": "liquid",
        "body": {
            "text": text,
            "voice": voice,
        },
    }
    for kind, text, voice in (
        *(
            (kind, BUILT_IN_SOURCES["sms", purpose], BUILT_IN_SOURCES["voice", purpose])
            for kind, purpose in PURPOSES.items()
        ),
        (
            "change_password",
            "Your {{ tenant.friendly_name }} password was changed.",
            "Your {{ tenant.friendly_name }} password was changed.",
        ),
        (
            "blocked_account",
            "Your {{ tenant.friendly_name }} account was blocked after too many attempts.",
            "Your {{ tenant.friendly_name }} account was blocked after too many attempts.",
        ),
        (
            "password_breach",
            "Your {{ tenant.friendly_name }} password was found in a breach: change it.",
            "Your {{ tenant.friendly_name }} password was found in a breach: change it.",
        ),
    )
}
_CONFLICT = "Phone template already configured for tenant"
_NOT_FOUND = "Phone template not found"


class PhoneTemplateRepository:
    def __init__(self, engine: Engine, keyring: Keyring) -> None:
        self._engine = engine

    def list(self, tenant: str, disabled: bool | None = None) -> list[dict[str, Any]]:
        query = select(phone_templates).where(phone_templates.c.tenant == tenant)
        if disabled is not None:
            query = query.where(phone_templates.c.disabled.is_(disabled))
        with self._engine.connect() as conn:
            rows = conn.execute(query.order_by(phone_templates.c.type)).all()
        return [_api(r._mapping) for r in rows]

    def get(self, tenant: str, id: str) -> dict[str, Any]:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(phone_templates).where(
                    phone_templates.c.id == id, phone_templates.c.tenant == tenant
                )
            ).first()
        if row is None:
            raise NotFoundError(_NOT_FOUND)
        return _api(row._mapping)

    def create(
        self, tenant: str, *, type: object, disabled: object = False, content: object = None
    ) -> dict[str, Any]:
        if type not in TYPES:
            raise InvalidInputError(f"must be one of {', '.join(TYPES)}", field="type")
        kind = str(type)
        body = _content(kind, DEFAULT_CONTENT[kind] if content is None else content)
        id = new_id("tem_")
        moment = now()
        try:
            with write_transaction(self._engine) as conn:
                bump(conn, tenant)
                if conn.execute(
                    select(phone_templates.c.id).where(
                        phone_templates.c.tenant == tenant, phone_templates.c.type == kind
                    )
                ).first():
                    raise ConflictError(_CONFLICT)
                conn.execute(
                    insert(phone_templates).values(
                        id=id,
                        tenant=tenant,
                        type=kind,
                        disabled=_bool(disabled),
                        content=dumps(body),
                        created_at=moment,
                        updated_at=moment,
                    )
                )
        except IntegrityError:
            raise ConflictError(_CONFLICT) from None
        return self.get(tenant, id)

    def update(self, tenant: str, id: str, **fields: Any) -> dict[str, Any]:
        unknown = sorted(set(fields) - {"content", "disabled"})
        if unknown:
            raise InvalidInputError("unknown field", field=unknown[0])
        if not fields:
            raise InvalidInputError("give at least one field", field="(body)")
        current = self.get(tenant, id)
        values: dict[str, Any] = {"updated_at": now()}
        if "disabled" in fields:
            values["disabled"] = _bool(fields["disabled"])
        if "content" in fields:
            given = fields["content"]
            if not isinstance(given, Mapping):
                raise InvalidInputError("must be an object", field="content")
            merged = {**current["content"], **given}
            if "body" in given and isinstance(given["body"], Mapping):
                merged["body"] = {**current["content"].get("body", {}), **given["body"]}
            values["content"] = dumps(_content(current["type"], merged))
        return self._write(tenant, id, values)

    def reset(self, tenant: str, id: str) -> dict[str, Any]:
        """Back to the default content of its type."""
        current = self.get(tenant, id)
        return self._write(
            tenant, id, {"content": dumps(DEFAULT_CONTENT[current["type"]]), "updated_at": now()}
        )

    def delete(self, tenant: str, id: str) -> None:
        with write_transaction(self._engine) as conn:
            bump(conn, tenant)
            done = conn.execute(
                delete(phone_templates).where(
                    phone_templates.c.id == id, phone_templates.c.tenant == tenant
                )
            )
            if done.rowcount != 1:
                raise NotFoundError(_NOT_FOUND)

    def _write(self, tenant: str, id: str, values: dict[str, Any]) -> dict[str, Any]:
        with write_transaction(self._engine) as conn:
            bump(conn, tenant)
            done = conn.execute(
                update(phone_templates)
                .where(phone_templates.c.id == id, phone_templates.c.tenant == tenant)
                .values(**values)
            )
            if done.rowcount != 1:
                raise NotFoundError(_NOT_FOUND)
        return self.get(tenant, id)


def _api(m: Any) -> dict[str, Any]:
    return {
        "id": m["id"],
        "tenant": m["tenant"],
        "channel": "phone",
        "customizable": True,
        "type": m["type"],
        "disabled": bool(m["disabled"]),
        "content": loads(m["content"], {}),
        "created_at": iso(m["created_at"]),
        "updated_at": iso(m["updated_at"]),
    }


def _bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidInputError("must be true or false", field="disabled")
    return value


def _content(kind: str, value: object) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidInputError("must be an object", field="content")
    for key in value:
        if key not in ("syntax", "from", "body"):
            raise InvalidInputError("unknown field", field=f"content.{key}")
    syntax = value.get("syntax", "liquid")
    if syntax != "liquid":
        raise InvalidInputError("must be liquid", field="content.syntax")
    out: dict[str, Any] = {"syntax": "liquid"}
    sender = value.get("from")
    if sender is not None:
        if not isinstance(sender, str) or not 1 <= len(sender) <= 16:
            raise InvalidInputError("must be 1 to 16 characters", field="content.from")
        out["from"] = sender
    body = value.get("body", {})
    if not isinstance(body, Mapping):
        raise InvalidInputError("must be an object", field="content.body")
    checked: dict[str, str] = {}
    for key in body:
        if key not in ("text", "voice"):
            raise InvalidInputError("unknown field", field=f"content.body.{key}")
    for key, channel in (("text", "sms"), ("voice", "voice")):
        text = body.get(key)
        if text is None:
            continue
        field = f"content.body.{key}"
        if not isinstance(text, str) or not 1 <= len(text) <= 20000:
            raise InvalidInputError("must be 1 to 20000 characters", field=field)
        purpose = PURPOSES.get(kind)
        if purpose is not None:  # sent with a code: it must compile and print it
            problem = templates.check(text, _channel(channel), purpose)
            if problem:
                raise InvalidInputError(problem, field=field)
        checked[key] = text
    out["body"] = checked
    return out


def _channel(name: str) -> Channel:
    return "voice" if name == "voice" else "sms"
