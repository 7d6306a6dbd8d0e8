"""Send the one-time code by SMS through Infobip's SMS API v3.

Trigger:  send-phone-message (handler ``on_execute_send_phone_message``).
Channel:  sms only (voice_tts.py places Infobip voice calls).

Secrets:
    INFOBIP_API_KEY    an API key with the "sms:message:send" scope (Infobip portal)
    INFOBIP_BASE_URL   your account's own base URL, https://xxxxx.api.infobip.com
    INFOBIP_SENDER     optional sender id or number; default "InfoSMS"

What it does: POST {INFOBIP_BASE_URL}/sms/3/messages with "Authorization: App <key>" and
{"messages": [{"sender", "destinations": [{"to": digits}], "content": {"text"}}]}.
Infobip answers 200 with a status per message; PENDING and DELIVERED mean accepted, while
REJECTED, UNDELIVERABLE and EXPIRED fail the action with Infobip's status name and
description. Request errors fail with a message that says what to do:

    401  the API key is wrong or revoked             (check INFOBIP_API_KEY)
    403  the key lacks the scope, or the IP is not allowed
    429  too many requests                            (temporary)
    4xx  the request was refused: errorCode, description and each violation
    5xx  Infobip had a problem                        (temporary)

Infobip has two error body shapes and both are read: the new one
{"errorCode", "description", "violations": [{"property", "violation"}]} and the legacy one
{"requestError": {"serviceException": {"messageId", "text"}}}.

Returns {"message_id": ..., "bulk_id": ..., "status": "PENDING_ACCEPTED"}.
"""

import re

DEFAULT_SENDER = "InfoSMS"
FAILED_GROUPS = ("UNDELIVERABLE", "EXPIRED", "REJECTED")


def secret(event, name, default=None):
    """The secret ``name``; a clear error when a required one is missing."""
    value = event.secrets.get(name) or default
    if not value:
        raise Exception("missing secret " + name + ": add it to the action's secrets")
    return value


def infobip_number(recipient):
    """Infobip takes the international number as digits, without '+'."""
    digits = re.sub(r"[^0-9]", "", recipient)
    if not 7 <= len(digits) <= 15:
        raise Exception("recipient is not an international phone number")
    return digits


def infobip_error(response):
    """What Infobip said was wrong, from either of its error body shapes."""
    body = response.json or {}
    if body.get("errorCode") or body.get("description"):
        detail = str(body.get("errorCode") or "error") + ": " + str(body.get("description"))
        for violation in body.get("violations") or ():
            detail += "; " + str(violation.get("property")) + " " + str(violation.get("violation"))
        return detail
    request_error = body.get("requestError") or {}
    service = request_error.get("serviceException") or request_error.get("policyException")
    if service:
        return str(service.get("messageId")) + ": " + str(service.get("text"))
    return response.text[:200] or "no details"


def check_answer(response):
    """Fail with a useful message unless Infobip accepted the request."""
    status = response.status
    if 200 <= status < 300:
        return
    detail = infobip_error(response)
    if status == 401:
        reason = "the API key was rejected; check INFOBIP_API_KEY"
    elif status == 403:
        reason = "forbidden: the API key lacks the SMS scope or this IP is not allowed"
    elif status == 429:
        reason = "rate limit reached, try again later"
    elif status >= 500:
        reason = "Infobip server error, try again later"
    else:
        reason = "request refused"
    raise Exception("Infobip HTTP " + str(status) + " (" + reason + "): " + detail)


def on_execute_send_phone_message(event, api):
    options = event.message_options
    if options.message_type != "sms":
        raise Exception(
            "infobip_sms sends SMS only; this is a " + options.message_type + " message"
        )
    base_url = secret(event, "INFOBIP_BASE_URL").rstrip("/")
    message = {
        "sender": secret(event, "INFOBIP_SENDER", DEFAULT_SENDER),
        "destinations": [{"to": infobip_number(options.recipient)}],
        "content": {"text": options.text},
    }
    response = api.http.post(
        base_url + "/sms/3/messages",
        json={"messages": [message]},
        headers={
            "Authorization": "App " + secret(event, "INFOBIP_API_KEY"),
            "Accept": "application/json",
        },
    )
    check_answer(response)

    sent = ((response.json or {}).get("messages") or ({},))[0]
    status = sent.get("status") or {}
    group = status.get("groupName") or "UNKNOWN"
    if group in FAILED_GROUPS:
        raise Exception(
            "Infobip did not accept the message: "
            + group
            + "/"
            + str(status.get("name"))
            + ": "
            + str(status.get("description"))
        )
    return {
        "message_id": sent.get("messageId"),
        "bulk_id": (response.json or {}).get("bulkId"),
        "status": status.get("name"),
    }
