"""Vonage SMS API: the request for one SMS, and the reading of Vonage's answer.

``POST {sms_base_url}/json``, form-urlencoded (the spec, and so the mock, take no JSON body).
Vonage answers HTTP 200 even when it refuses a message: each entry of ``messages`` (one per
part of a long text) has ``status`` ``"0"`` when that part was sent and a status code otherwise,
with an ``error-text`` (Vonage's SMS API reference; :func:`read_sms_response` judges every part).
"""

from __future__ import annotations

from typing import Any

from runtime.errors import ProviderError
from runtime.http import HttpRequest, HttpResponse
from runtime.provider_kit import (
    ErrorTable,
    answered_error,
    digits_only,
    is_gsm7,
    is_success,
    refused,
)
from runtime.providers import PhoneMessage, Receipt

__all__ = [
    "ERRORS",
    "is_gsm7",
    "read_sms_response",
    "sms_request",
]

ERRORS = ErrorTable(
    # Worth another try: 1 throttled, 5 internal error, 10 too many existing binds (Vonage's
    # error table: "Back-off and retry").
    retryable={"1", "5", "10"},
    # No retry fixes these: missing or invalid parameters (2, 3), credentials (4, 14), message or
    # prefix (6, 12), barred number or account (7, 8, 33), credit (9), API not enabled for HTTP
    # (11), illegal sender (15), a trial account's non-whitelisted destination (29). A status
    # in neither set is not retried either (an unknown refusal).
    permanent={"2", "3", "4", "6", "7", "8", "9", "11", "12", "14", "15", "29", "33"},
)

# client-ref takes "up to 40 characters" (the spec).
CLIENT_REF_MAX = 40


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
    """The receipt in Vonage's answer, or the :class:`ProviderError` its statuses mean.

    A text longer than one SMS goes as several parts, and Vonage answers one entry of
    ``messages`` per part, each with its own ``status``. Every part is judged:

    - every part sent (status 0): delivered; the receipt's message id is the first part's
      ``message-id`` (the other parts' ids are in Vonage's answer and delivery receipts);
    - no part sent: a refusal (``handed_off`` false, so the pipeline may fall back), coded by
      the first part's status, retryable only when every part's status is (1 and 5);
    - some parts sent: ``partially_sent``, handed off and not retryable. Vonage has passed
      those parts on to carriers, so neither a retry nor a fallback may send the code again;
      the message names the parts that went and the statuses of those that did not.

    Vonage's SMS API does not answer other HTTP statuses in its contract; when a gateway
    does, the status classifies it.
    """
    if not is_success(response.status):
        raise answered_error(
            response, None, f"Vonage answered HTTP {response.status}{_detail(response)}"
        )
    body: dict[str, Any] = response.json()
    parts = _parts(body)
    sent = [number for number, (status, _, _) in enumerate(parts, 1) if status == "0"]
    if len(sent) == len(parts):
        return Receipt(provider=provider, message_id=parts[0][1])
    refusals = [
        (number, status, text) for number, (status, _, text) in enumerate(parts, 1) if status != "0"
    ]
    if not sent:
        first = refusals[0][1]
        if len(parts) == 1:
            detail = f"Vonage refused the SMS (status {first}: {refusals[0][2]})"
        else:
            detail = f"Vonage refused all {len(parts)} parts of the SMS ({_list(refusals)})"
        raise refused(
            first,
            detail,
            retryable=all(ERRORS.refusal_is_retryable(status) for _, status, _ in refusals),
            status=response.status,
        )
    raise ProviderError(
        "partially_sent",
        f"Vonage sent {_numbers(sent)} of {len(parts)} of the SMS and refused "
        f"{_numbers([number for number, _, _ in refusals])} ({_list(refusals)}); the sent "
        "parts are with the carrier, so the code is not sent again",
        retryable=False,
        handed_off=True,
        status=response.status,
    )


def _parts(body: dict[str, Any]) -> list[tuple[str, str, str]]:
    """``(status, message-id, error-text)`` of each part; ``ValueError``/``TypeError`` (->
    ``malformed_response``) when the answer lists no part, or fewer than its
    ``message-count`` says, or a sent part has no id."""
    messages = body["messages"]
    if not isinstance(messages, list) or not messages:
        raise ValueError("no messages")
    count = body.get("message-count")
    if count is not None and int(count) != len(messages):
        raise ValueError("message-count does not match messages")
    parts: list[tuple[str, str, str]] = []
    for entry in messages:
        status = str(entry["status"])
        message_id = entry.get("message-id") if status == "0" else ""
        if status == "0" and (not isinstance(message_id, str) or not message_id):
            raise ValueError("no message-id")
        parts.append((status, str(message_id or ""), str(entry.get("error-text") or "no details")))
    return parts


def _numbers(numbers: list[int]) -> str:
    """``[1]`` -> ``part 1``, ``[1, 3]`` -> ``parts 1 and 3``, ``[1, 2, 4]`` -> ``parts 1, 2
    and 4``."""
    text = [str(number) for number in numbers]
    if len(text) == 1:
        return f"part {text[0]}"
    return f"parts {', '.join(text[:-1])} and {text[-1]}"


def _list(refusals: list[tuple[int, str, str]]) -> str:
    """``part 1: status 1: Throttled; part 2: ...``."""
    return "; ".join(f"part {number}: status {status}: {text}" for number, status, text in refusals)


def _detail(response: HttpResponse) -> str:
    """``: <error-text>`` from an error answer that has one, else nothing."""
    try:
        body = response.json()
        detail = body["messages"][0]["error-text"]
    except (ValueError, KeyError, IndexError, TypeError):
        return ""
    return f": {detail}" if isinstance(detail, str) and detail else ""
