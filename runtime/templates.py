"""Message text from Liquid templates (python-liquid), as Auth0's phone templates.

A template sees Auth0's variables: ``code`` (for voice, spelled digit by digit with a pause
after each: ``1. 2. 3. 4. 5. 6``), ``message_type`` (``sms`` or ``voice``), ``locale``,
``tenant.friendly_name`` (also ``tenant.friendlyName`` and, as in the Unified Phone Experience,
``friendly_name``), ``tenant.id``, ``requestInfo.lang`` (Classic Login's name for the locale),
``pause`` (a pause in a voice message, nothing in an SMS) and this runtime's ``purpose``.

The built-in templates exist in several languages (:data:`LOCALISED_TEMPLATES`); the one used
is the first of the locale's fallback chain (:func:`locale_chain`: ``fr-CA``, ``fr``, ``en``).
A tenant's own template is one body for every language, as Auth0's: it branches on ``locale``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any, ClassVar

from liquid import BoundTemplate, Environment, RenderContext
from liquid.ast import Node
from liquid.builtin.tags.for_tag import ForNode
from liquid.builtin.tags.tablerow_tag import TablerowNode
from liquid.exceptions import (
    LiquidError,
    LocalNamespaceLimitError,
    LoopIterationLimitError,
    OutputStreamLimitError,
    ResourceLimitError,
)
from liquid.expression import Expression
from liquid.token import Token

from runtime.errors import ConfigurationError
from runtime.events import Channel, Purpose

__all__ = [
    "DEFAULT_TEMPLATES",
    "FILTER_STEPS",
    "LOCALISED_TEMPLATES",
    "MAX_LOOP_ITERATIONS",
    "MAX_RENDER_STEPS",
    "MAX_SOURCE_LENGTH",
    "MAX_TEXT_LENGTH",
    "MAX_VALUE_LENGTH",
    "PAUSE",
    "check",
    "locale_chain",
    "render",
    "spell_code",
]

MAX_SOURCE_LENGTH = 8192
"""Characters of one tenant template: room for many locales, not for a payload."""
MAX_TEXT_LENGTH = 1600
"""Characters of a rendered message: the same cap as ``PhoneMessageRequest.text``."""
MAX_LOOP_ITERATIONS = 100
"""Loop iterations in one render, all loops together (nested ones multiply)."""
MAX_VALUE_LENGTH = 2048
"""Length of any value a filter takes or returns (a string, a list, a range)."""
MAX_RENDER_STEPS = 5000
"""Nodes one render may visit, counting each loop body as if it ran MAX_LOOP_ITERATIONS times;
checked when the template is loaded. At ~2 us a node, a render stays around 10 ms."""
FILTER_STEPS = 50
"""Steps one filter counts for: a filter over a value of MAX_VALUE_LENGTH costs tens of us."""
_OUTPUT_BYTES = 4 * MAX_TEXT_LENGTH + 1024  # UTF-8 of the longest text, plus trimmed blanks

DEFAULT_TEMPLATES: dict[tuple[Channel, Purpose], str] = {
    ("sms", "enrollment"): "{{ code }} is your verification code for {{ tenant.friendly_name }}. "
    "Please enter this code to verify your enrollment.",
    ("sms", "verification"): "{{ code }} is your verification code for {{ tenant.friendly_name }}.",
    ("voice", "enrollment"): "Your enrollment code for {{ tenant.friendly_name }} is {{ code }}.",
    ("voice", "verification"): "Your verification code for {{ tenant.friendly_name }} is "
    "{{ code }}.",
}


LOCALISED_TEMPLATES: dict[str, dict[tuple[Channel, Purpose], str]] = {
    "en": DEFAULT_TEMPLATES,
    "fr": {
        ("sms", "enrollment"): "{{ code }} est votre code de vérification pour "
        "{{ tenant.friendly_name }}. Saisissez ce code pour confirmer votre inscription.",
        ("sms", "verification"): "{{ code }} est votre code de vérification pour "
        "{{ tenant.friendly_name }}.",
        ("voice", "enrollment"): "Votre code d'inscription pour {{ tenant.friendly_name }} est "
        "{{ code }}.",
        ("voice", "verification"): "Votre code de vérification pour {{ tenant.friendly_name }} "
        "est {{ code }}.",
    },
    "es": {
        ("sms", "enrollment"): "{{ code }} es su código de verificación para "
        "{{ tenant.friendly_name }}. Introduzca este código para confirmar su inscripción.",
        ("sms", "verification"): "{{ code }} es su código de verificación para "
        "{{ tenant.friendly_name }}.",
        ("voice", "enrollment"): "Su código de inscripción para {{ tenant.friendly_name }} es "
        "{{ code }}.",
        ("voice", "verification"): "Su código de verificación para {{ tenant.friendly_name }} "
        "es {{ code }}.",
    },
    "de": {
        ("sms", "enrollment"): "{{ code }} ist Ihr Bestätigungscode für "
        "{{ tenant.friendly_name }}. Geben Sie diesen Code ein, um Ihre Registrierung zu "
        "bestätigen.",
        ("sms", "verification"): "{{ code }} ist Ihr Bestätigungscode für "
        "{{ tenant.friendly_name }}.",
        ("voice", "enrollment"): "Ihr Registrierungscode für {{ tenant.friendly_name }} lautet "
        "{{ code }}.",
        ("voice", "verification"): "Ihr Bestätigungscode für {{ tenant.friendly_name }} lautet "
        "{{ code }}.",
    },
}
"""The built-in templates by language (Auth0's English defaults, and translations of them)."""

PAUSE = "... "
"""What ``{{ pause }}`` gives in a voice message: speech engines pause on an ellipsis."""


@lru_cache(maxsize=1024)
def locale_chain(locale: str | None, default: str = "en") -> tuple[str, ...]:
    """The locales to try for ``locale``, most specific first: ``fr_CA`` gives ``("fr-CA",
    "fr", "en")``; an empty or malformed one gives ``("en",)``."""
    tag = (locale or "").split(".")[0].split("@")[0].replace("_", "-").strip()
    parts = [part for part in tag.split("-") if part]
    if not parts or not parts[0].isalpha():
        return (default,)
    parts[0] = parts[0].lower()
    chain = ["-".join(parts[:end]) for end in range(len(parts), 0, -1)]
    if default not in chain:
        chain.append(default)
    return tuple(chain)


@lru_cache(maxsize=256)  # the same few locales on every message
def _built_in_language(locale: str | None) -> str:
    return next((tag for tag in locale_chain(locale) if tag in LOCALISED_TEMPLATES), "en")


class TemplateLimitError(ResourceLimitError):
    """A value in a template grew past :data:`MAX_VALUE_LENGTH`."""


class _BoundedContext(RenderContext):
    """Counts loop iterations over the whole render and checks the size of filter values.

    Liquid's own ``loop_iteration_limit`` bounds one nest of loops; a template of many loops
    one after the other, or a filter over a range (``(1..100000000) | join``), needs these.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._iterations = 0

    def raise_for_loop_limit(self, length: int = 1) -> None:
        super().raise_for_loop_limit(length)
        self._iterations += length
        if self._iterations > MAX_LOOP_ITERATIONS:
            raise TemplateLimitError(
                f"more than {MAX_LOOP_ITERATIONS} loop iterations in one message", token=None
            )

    def filter(self, name: str, token: Token | None) -> Callable[..., object]:
        function = super().filter(name, token)

        def bounded(*args: object, **kwargs: object) -> object:
            for value in (*args, *kwargs.values()):
                _check_size(value, name)
            result = function(*args, **kwargs)
            _check_size(result, name)
            return result

        return bounded


def _check_size(value: object, name: str) -> None:
    if isinstance(value, str | list | tuple | dict | range):
        try:
            too_long = len(value) > MAX_VALUE_LENGTH
        except OverflowError:  # a range longer than sys.maxsize
            too_long = True
        if too_long:
            raise TemplateLimitError(
                f"a value of filter {name!r} is longer than {MAX_VALUE_LENGTH}", token=None
            )


class _BoundedTemplate(BoundTemplate):
    context_class = _BoundedContext


class _BoundedEnvironment(Environment):
    """Liquid with every resource a tenant's template can use bounded."""

    loop_iteration_limit: ClassVar[int | None] = MAX_LOOP_ITERATIONS
    output_stream_limit: ClassVar[int | None] = _OUTPUT_BYTES
    local_namespace_limit: ClassVar[int | None] = 4 * MAX_VALUE_LENGTH  # sys.getsizeof bytes
    template_class = _BoundedTemplate


_ENVIRONMENT = _BoundedEnvironment()
_STATIC_CONTEXT = RenderContext(_ENVIRONMENT.from_string(""))
_LIMITS: dict[type[LiquidError], str] = {
    LoopIterationLimitError: f"more than {MAX_LOOP_ITERATIONS} loop iterations in one message",
    OutputStreamLimitError: f"more than {_OUTPUT_BYTES} bytes of output",
    LocalNamespaceLimitError: f"assigned values of more than {4 * MAX_VALUE_LENGTH} bytes",
}


def spell_code(code: str) -> str:
    """``"123456"`` → ``"1. 2. 3. 4. 5. 6"``: a speech engine says each digit, with pauses."""
    return ". ".join(code)


@lru_cache(maxsize=1024)
def _compile(source: str) -> BoundTemplate:
    return _ENVIRONMENT.from_string(source)


_CODE_MARKER = "\x00code\x00"


@lru_cache(maxsize=4096)
def _default_with_marker(
    channel: Channel, purpose: Purpose, tenant_id: str, tenant_name: str, language: str = "en"
) -> str:
    """A built-in template rendered once per tenant, with a marker where the code goes.

    The built-in templates only print ``code`` (no filter, no condition on it), so putting the
    code in place of the marker gives exactly what Liquid would render, without paying for a
    Liquid render on every message. Tenants' own templates are always rendered by Liquid.
    """
    return _render_liquid(
        LOCALISED_TEMPLATES[language][(channel, purpose)],
        channel,
        purpose,
        _CODE_MARKER,
        language,
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
    where = f"{channel} {purpose} template"
    if len(source) > MAX_SOURCE_LENGTH:
        raise ConfigurationError(f"{where}: {_too_long(source)}")
    tenant = {"id": tenant_id, "friendly_name": tenant_name, "friendlyName": tenant_name}
    try:
        rendered: str = _compile(source).render(
            code=code,
            message_type=channel,
            purpose=purpose,
            locale=locale,
            tenant=tenant,
            friendly_name=tenant_name,
            requestInfo={"lang": locale},
            pause=PAUSE if channel == "voice" else "",
        )
    except LiquidError as exc:
        raise ConfigurationError(f"{where}: {_describe(exc)}") from exc
    except RecursionError:  # an expression nested deeper than Python's stack
        raise ConfigurationError(f"{where}: nested too deeply") from None
    text = rendered.strip()
    if len(text) > MAX_TEXT_LENGTH:
        raise ConfigurationError(
            f"{where}: the message is {len(text)} characters, over the limit of {MAX_TEXT_LENGTH}"
        )
    return text


def _describe(exc: LiquidError) -> str:
    """One line: Liquid's message and where (``line:column``), never the template's text."""
    if type(exc) in _LIMITS:
        return _LIMITS[type(exc)]
    lines = str(exc).splitlines()
    place = re.search(r" (\d+:\d+)$", lines[1]) if len(lines) > 1 else None
    return f"{exc.message} at {place.group(1)}" if place else str(exc.message)


def _too_long(source: str) -> str:
    return f"the template is {len(source)} characters, over the limit of {MAX_SOURCE_LENGTH}"


def _steps(node: Node) -> int:
    """Worst-case steps of rendering ``node``: one per node, FILTER_STEPS per filter, and a
    loop body counted as if it ran MAX_LOOP_ITERATIONS times."""
    own = 1 + FILTER_STEPS * sum(_filters(expression) for expression in node.expressions())
    inner = sum(_steps(child) for child in node.children(_STATIC_CONTEXT))
    if isinstance(node, ForNode | TablerowNode):
        inner *= MAX_LOOP_ITERATIONS
    return own + inner


def _filters(expression: Expression) -> int:
    own = len(getattr(expression, "filters", None) or ())
    return own + sum(_filters(child) for child in expression.children())


_PROBE_CODE = "9" * 12  # the longest code a request may carry


def check(source: str, channel: Channel = "sms", purpose: Purpose = "verification") -> str | None:
    """Why a tenant's template cannot be used, else None: too long, a Liquid syntax error, no
    ``code``, or a trial render (longest code, ``en``) that breaks a limit."""
    if len(source) > MAX_SOURCE_LENGTH:
        return _too_long(source)
    try:
        variables = _compile(source).analyze().variables
    except LiquidError as exc:
        return _describe(exc)
    except RecursionError:
        return "nested too deeply"
    if "code" not in variables:
        return "the template never prints {{ code }}, so the message would not carry the code"
    steps = sum(_steps(node) for node in _compile(source).nodes)
    if steps > MAX_RENDER_STEPS:
        return (
            f"the template may take {steps} render steps, over the limit of {MAX_RENDER_STEPS} "
            f"(a loop body counts {MAX_LOOP_ITERATIONS} times)"
        )
    spoken = spell_code(_PROBE_CODE) if channel == "voice" else _PROBE_CODE
    try:
        _render_liquid(source, channel, purpose, spoken, "en", "tenant", "Tenant")
    except ConfigurationError as exc:
        cause = exc.__cause__
        if isinstance(cause, LiquidError) and not isinstance(cause, ResourceLimitError):
            return None  # may depend on the request (a filter error): rejected at send time
        return str(exc).removeprefix(f"{channel} {purpose} template: ").splitlines()[0]
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
        language = _built_in_language(locale)
        return _default_with_marker(channel, purpose, tenant_id, tenant_name, language).replace(
            _CODE_MARKER, spoken
        )
    return _render_liquid(source, channel, purpose, spoken, locale, tenant_id, tenant_name)
