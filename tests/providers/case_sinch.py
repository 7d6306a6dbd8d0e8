"""Sinch against a local stub (XMS batches for SMS, a TTS callout for
voice). One config points both APIs at the stub; the batch id and the call id are the same
string, so one ``message_id`` fits both channels."""

from __future__ import annotations

from typing import Any

from plugins.sinch import SinchProvider
from tests.providers.harness import Answer, ProviderCase

SERVICE_PLAN_ID = "jd63jf88477ll"  # the spec's example
API_TOKEN = "sinch-token-5c4b3a29"
APPLICATION_KEY = "sinch-appkey-94983f76"
APPLICATION_SECRET = "sinch-appsecret-1e2d3c4b"
FROM_NUMBER = "+14045001000"  # the spec's ttsCallout example `cli`
SENDER = "Acme"

# The Calling API spec's 200 example for POST /calling/v1/callouts.
MESSAGE_ID = "adf92089-df2a-4f14-a377-1e975f588fe4"

# The XMS spec's 201 example is commented out; this is that commented example with our id.
SMS_CREATED: dict[str, Any] = {
    "id": MESSAGE_ID,
    "from": SENDER,
    "to": ["+447911123456"],
    "body": "735194 is your code",
    "type": "mt_text",
    "created_at": "2026-11-28T06:00:00Z",
    "modified_at": "2026-11-28T06:00:00Z",
    "canceled": False,
}
CALL_CREATED: dict[str, Any] = {"callid": MESSAGE_ID}

# The XMS spec's 400 example.
SMS_INVALID = {
    "code": "syntax_invalid_parameter_format",
    "text": "The format of parameter 'to[0]' is invalid; value '+1' is not a valid MSISDN or "
    "group ID.",
}

CREDENTIALS = {
    "api_token": API_TOKEN,
    "application_key": APPLICATION_KEY,
    "application_secret": APPLICATION_SECRET,
}


def config(base_url: str) -> dict[str, str]:
    return {
        "service_plan_id": SERVICE_PLAN_ID,
        "sender": SENDER,
        "from_number": FROM_NUMBER,
        "sms_base_url": base_url,
        "voice_base_url": base_url,
    }


CASE = ProviderCase(
    name="sinch",
    plugin="plugins.sinch",
    make_provider=SinchProvider,
    config=config,
    credentials=CREDENTIALS,
    ok={"sms": Answer(201, SMS_CREATED), "voice": Answer(200, CALL_CREATED)},
    message_id=MESSAGE_ID,
    permanent=Answer(400, SMS_INVALID),
    permanent_code="syntax_invalid_parameter_format",
    unsupported_channel=None,
)
