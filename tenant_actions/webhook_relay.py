"""Relay the message to your own HTTPS endpoint as a signed webhook; your service sends it.

Triggers: send-phone-message (``on_execute_send_phone_message``) and custom-phone-provider
          (``on_execute_custom_phone_provider``): upload the same script for either.
Channels: sms and voice (the payload says which).

Secrets:
    WEBHOOK_URL      your endpoint, e.g. https://otp.example.com/hooks/phone
    WEBHOOK_SECRET   a long random string shared with your endpoint (signing key)

What it sends: POST WEBHOOK_URL with a JSON body and three headers:

    Content-Type:         application/json
    X-Webhook-Id:         a random id for this delivery (use it to drop duplicates)
    X-Webhook-Timestamp:  Unix time in seconds when it was signed
    X-Webhook-Signature:  v1=<hex HMAC-SHA256 of "<timestamp>.<body>" keyed with WEBHOOK_SECRET>

The body is {"id", "trigger", "channel", "purpose", "recipient", "text", "code", "locale",
"tenant", "client_id", "user_id", "correlation_id", "sent_at"}.

How your endpoint checks it (Python):

    signed = timestamp.encode() + b"." + raw_body
    expected = "v1=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    ok = hmac.compare_digest(expected, signature) and abs(time.time() - int(timestamp)) < 300

Answers: any 2xx is success (a JSON body's "id" becomes the message id). Under
send-phone-message anything else fails the action. Under custom-phone-provider, 429 and 5xx
(and network errors) call api.notification.retry, so the message is tried again later,
and other 4xx call api.notification.drop.
"""

import hmac
import json
import random
import time
from datetime import UTC, datetime


def secret(event, name):
    """The secret ``name``; a clear error when it is missing."""
    value = event.secrets.get(name)
    if not value:
        raise Exception("missing secret " + name + ": add it to the action's secrets")
    return value


def sign(key, timestamp, body):
    """The X-Webhook-Signature value for ``body`` sent at ``timestamp``."""
    signed = (timestamp + "." + body).encode("utf-8")
    return "v1=" + hmac.new(key.encode("utf-8"), signed, "sha256").hexdigest()


def post_signed(event, api, payload):
    """POST ``payload`` as JSON to WEBHOOK_URL, signed; returns the HTTP answer."""
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True)
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-Webhook-Id": payload["id"],
        "X-Webhook-Timestamp": timestamp,
        "X-Webhook-Signature": sign(secret(event, "WEBHOOK_SECRET"), timestamp, body),
    }
    # data= sends the string exactly as signed (json= would re-serialise it).
    return api.http.post(secret(event, "WEBHOOK_URL"), data=body, headers=headers)


def common_fields(event):
    user = event.get("user") or {}
    client = event.get("client") or {}
    transaction = event.get("transaction") or {}
    return {
        "id": f"{random.randrange(16**32):032x}",
        "tenant": event.tenant.id,
        "client_id": client.get("client_id"),
        "user_id": user.get("user_id"),
        "correlation_id": transaction.get("correlation_id"),
        "sent_at": datetime.now(UTC).isoformat(),
    }


def message_id(response, payload):
    """The endpoint's own id if it answered {"id": ...}, else our delivery id."""
    body = response.json
    found = body.get("id") if body is not None and "id" in body else None
    return found if found else payload["id"]


def on_execute_send_phone_message(event, api):
    options = event.message_options
    payload = common_fields(event)
    payload.update(
        {
            "trigger": "send-phone-message",
            "channel": options.message_type,
            "purpose": options.action,
            "recipient": options.recipient,
            "text": options.text,
            "code": options.code,
            "locale": event.request.get("language"),
        }
    )
    response = post_signed(event, api, payload)
    if not 200 <= response.status < 300:
        kind = "unavailable" if response.status >= 500 else "refused the message"
        raise Exception(
            "webhook " + kind + ": HTTP " + str(response.status) + " " + response.text[:200]
        )
    return {"message_id": message_id(response, payload)}


def on_execute_custom_phone_provider(event, api):
    note = event.notification
    voice = note.delivery_method == "voice"
    payload = common_fields(event)
    payload.update(
        {
            "trigger": "custom-phone-provider",
            "channel": "voice" if voice else "sms",
            "purpose": note.message_type,
            "recipient": note.recipient,
            "from": note.get("from"),
            "text": note.as_voice if voice else note.as_text,
            "code": note.get("code"),
            "locale": note.get("locale"),
        }
    )
    try:
        response = post_signed(event, api, payload)
    except ApiError as error:  # could not connect, timed out...: worth another try
        api.notification.retry("webhook not reached: " + str(error))
        return None
    status = response.status
    if 200 <= status < 300:
        return {"message_id": message_id(response, payload)}
    reason = "webhook answered HTTP " + str(status) + ": " + response.text[:200]
    if status == 429 or status >= 500:
        api.notification.retry(reason)
    else:
        api.notification.drop(reason)
    return None
