"""Message text from Liquid templates (python-liquid), as Auth0's phone templates.

A template sees ``code`` (for voice, spelled digit by digit: ``1. 2. 3. 4. 5. 6``),
``message_type`` (``sms`` or ``voice``), ``purpose``, ``locale``, ``tenant.friendly_name``
(also ``tenant.friendlyName``) and ``tenant.id``.
"""

from __future__ import annotations

from functools import lru_cache

from liquid import BoundTemplate, Environment
from liquid.exceptions import LiquidError

from runtime.errors import ConfigurationError
from runtime.events import Channel, Purpose

__all__ = ["DEFAULT_TEMPLATES", "check", "render", "spell_code"]

DEFAULT_TEMPLATES: dict[tuple[Channel, Purpose], str] = {
    ("sms", "enrollment"): "{{ code }} is your verification code for {{ tenant.friendly_name }}. "
    "Please enter this code to verify your enrollment.",
    ("sms", "verification"): "{{ code }} is your verification code for {{ tenant.friendly_name }}.",
    ("voice", "enrollment"): "Your enrollment code for {{ tenant.friendly_name }} is {{ code }}.",
    ("voice", "verification"): "Your verification code for {{ tenant.friendly_name }} is "
    "{{ code }}.",
}

_ENVIRONMENT = Environment()


def spell_code(code: str) -> str:
    """``"123456"`` → ``"1. 2. 3. 4. 5. 6"``: a speech engine says each digit, with pauses."""
    return ". ".join(code)


@lru_cache(maxsize=1024)
def _compile(source: str) -> BoundTemplate:
    return _ENVIRONMENT.from_string(source)


_CODE_MARKER = "\x00code\x00"


@lru_cache(maxsize=4096)
def _default_with_marker(
    channel: Channel, purpose: Purpose, tenant_id: str, tenant_name: str
) -> str:
    """A built-in template rendered once per tenant, with a marker where the code goes.

    The built-in templates only print ``code`` (no filter, no condition on it), so putting the
    code in place of the marker gives exactly what Liquid would render, without paying for a
    Liquid render on every message. Tenants' own templates are always rendered by Liquid.
    """
    return _render_liquid(
        DEFAULT_TEMPLATES[(channel, purpose)],
        channel,
        purpose,
        _CODE_MARKER,
        "",
        tenant_id,
        tenant_name,
    )


def _render_liquid(
    source: str,
    channel: Channel,
    purpose: Purpose,
    code: str,
    locale: str,
    tenant_id: str,
    tenant_name: str,
) -> str:
    tenant = {"id": tenant_id, "friendly_name": tenant_name, "friendlyName": tenant_name}
    try:
        rendered: str = _compile(source).render(
            code=code, message_type=channel, purpose=purpose, locale=locale, tenant=tenant
        )
        return rendered.strip()
    except LiquidError as exc:
        raise ConfigurationError(f"{channel} {purpose} template: {exc}") from exc


def check(source: str) -> str | None:
    """Why a tenant's template cannot be used (a Liquid error, or no ``code``), else None."""
    try:
        variables = _compile(source).analyze().variables
    except LiquidError as exc:
        return str(exc).splitlines()[0]
    if "code" not in variables:
        return "the template never prints {{ code }}, so the message would not carry the code"
    return None


def render(
    source: str | None,
    *,
    channel: Channel,
    purpose: Purpose,
    code: str,
    locale: str,
    tenant_id: str,
    tenant_name: str,
) -> str:
    """Render ``source`` (or the default template) for one message.

    Raises :class:`ConfigurationError` naming the template and its error (with the line, when
    Liquid gives one): a tenant's broken template is its configuration, not the caller's input.
    """
    spoken = spell_code(code) if channel == "voice" else code
    if not source:
        return _default_with_marker(channel, purpose, tenant_id, tenant_name).replace(
            _CODE_MARKER, spoken
        )
    return _render_liquid(source, channel, purpose, spoken, locale, tenant_id, tenant_name)
