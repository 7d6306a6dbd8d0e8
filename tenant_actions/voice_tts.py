"""Read the one-time code out in a phone call, with Infobip's text-to-speech voice API.

Trigger:  send-phone-message (handler ``on_execute_send_phone_message``).
Channel:  voice only. An SMS request fails on purpose, without sending anything: this
          action only makes calls, and it does not quietly text the code instead. Bind an
          SMS action (vonage_sms.py, infobip_sms.py) for SMS, or let the pipeline fall back.

Secrets:
    INFOBIP_API_KEY      API key with the voice scope ("Authorization: App <key>")
    INFOBIP_BASE_URL     your account's https://xxxxx.api.infobip.com
    INFOBIP_VOICE_FROM   the calling number shown to the user (digits, e.g. 41793026700)
    INFOBIP_VOICE_NAME   optional voice name, e.g. "Joanna" (default: Infobip's voice for
                         the language)

What it does: POST {INFOBIP_BASE_URL}/tts/3/advanced with one message:
{"from", "destinations": [{"to"}], "text", "language"}. The language is the first part of
event.request.language ("es-ES" -> "es"), or "en" if it is missing or not listed below.
If the message text holds the code as plain digits, they are spelled out one by one
("4, 8, 1, 5, 1, 6") so the voice does not read "four hundred eighty-one thousand...".
The text is said twice, so the user can write the code down.

Errors are reported as in infobip_sms.py: 401 (bad key), 429 (rate limit), 5xx (Infobip
problem), other 4xx with Infobip's errorCode/description; a REJECTED status fails too.
Returns {"message_id": ..., "bulk_id": ..., "language": ...}.
"""

import re

LANGUAGES = ("en", "de", "es", "fr", "it", "nl", "pt", "pl", "sv", "da", "ja", "tr")


def secret(event, name, default=None):
    """The secret ``name``; a clear error when a required one is missing."""
    value = event.secrets.get(name) or default
    if not value:
        raise Exception("missing secret " + name + ": add it to the action's secrets")
    return value


def call_language(event):
    tag = event.request.get("language") or "en"
    language = tag.replace("_", "-").split("-")[0].lower()
    return language if language in LANGUAGES else "en"


def spoken(text, code):
    """The text to speak: plain-digit codes spelled out, everything said twice."""
    if code and code.isdigit() and code in text:
        text = text.replace(code, ", ".join(list(code)))
    return text + ". " + text


def infobip_error(response):
    body = response.json or {}
    if body.get("errorCode") or body.get("description"):
        return str(body.get("errorCode")) + ": " + str(body.get("description"))
    service = (body.get("requestError") or {}).get("serviceException") or {}
    if service:
        return str(service.get("messageId")) + ": " + str(service.get("text"))
    return response.text[:200] or "no details"


def on_execute_send_phone_message(event, api):
    options = event.message_options
    if options.message_type != "voice":
        raise Exception(
            "voice_tts places voice calls only and refuses to send an "
            + options.message_type
            + " message instead; bind an SMS action for SMS"
        )
    to = re.sub(r"[^0-9]", "", options.recipient)
    language = call_language(event)
    message = {
        "from": secret(event, "INFOBIP_VOICE_FROM"),
        "destinations": [{"to": to}],
        "text": spoken(options.text, options.code),
        "language": language,
    }
    voice_name = event.secrets.get("INFOBIP_VOICE_NAME")
    if voice_name:
        message["voice"] = {"name": voice_name}

    response = api.http.post(
        secret(event, "INFOBIP_BASE_URL").rstrip("/") + "/tts/3/advanced",
        json={"messages": [message]},
        headers={
            "Authorization": "App " + secret(event, "INFOBIP_API_KEY"),
            "Accept": "application/json",
        },
    )
    status = response.status
    if status == 401:
        raise Exception("Infobip HTTP 401: the API key was rejected: " + infobip_error(response))
    if status == 429:
        raise Exception("Infobip HTTP 429: rate limit reached, try again later")
    if status >= 500:
        raise Exception("Infobip HTTP " + str(status) + ": server error, try again later")
    if not 200 <= status < 300:
        raise Exception("Infobip HTTP " + str(status) + ": " + infobip_error(response))

    body = response.json or {}
    call = (body.get("messages") or ({},))[0]
    call_status = call.get("status") or {}
    if isinstance(call_status, str):  # some accounts get a bare status name
        call_status = {"groupName": call_status, "name": call_status}
    if call_status.get("groupName") in ("REJECTED", "UNDELIVERABLE"):
        raise Exception(
            "Infobip did not accept the call: "
            + str(call_status.get("name"))
            + ": "
            + str(call_status.get("description"))
        )
    return {
        "message_id": call.get("messageId"),
        "bulk_id": body.get("bulkId"),
        "language": language,
    }
