"""Vonage SMS API: the request for one SMS, and the reading of Vonage's answer.

``POST {sms_base_url}/json``, form-urlencoded (the spec, and so the mock, take no JSON body).
Vonage answers HTTP 200 even when it refuses a message: ``messages[0].status`` is ``"0"`` on
success and a status code otherwise, with an ``error-text`` (PROVIDERS.md §4).
"""

from __future__ import annotations

from typing import Any

from runtime.http import HttpRequest, HttpResponse
from runtime.http_provider import answered_error, digits_only, refused
from runtime.providers import PhoneMessage, Receipt

__all__ = [
    "PERMANENT_STATUSES",
    "RETRYABLE_STATUSES",
    "is_gsm7",
    "read_sms_response",
    "sms_request",
]

# Statuses worth another try: 1 throttled, 5 internal error (PROVIDERS.md §4 "retry").
RETRYABLE_STATUSES = frozenset({"1", "5"})
# Statuses no retry fixes: missing or invalid parameters (2, 3), credentials (4, 14), message or
# prefix (6, 12), barred number or account (7, 8, 33), credit (9), binds (10), API not enabled
# for HTTP (11), illegal sender (15), a trial account's non-whitelisted destination (29).
# Any status outside both sets is treated as permanent too: an unknown refusal is not retried.
PERMANENT_STATUSES = frozenset(
    {"2", "3", "4", "6", "7", "8", "9", "10", "11", "12", "14", "15", "29", "33"}
)

# client-ref takes "up to 40 characters" (the spec).
CLIENT_REF_MAX = 40

# GSM 03.38: the default alphabet and its extension table (ESC itself is not text).
_GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENSION = "\f^{}\\[~]|€"
GSM7 = frozenset(_GSM7_BASIC + _GSM7_EXTENSION)


def is_gsm7(text: str) -> bool:
    """Whether ``text`` fits the GSM 7-bit alphabet; otherwise Vonage needs ``type=unicode``
    (sent as ``text``, it would arrive with ``?`` in place of what does not fit)."""
    return all(char in GSM7 for char in text)


def sms_request(
    message: PhoneMessage,
    *,
    base_url: str,
    api_key: str,
    api_secret: str,
    sender: str,
    callback_url: str | None,
) -> HttpRequest:
    """The form POST that sends ``message`` from ``sender`` (an id, or a number's digits)."""
    fields = {
        "api_key": api_key,
        "api_secret": api_secret,
        "from": sender,
        "to": digits_only(message.recipient),
        "text": message.text,
        "client-ref": message.id[:CLIENT_REF_MAX],
    }
    if not is_gsm7(message.text):
        fields["type"] = "unicode"
    if callback_url is not None:
        fields["callback"] = callback_url
    return HttpRequest.form(f"{base_url}/json", fields, {"Accept": "application/json"})


def read_sms_response(response: HttpResponse, provider: str) -> Receipt:
    """The receipt in Vonage's answer, or the :class:`ProviderError` its status means.

    A status in a 2xx answer is a refusal: Vonage did not take the message (``handed_off`` is
    false, so the pipeline may fall back), retryable only for 1 and 5. Vonage's SMS API does not
    answer other HTTP statuses in its contract; when a gateway does, the status classifies it.
    """
    if not 200 <= response.status < 300:
        raise answered_error(
            response, None, f"Vonage answered HTTP {response.status}{_detail(response)}"
        )
    first: dict[str, Any] = response.json()["messages"][0]
    status = str(first["status"])
    if status == "0":
        message_id = first["message-id"]
        if not isinstance(message_id, str) or not message_id:
            raise ValueError("no message-id")
        return Receipt(provider=provider, message_id=message_id)
    text = str(first.get("error-text") or "no details")
    raise refused(
        status,
        f"Vonage refused the SMS (status {status}: {text})",
        retryable=status in RETRYABLE_STATUSES,
        status=response.status,
    )


def _detail(response: HttpResponse) -> str:
    """``: <error-text>`` from an error answer that has one, else nothing."""
    try:
        body = response.json()
        detail = body["messages"][0]["error-text"]
    except (ValueError, KeyError, IndexError, TypeError):
        return ""
    return f": {detail}" if isinstance(detail, str) and detail else ""
