"""Route each SMS to the provider that serves the recipient's country best.

Trigger:  send-phone-message (handler ``on_execute_send_phone_message``).
Channel:  sms only.

Routing: the country comes from the recipient's E.164 prefix (+44 is GB, +33 is FR, ...).
Only if the prefix is not in the table below does it fall back to the country the login came
from (event.request.geoip.countryCode), which says where the user is, not where the phone
is registered. Countries in ROUTE_VONAGE_COUNTRIES go to Vonage, all others to Infobip.
Each decision is logged with api.log.info, with the number cut short (logs are kept).

Secrets:
    VONAGE_API_KEY, VONAGE_API_SECRET   Vonage SMS API credentials
    VONAGE_FROM                         Vonage sender id or number
    VONAGE_BASE_URL                     optional; default https://rest.nexmo.com
    INFOBIP_API_KEY                     Infobip API key ("Authorization: App <key>")
    INFOBIP_BASE_URL                    your https://xxxxx.api.infobip.com
    INFOBIP_SENDER                      optional; default "InfoSMS"
    ROUTE_VONAGE_COUNTRIES              optional; comma-separated ISO codes, default "GB,FR"

It does not try the other provider when the first one fails: the first may have accepted
the message already, and a user must never get two codes. It fails instead (the pipeline
decides about a fallback). Returns {"provider", "country", "message_id"}.
"""

import re

DEFAULT_VONAGE_COUNTRIES = "GB,FR"

# Calling code -> ISO country. Longer codes first: "+44" must win over a shorter one.
# "+1" is the whole North American Numbering Plan (US, Canada, much of the Caribbean).
PREFIXES = (
    ("+353", "IE"),
    ("+351", "PT"),
    ("+44", "GB"),
    ("+33", "FR"),
    ("+49", "DE"),
    ("+34", "ES"),
    ("+39", "IT"),
    ("+31", "NL"),
    ("+32", "BE"),
    ("+41", "CH"),
    ("+55", "BR"),
    ("+52", "MX"),
    ("+91", "IN"),
    ("+61", "AU"),
    ("+81", "JP"),
    ("+65", "SG"),
    ("+27", "ZA"),
    ("+1", "US"),
)


def secret(event, name, default=None):
    """The secret ``name``; a clear error when a required one is missing."""
    value = event.secrets.get(name) or default
    if not value:
        raise Exception("missing secret " + name + ": add it to the action's secrets")
    return value


def digits_only(recipient):
    digits = re.sub(r"[^0-9]", "", recipient)
    if not 7 <= len(digits) <= 15:
        raise Exception("recipient is not an international phone number")
    return digits


def recipient_country(event):
    """(ISO country, where it came from), or (None, None) when nothing says."""
    recipient = event.message_options.recipient
    for prefix, country in PREFIXES:
        if recipient.startswith(prefix):
            return country, "number prefix " + prefix
    geoip = (event.request.get("geoip") or {}).get("countryCode")
    if geoip:
        return geoip.upper(), "login location (geoip)"
    return None, None


def send_vonage(event, api, options):
    form = {
        "api_key": secret(event, "VONAGE_API_KEY"),
        "api_secret": secret(event, "VONAGE_API_SECRET"),
        "from": secret(event, "VONAGE_FROM"),
        "to": digits_only(options.recipient),
        "text": options.text,
    }
    if not options.text.isascii():
        form["type"] = "unicode"
    base_url = secret(event, "VONAGE_BASE_URL", "https://rest.nexmo.com").rstrip("/")
    response = api.http.post(base_url + "/sms/json", data=form)
    body = response.json
    if response.status != 200 or body is None:
        raise Exception("Vonage answered HTTP " + str(response.status))
    parts = body.get("messages") or ()
    for part in parts:
        if str(part.get("status")) != "0":
            raise Exception(
                "Vonage status " + str(part.get("status")) + ": " + str(part.get("error-text"))
            )
    if not parts:
        raise Exception("Vonage answered without a messages list")
    return parts[0].get("message-id")


def send_infobip(event, api, options):
    message = {
        "sender": secret(event, "INFOBIP_SENDER", "InfoSMS"),
        "destinations": [{"to": digits_only(options.recipient)}],
        "content": {"text": options.text},
    }
    response = api.http.post(
        secret(event, "INFOBIP_BASE_URL").rstrip("/") + "/sms/3/messages",
        json={"messages": [message]},
        headers={"Authorization": "App " + secret(event, "INFOBIP_API_KEY")},
    )
    body = response.json or {}
    if not 200 <= response.status < 300:
        error = body.get("description") or (
            ((body.get("requestError") or {}).get("serviceException") or {}).get("text")
        )
        raise Exception("Infobip HTTP " + str(response.status) + ": " + str(error))
    sent = (body.get("messages") or ({},))[0]
    group = (sent.get("status") or {}).get("groupName")
    if group in ("UNDELIVERABLE", "EXPIRED", "REJECTED"):
        raise Exception("Infobip did not accept the message: " + group)
    return sent.get("messageId")


def on_execute_send_phone_message(event, api):
    options = event.message_options
    if options.message_type != "sms":
        raise Exception("country_routing routes SMS only")
    vonage_countries = secret(event, "ROUTE_VONAGE_COUNTRIES", DEFAULT_VONAGE_COUNTRIES)
    vonage = [code.strip().upper() for code in vonage_countries.split(",")]
    country, source = recipient_country(event)
    provider = "vonage" if country in vonage else "infobip"
    shown = options.recipient[:4] + "..."
    api.log.info(
        "routing "
        + shown
        + " to "
        + provider
        + ": country "
        + str(country or "unknown")
        + " from "
        + str(source or "nothing (default route)")
    )
    if provider == "vonage":
        message_id = send_vonage(event, api, options)
    else:
        message_id = send_infobip(event, api, options)
    return {"provider": provider, "country": country, "message_id": message_id}
