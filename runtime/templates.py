"""Message text from Liquid templates (python-liquid), as Auth0's phone templates.

A template sees ``code`` (for voice, spelled digit by digit: ``1. 2. 3. 4. 5. 6``),
``message_type`` (``sms`` or ``voice``), ``purpose``, ``locale``, ``tenant.friendly_name``
(also ``tenant.friendlyName``) and ``tenant.id``.
"""

from __future__ import annotations

from functools import lru_cache

from liquid import Environment, Template
from liquid.exceptions import LiquidError

from runtime.errors import ConfigurationError
from runtime.events import Channel, Purpose

__all__ = ["DEFAULT_TEMPLATES", "render", "spell_code"]

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
def _compile(source: str) -> Template:
    return _ENVIRONMENT.from_string(source)


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
    template_source = source or DEFAULT_TEMPLATES[(channel, purpose)]
    tenant = {"id": tenant_id, "friendly_name": tenant_name, "friendlyName": tenant_name}
    try:
        return (
            _compile(template_source)
            .render(
                code=spell_code(code) if channel == "voice" else code,
                message_type=channel,
                purpose=purpose,
                locale=locale,
                tenant=tenant,
            )
            .strip()
        )
    except LiquidError as exc:
        raise ConfigurationError(f"{channel} {purpose} template: {exc}") from exc
