"""ClickSend against a local stub (REST v3: JSON, per-message ``status``).

The answers are fixtures built from ClickSend's documented contract (developers.clicksend.com):
200 with ``response_code`` ``SUCCESS`` and one message whose ``status`` says whether it was
queued.
"""

from __future__ import annotations

from typing import Any

from plugins.clicksend import ClickSendProvider
from tests.providers.harness import Answer, ProviderCase

USERNAME = "acme-api-user"
API_KEY = "A1B2C3D4-E5F6-0000-1111-clicksendkey"
MESSAGE_ID = "BF7AD270-0DE2-418B-B606-71D527D9C1AE"


def answer(status: str = "SUCCESS", *, message_id: str = MESSAGE_ID, **extra: Any) -> Answer:
    """A 200 answer for one message with ``status``."""
    sent = {
        "direction": "out",
        "date": 1764309600,
        "to": "+447911123456",
        "from": "+61411111111",
        "message_id": message_id,
        "message_parts": 1,
        "message_price": "0.0770",
        "custom_string": "msg-1",
        "country": "GB",
        "carrier": "EE",
        "status": status,
        **extra,
    }
    return Answer(
        200,
        {
            "http_code": 200,
            "response_code": "SUCCESS",
            "response_msg": "Messages queued for delivery.",
            "data": {
                "total_price": 0.077,
                "total_count": 1,
                "queued_count": 1 if status == "SUCCESS" else 0,
                "messages": [sent],
                "_currency": {"currency_name_short": "GBP"},
            },
        },
    )


def error(http_code: int, response_code: str, response_msg: str) -> Answer:
    """A request-level error answer."""
    return Answer(
        http_code,
        {
            "http_code": http_code,
            "response_code": response_code,
            "response_msg": response_msg,
            "data": None,
        },
    )


def config(base_url: str) -> dict[str, str]:
    return {"sender": "+447700900123", "base_url": base_url}


CASE = ProviderCase(
    name="clicksend",
    plugin="plugins.clicksend",
    make_provider=ClickSendProvider,
    config=config,
    credentials={"username": USERNAME, "api_key": API_KEY},
    ok={
        "sms": answer(),
        "voice": answer(voice="female", lang="en-gb", require_input=0, machine_detection=0),
    },
    message_id=MESSAGE_ID,
    permanent=answer("INVALID_RECIPIENT"),
    permanent_code="INVALID_RECIPIENT",
)
