"""Esendex provider plugin: one-time codes by SMS and by text-to-speech voice call.

One request per message: ``POST {base_url}/v1.0/messagedispatcher`` with HTTP Basic auth and
an XML body (Esendex's REST API reference)::

    <messages>
      <accountreference>EX0000000</accountreference>
      <message><to>447700900123</to><body>...</body><from>Acme</from><type>SMS</type></message>
    </messages>

A voice call is the same dispatch with ``<type>Voice</type>`` and ``<lang>en-GB</lang>``.
Esendex answers 200 with ``<messageheaders batchid="..."><messageheader id="..."/>``; the
``id`` is the receipt's ``message_id``. Errors are plain HTTP statuses (400 bad request,
401/403 authentication, 402 no credit; Esendex's support pages): their XML body, when there is
one, only adds detail. Numbers go without ``+``.

Every value in the body is escaped (a template may render ``&`` or ``<``). An answer is
untrusted input: it is parsed with expat directly and any DTD (``<!DOCTYPE``) or entity
declaration is refused before it can expand (no "billion laughs"); defusedxml is not a
dependency of this project.
"""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import TYPE_CHECKING, NoReturn
from xml.parsers import expat
from xml.sax.saxutils import escape

from pydantic import Field, SecretStr, field_validator

from runtime import hookimpl
from runtime.events import Channel
from runtime.http import HttpRequest, HttpResponse
from runtime.locales import language_region
from runtime.provider_kit import (
    BaseUrl,
    HttpProvider,
    ProviderCredentials,
    ProviderSettings,
    answered_error,
    configuration_error,
    digits_only,
    is_success,
)
from runtime.providers import PhoneMessage, Receipt

if TYPE_CHECKING:
    from runtime.providers import Provider
    from runtime.settings import Settings

__all__ = [
    "EsendexConfig",
    "EsendexCredentials",
    "EsendexProvider",
    "dispatch_xml",
    "parse_untrusted_xml",
    "register_providers",
]

DISPATCH_PATH = "/v1.0/messagedispatcher"
DEFAULT_VOICE_LANGUAGE = "en-GB"  # Esendex's own example; used when the locale says nothing
MAX_DETAIL = 200  # characters of an error answer quoted in the error message

# Characters XML 1.0 cannot carry at all (ElementTree would write them and make the body
# unreadable to Esendex).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# Esendex's success answer in its usual shape: the first header's id, read without a parser
# (bench/providers.py: the parser was most of this plugin's cost). Anything else -- another
# shape, an entity in the id, any "<!" -- goes through parse_untrusted_xml.
_SUCCESS = re.compile(
    rb'\s*(?:<\?xml[^>]*\?>)?\s*<messageheaders\b[^>]*>\s*<messageheader\b[^>]*?\sid="([^"&<]+)"'
)
_ALPHANUMERIC_SENDER = re.compile(r"^[A-Za-z0-9*$?!\"#%&_\-,.\s@'+]{1,11}$")


class EsendexConfig(ProviderSettings):
    """A tenant's public Esendex settings."""

    account_reference: str = Field(
        min_length=1,
        max_length=32,
        pattern=r"^[A-Za-z0-9]+$",
        description="The Esendex account that sends (`<accountreference>`, e.g. `EX0000000`).",
    )
    sender: str | None = Field(
        default=None,
        description=(
            "Sender (`<from>`): up to 20 digits, or up to 11 letters, digits and simple "
            "punctuation. Unset: the account's default originator."
        ),
    )
    voice_language: str | None = Field(
        default=None,
        pattern=r"^[a-z]{2,3}-[A-Z]{2}$",
        description=("Fixed `<lang>` for voice calls (`en-GB`). Unset: from the message's locale."),
    )
    base_url: BaseUrl = Field(
        default="https://api.esendex.com", description="Esendex API origin (tests: a local stub)."
    )

    @field_validator("sender")
    @classmethod
    def _check_sender(cls, value: str | None) -> str | None:
        """Esendex's own SDK limits: numeric up to 20 digits, alphanumeric up to 11."""
        if value is None:
            return None
        if value.isdigit() and value.isascii():
            if len(value) > 20:
                raise ValueError("a numeric sender has at most 20 digits")
        elif not _ALPHANUMERIC_SENDER.match(value):
            raise ValueError(
                "an alphanumeric sender has 1 to 11 letters, digits, spaces or *$?!\"#%&_-,.@'+"
            )
        return value


class EsendexCredentials(ProviderCredentials):
    """A tenant's Esendex login (write-only)."""

    username: str = Field(
        min_length=1,
        pattern=r"^[^:]+$",
        description="The Esendex login (usually an e-mail address); HTTP Basic user name.",
    )
    password: SecretStr = Field(
        min_length=1, description="The login's password or API password; HTTP Basic password."
    )


def basic_auth(username: str, password: str) -> str:
    """The ``Authorization`` header value for HTTP Basic."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def dispatch_xml(
    account_reference: str,
    *,
    to: str,
    body: str,
    sender: str | None,
    message_type: str,
    lang: str | None,
) -> bytes:
    """The ``<messages>`` document for one message, every text escaped.

    Written as a string with :func:`xml.sax.saxutils.escape` on every value rather than with
    ElementTree's serializer: the same bytes for these flat documents at a fraction of the
    cost (bench/providers.py measured Esendex at 0.55x of bare aiohttp with ElementTree).
    """
    parts = [
        "<?xml version='1.0' encoding='utf-8'?>\n<messages><accountreference>",
        escape(account_reference),
        "</accountreference><message><to>",
        escape(to),
        "</to><body>",
        escape(body),
        "</body>",
    ]
    if sender is not None:
        parts += ("<from>", escape(sender), "</from>")
    parts += ("<type>", escape(message_type), "</type>")
    if lang is not None:
        parts += ("<lang>", escape(lang), "</lang>")
    parts.append("</message></messages>")
    return "".join(parts).encode("utf-8")


def _local(name: str) -> str:
    """``{namespace}tag`` (expat with a ``}`` separator) -> ``tag``."""
    return name.rpartition("}")[2]


def parse_untrusted_xml(body: bytes) -> ET.Element:
    """The element tree of ``body``, with namespaces dropped from names.

    Raise ``ValueError`` when the body is not well-formed XML or declares a DTD or an entity:
    a provider's answer is untrusted, and a declared entity could expand to gigabytes
    ("billion laughs") or reach for an external resource. The declaration is refused when
    expat reports it, before any entity is defined or used.
    """
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate(namespace_separator="}")

    def refuse(*_: object) -> NoReturn:
        raise ValueError("the answer declares a DTD or an entity")

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.UnparsedEntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse
    parser.StartElementHandler = lambda name, attributes: builder.start(
        _local(name), {_local(key): value for key, value in attributes.items()}
    )
    parser.EndElementHandler = lambda name: builder.end(_local(name))
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(body, True)
    except expat.ExpatError as exc:
        raise ValueError(f"not well-formed XML ({exc})") from None
    return builder.close()


def error_detail(body: bytes) -> str:
    """What an error answer says, as one short line; tolerant of any body.

    The shape of Esendex's error XML was not verified (``<errors>``, from memory): the
    text of every ``<error>`` element is used when there is one, else the text of the whole
    document; a body that is not XML gives nothing (it may be a gateway's HTML page).
    """
    if not body.strip():
        return ""
    try:
        root = parse_untrusted_xml(body)
    except ValueError:
        return ""
    errors = [e for e in root.iter() if e.tag == "error"] or [root]
    texts = (" ".join(" ".join(e.itertext()).split()) for e in errors)
    detail = "; ".join(text for text in texts if text)
    return detail[:MAX_DETAIL]


class EsendexProvider(HttpProvider[EsendexConfig, EsendexCredentials]):
    """SMS and text-to-speech calls through Esendex's message dispatcher."""

    name = "esendex"
    label = "Esendex"
    channels = frozenset[Channel]({"sms", "voice"})
    config_model = EsendexConfig
    credentials_model = EsendexCredentials

    def build_request(
        self, message: PhoneMessage, config: EsendexConfig, credentials: EsendexCredentials
    ) -> HttpRequest:
        if _NOT_XML.search(message.text):
            raise configuration_error(
                "the rendered text contains control characters that XML cannot carry; "
                "fix the tenant's template"
            )
        voice = message.channel == "voice"
        lang = None
        if voice:
            lang = config.voice_language or language_region(
                message.locale, default=DEFAULT_VOICE_LANGUAGE
            )
        body = dispatch_xml(
            config.account_reference,
            to=digits_only(message.recipient),
            body=message.text,
            sender=config.sender,
            message_type="Voice" if voice else "SMS",
            lang=lang,
        )
        password = credentials.password.get_secret_value()
        return HttpRequest(
            "POST",
            config.base_url + DISPATCH_PATH,
            {
                "Content-Type": "application/xml",
                "Accept": "application/xml",
                "Authorization": basic_auth(credentials.username, password),
            },
            body,
        )

    def read_response(self, response: HttpResponse, message: PhoneMessage) -> Receipt:
        """The first ``messageheader``'s ``id``; an error classified by HTTP status.

        Esendex's error table is its HTTP statuses: 400 (bad request), 401 and 403
        (authentication or access), 402 (not enough credit) and 404 say no for good; 429 is
        worth another try; 5xx is classified by :func:`answered_error` (a 500 or 502 may come
        after Esendex queued the message, so it counts as handed off).
        """
        if is_success(response.status):
            fast = _SUCCESS.match(response.body) if b"<!" not in response.body else None
            if fast is not None:
                return Receipt(provider=self.name, message_id=fast.group(1).decode("utf-8"))
            root = parse_untrusted_xml(response.body)
            if root.tag != "messageheaders":
                raise ValueError(f"unexpected root element <{root.tag}>")
            header = root.find("messageheader")
            if header is None:
                raise ValueError("no <messageheader> in the answer")
            message_id = header.attrib["id"]
            if not message_id:
                raise ValueError("empty message id")
            return Receipt(provider=self.name, message_id=message_id)
        detail = error_detail(response.body) or "no details"
        raise answered_error(response, None, f"Esendex answered HTTP {response.status}: {detail}")


@hookimpl
def register_providers(register: Callable[[Provider], None], settings: Settings) -> None:
    """Register the Esendex provider; its session opens on first use."""
    register(EsendexProvider())
