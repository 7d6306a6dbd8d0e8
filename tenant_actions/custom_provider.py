"""Deliver Auth0-style phone notifications through a provider that uses OAuth2 tokens.

Trigger:  custom-phone-provider (handler ``on_execute_custom_phone_provider``).
Channels: text (sends notification.as_text) and voice (sends notification.as_voice).

Secrets:
    PROVIDER_BASE_URL       the provider's API root, e.g. https://api.example-cpaas.com
    PROVIDER_CLIENT_ID      OAuth2 client id
    PROVIDER_CLIENT_SECRET  OAuth2 client secret
    PROVIDER_FROM           optional sender used when the notification has no "from"

What it does:
1. Gets an access token: POST {base}/oauth2/token, form grant_type=client_credentials,
   HTTP Basic auth with the client id and secret. The token is kept in api.cache until a
   minute before it expires, so most invocations skip this step. (The cache key is a hash
   of the base URL and client id, so a new client id starts with a fresh token.)
2. Sends: POST {base}/v1/messages with "Authorization: Bearer <token>" and
   {"to", "from", "channel": "sms" | "voice", "text", "locale", "purpose", "reference"}.
   If a cached token gets 401, it is dropped and the send is tried once with a new one.

Outcomes (Auth0's custom-phone-provider contract):
    2xx                 success; the provider's "id" is the message id
    429, 5xx, network   api.notification.retry(reason): the message is tried again later
    other 4xx           api.notification.drop(reason): the message is given up
    token 4xx           drop (the client id/secret are wrong; retrying will not help)
    token 429/5xx       retry
"""

import base64
import hashlib
import json

TOKEN_MARGIN_SECONDS = 60
MAX_CACHED_TOKEN = 4000  # api.cache keeps values up to 4 KB


def secret(event, name, default=None):
    """The secret ``name``; a clear error when a required one is missing."""
    value = event.secrets.get(name) or default
    if not value:
        raise Exception("missing secret " + name + ": add it to the action's secrets")
    return value


def token_key(base_url, client_id):
    digest = hashlib.sha256((base_url + " " + client_id).encode("utf-8")).hexdigest()
    return "oauth-token:" + digest[:40]


def give_up_or_retry(api, status, reason):
    """Retry what may succeed later (429, 5xx); drop the rest."""
    if status == 429 or status >= 500:
        api.notification.retry(reason)
    else:
        api.notification.drop(reason)


def fetch_token(event, api, base_url, key):
    """A new access token (also cached), or None after calling retry/drop."""
    client_id = secret(event, "PROVIDER_CLIENT_ID")
    pair = client_id + ":" + secret(event, "PROVIDER_CLIENT_SECRET")
    basic = base64.b64encode(pair.encode("utf-8")).decode("ascii")
    response = api.http.post(
        base_url + "/oauth2/token",
        data={"grant_type": "client_credentials", "scope": "messages:send"},
        headers={"Authorization": "Basic " + basic, "Accept": "application/json"},
    )
    body = response.json or {}
    token = body.get("access_token")
    if not 200 <= response.status < 300 or not token:
        error = str(body.get("error") or response.text[:200])
        reason = "token request failed: HTTP " + str(response.status) + " " + error
        give_up_or_retry(api, response.status, reason)
        return None
    lifetime = body.get("expires_in") or 300
    ttl_seconds = max(int(lifetime) - TOKEN_MARGIN_SECONDS, 30)
    if len(token) <= MAX_CACHED_TOKEN:
        api.cache.set(key, token, ttl=ttl_seconds * 1000)
    return token


def send(api, base_url, token, message):
    return api.http.post(
        base_url + "/v1/messages",
        json=message,
        headers={"Authorization": "Bearer " + token, "Accept": "application/json"},
    )


def on_execute_custom_phone_provider(event, api):
    note = event.notification
    base_url = secret(event, "PROVIDER_BASE_URL").rstrip("/")
    key = token_key(base_url, secret(event, "PROVIDER_CLIENT_ID"))
    voice = note.delivery_method == "voice"
    message = {
        "to": note.recipient,
        "from": note.get("from") or event.secrets.get("PROVIDER_FROM"),
        "channel": "voice" if voice else "sms",
        "text": note.as_voice if voice else note.as_text,
        "locale": note.get("locale"),
        "purpose": note.message_type,
    }
    transaction = event.get("transaction") or {}
    if transaction.get("correlation_id"):
        message["reference"] = transaction.get("correlation_id")
    if not message["from"]:
        message.pop("from")

    try:
        cached = api.cache.get(key)
        token = cached.value if cached else fetch_token(event, api, base_url, key)
        if token is None:
            return None
        response = send(api, base_url, token, message)
        if response.status == 401 and cached:
            api.cache.delete(key)  # revoked or expired early: get a new one, once
            token = fetch_token(event, api, base_url, key)
            if token is None:
                return None
            response = send(api, base_url, token, message)
    except ApiError as error:  # could not connect, timed out, ...
        api.notification.retry("provider not reached: " + str(error))
        return None

    status = response.status
    if 200 <= status < 300:
        body = response.json or {}
        return {"message_id": body.get("id"), "status": body.get("status")}
    detail = response.text[:200]
    if response.json is not None:
        detail = json.dumps(response.json.get("error") or response.json)[:200]
    give_up_or_retry(api, status, "provider answered HTTP " + str(status) + ": " + detail)
    return None
