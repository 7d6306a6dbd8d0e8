"""Vonage Voice API: a call that says the code, authenticated by an application JWT.

``POST {voice_base_url}`` with ``Authorization: Bearer <JWT>`` and an inline NCCO: one ``talk``
action that says the rendered voice text twice, in the language of the message's locale.
The JWT is RS256, signed with the Vonage application's private key, with the claims
``application_id``, ``iat``, ``jti`` (unique per call) and ``exp`` (a minute later): the token
authorises this one request, so a leaked one is useless soon after (Vonage's JWT docs).

Vonage answers 201 ``{uuid, status, direction, conversation_uuid}``; errors are 4xx JSON
``{type, title, detail, instance}``, classified by HTTP status.
"""

from __future__ import annotations

import time
import uuid
from functools import lru_cache
from typing import Any

import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from runtime.http import HttpRequest, HttpResponse
from runtime.locales import LanguageTable
from runtime.provider_kit import (
    answered_error,
    digits_only,
    is_success,
)
from runtime.providers import PhoneMessage, Receipt

__all__ = [
    "JWT_LIFETIME",
    "TALK_LANGUAGES",
    "TALK_LOOP",
    "bearer_token",
    "load_private_key",
    "read_voice_response",
    "talk_language",
    "voice_request",
]

JWT_LIFETIME = 60  # seconds: long enough for clock skew, short for a token sent once
TALK_LOOP = 2  # the code is said twice

# The `talk` action's languages, as Vonage's SDK lists them (Vonage/vonage-node-sdk,
# packages/voice/lib/enums/TTSLanguages.js at f72ee28, "supported Text-to-Speech (TTS)
# languages"). Vonage spells Mandarin `cmn-CN`/`cmn-TW`, Cantonese `yue-CN` and Arabic plain
# `ar`. Without a language Vonage speaks en-US (its Text to Speech guide).
TALK_LANGUAGES = LanguageTable(
    (
        "af-ZA", "ar", "bg-BG", "bn-IN", "ca-ES", "cmn-CN", "cmn-TW", "cs-CZ", "cy-GB",
        "da-DK", "de-AT", "de-DE", "de-ET", "el-GR", "en-AU", "en-GB", "en-GB-SCT",
        "en-GB-WLS", "en-IE", "en-IN", "en-NZ", "en-US", "en-ZA", "es-CO", "es-ES", "es-MX",
        "es-US", "eu-ES", "fi-FI", "fil-PH", "fr-CA", "fr-FR", "gl-ES", "gu-IN", "he-IL",
        "hi-IN", "hu-HU", "id-ID", "is-IS", "it-IT", "ja-JP", "kn-IN", "ko-KR", "lv-LV",
        "ml-IN", "ms-MY", "nb-NO", "nl-BE", "nl-NL", "no-NO", "pa-IN", "pl-PL", "pt-BR",
        "pt-PT", "ro-RO", "ru-RU", "sk-SK", "sr-RS", "sv-SE", "ta-IN", "te-IN", "th-TH",
        "tr-TR", "uk-UA", "vi-VN", "yue-CN",
    ),
    default="en-US",
    # Chinese by script or region to Vonage's Mandarin and Cantonese codes.
    aliases={
        "zh": "cmn-CN", "zh-CN": "cmn-CN", "zh-SG": "cmn-CN", "zh-TW": "cmn-TW",
        "zh-HK": "yue-CN", "zh-MO": "yue-CN", "yue": "yue-CN", "cmn": "cmn-CN",
    },
)  # fmt: skip


def talk_language(locale: str | None) -> str:
    """The ``talk`` action's ``language`` for ``locale``: a code Vonage lists (``zh`` ->
    ``cmn-CN``, ``ar-EG`` -> ``ar``, ``es-AR`` -> ``es-ES``), else ``en-US``."""
    return TALK_LANGUAGES.pick(locale)


@lru_cache(maxsize=64)
def load_private_key(pem: str) -> RSAPrivateKey:
    """The RSA key in ``pem`` (cached: parsing and checking a PEM key takes milliseconds, far
    more than signing). A PEM pasted into an environment variable with literal ``\\n`` is read
    too. Raise ``ValueError`` (without the key in its message) when it is not one."""
    text = pem.strip()
    if "\n" not in text:
        text = text.replace("\\n", "\n")
    try:
        key = load_pem_private_key(text.encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ValueError("must be an unencrypted PEM private key") from None
    if not isinstance(key, RSAPrivateKey):
        raise ValueError("must be an RSA private key (Vonage signs with RS256)")
    return key


def bearer_token(application_id: str, key: RSAPrivateKey, *, now: float | None = None) -> str:
    """A fresh application JWT for one request."""
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "application_id": application_id,
        "iat": issued,
        "jti": str(uuid.uuid4()),
        "exp": issued + JWT_LIFETIME,
    }
    return jwt.encode(claims, key, algorithm="RS256")


def voice_request(
    message: PhoneMessage,
    *,
    base_url: str,
    application_id: str,
    private_key: str,
    from_number: str,
    event_url: str | None,
) -> HttpRequest:
    """The call that says ``message.text`` (already spelled digit by digit) twice."""
    payload: dict[str, Any] = {
        "to": [{"type": "phone", "number": digits_only(message.recipient)}],
        "from": {"type": "phone", "number": digits_only(from_number)},
        "ncco": [
            {
                "action": "talk",
                "text": message.text,
                "language": talk_language(message.locale),
                "loop": TALK_LOOP,
            }
        ],
    }
    if event_url is not None:
        payload["event_url"] = [event_url]
    token = bearer_token(application_id, load_private_key(private_key))
    return HttpRequest.json(base_url, payload, {"Authorization": f"Bearer {token}"})


def read_voice_response(response: HttpResponse, provider: str) -> Receipt:
    """The call's ``uuid`` as the message id, or the error the HTTP status means.

    4xx (401 bad JWT, 400 bad request, 402 no credit, ...) are refusals, permanent but for 408
    and 429; 503 is retryable and not handed off; other 5xx may come after Vonage placed the
    call, so they are handed off (``answered_error``).
    """
    if not is_success(response.status):
        raise answered_error(
            response, None, f"Vonage answered HTTP {response.status}{_detail(response)}"
        )
    call_id = response.json()["uuid"]
    if not isinstance(call_id, str) or not call_id:
        raise ValueError("no uuid")
    return Receipt(provider=provider, message_id=call_id)


def _detail(response: HttpResponse) -> str:
    """``: <title> (<detail>)`` from a Vonage problem answer, else nothing."""
    try:
        body = response.json()
        title, detail = body.get("title"), body.get("detail")
    except (ValueError, AttributeError):
        return ""
    parts = [str(p) for p in (title, detail) if isinstance(p, str) and p]
    if not parts:
        return ""
    return ": " + (f"{parts[0]} ({parts[1]})" if len(parts) == 2 else parts[0])
