"""Send the one-time code by SMS through the Vonage (Nexmo) SMS API.

Trigger:  send-phone-message (handler ``on_execute_send_phone_message``).
Channel:  sms only. A voice request fails with an error: the SMS API cannot place calls
          (see voice_tts.py for a voice action).

Secrets:
    VONAGE_API_KEY      your account's API key (8 characters, from the Vonage dashboard)
    VONAGE_API_SECRET   the matching API secret
    VONAGE_FROM         the sender: an alphanumeric sender id ("Acme") or a number you own
    VONAGE_BASE_URL     optional; default https://rest.nexmo.com (tests point it at a fake)

What it does: one form POST to {VONAGE_BASE_URL}/sms/json with api_key, api_secret, from,
to (digits only, no "+") and text; non-ASCII text is sent as type=unicode. Vonage answers
HTTP 200 even when it refuses a message, so success is decided by the body: every part in
"messages" must have status "0". Otherwise the action fails with Vonage's status number and
error-text, e.g. "Vonage status 9 (partner quota exceeded: add credit): Quota Exceeded".

Returns {"message_id": ..., "parts": n, "remaining_balance": ...}; the pipeline records the
message id on the delivery report.

Note on fallback: any 2xx answer counts as "handed off", and Vonage's refusals come with
HTTP 200, so a refused message is never re-sent by the default sender (no double codes, but
also no fallback for e.g. status 9).
"""

import re

DEFAULT_BASE_URL = "https://rest.nexmo.com"

# Vonage SMS API status codes (messages[].status); 1 and 5 are temporary.
VONAGE_STATUS = {
    "1": "throttled: sending faster than the account allows, try again",
    "2": "missing parameters",
    "3": "invalid parameters",
    "4": "invalid credentials: check VONAGE_API_KEY and VONAGE_API_SECRET",
    "5": "internal error at Vonage, try again",
    "6": "invalid message: unroutable or unrecognised number prefix",
    "7": "number barred",
    "8": "partner account barred",
    "9": "partner quota exceeded: add credit",
    "10": "too many existing binds",
    "11": "account not enabled for HTTP",
    "12": "message too long",
    "14": "invalid signature",
    "15": "invalid sender address (VONAGE_FROM)",
    "29": "non-whitelisted destination (trial account)",
    "33": "number de-activated",
}


def secret(event, name, default=None):
    """The secret ``name``; a clear error when a required one is missing."""
    value = event.secrets.get(name) or default
    if not value:
        raise Exception("missing secret " + name + ": add it to the action's secrets")
    return value


def vonage_number(recipient):
    """Vonage wants the number as digits only, in international format, without '+'."""
    digits = re.sub(r"[^0-9]", "", recipient)
    if not 7 <= len(digits) <= 15:
        raise Exception("recipient is not an international phone number")
    return digits


def on_execute_send_phone_message(event, api):
    options = event.message_options
    if options.message_type != "sms":
        raise Exception("vonage_sms sends SMS only; this is a " + options.message_type + " message")
    base_url = secret(event, "VONAGE_BASE_URL", DEFAULT_BASE_URL).rstrip("/")
    form = {
        "api_key": secret(event, "VONAGE_API_KEY"),
        "api_secret": secret(event, "VONAGE_API_SECRET"),
        "from": secret(event, "VONAGE_FROM"),
        "to": vonage_number(options.recipient),
        "text": options.text,
    }
    if not options.text.isascii():
        form["type"] = "unicode"  # accents, Cyrillic, CJK...: otherwise they arrive garbled
    correlation = (event.get("transaction") or {}).get("correlation_id")
    if correlation:
        form["client-ref"] = correlation[:100]

    response = api.http.post(base_url + "/sms/json", data=form)

    body = response.json
    if response.status != 200 or body is None:
        raise Exception("Vonage answered HTTP " + str(response.status) + ": " + response.text[:200])
    parts = body.get("messages") or ()
    if not parts:
        raise Exception("Vonage answered without a messages list")
    for part in parts:
        status = str(part.get("status"))
        if status != "0":
            meaning = VONAGE_STATUS.get(status, "unknown status")
            error_text = part.get("error-text") or "no error-text"
            raise Exception("Vonage status " + status + " (" + meaning + "): " + error_text)
    first = parts[0]
    return {
        "message_id": first.get("message-id"),
        "parts": len(parts),
        "remaining_balance": first.get("remaining-balance"),
    }
