"""Mitto against a local stub (200 + ``responseCode``)."""

from __future__ import annotations

from plugins.mitto import MittoProvider
from tests.providers.harness import Answer, ProviderCase

API_KEY = "mitto-key-0f9e8d7c"
MESSAGE_ID = "a1b2c3d4-0000-4000-8000-00000000mitto"


def config(base_url: str) -> dict[str, str]:
    return {"sender": "Acme", "base_url": base_url}


CASE = ProviderCase(
    name="mitto",
    plugin="plugins.mitto",
    make_provider=MittoProvider,
    config=config,
    credentials={"api_key": API_KEY},
    ok={
        "sms": Answer(
            200,
            {
                "id": MESSAGE_ID,
                "timestamp": "2026-11-28T06:00:00Z",
                "responseCode": 0,
                "responseText": "SMS sent",
                "textLength": 18,
            },
        )
    },
    message_id=MESSAGE_ID,
    permanent=Answer(200, {"responseCode": 6, "responseText": "Invalid sender"}),
    permanent_code="6",
    unsupported_channel="voice",
)
