"""Infobip against a local stub (SMS v3 and advanced TTS, 200 + messageId)."""

from __future__ import annotations

from typing import Any

from plugins.infobip import InfobipProvider
from tests.providers.harness import Answer, ProviderCase

API_KEY = "infobip-key-5d4c3b2a1f0e"
MESSAGE_ID = "2250be2d4219-3af1-78856-aabe-1362af1edfd2"
SENDER = "InfoSMS"
FROM_NUMBER = "+41793026700"

PENDING = {
    "groupId": 1,
    "groupName": "PENDING",
    "id": 26,
    "name": "PENDING_ACCEPTED",
    "description": "Message sent to next instance",
}


def config(base_url: str) -> dict[str, Any]:
    return {"base_url": base_url, "sender": SENDER, "from_number": FROM_NUMBER}


def sms_answer(status: dict[str, Any], message_id: str = MESSAGE_ID) -> dict[str, Any]:
    """Infobip's 200 to ``POST /sms/3/messages`` (one destination)."""
    return {
        "bulkId": "2034072219640523073",
        "messages": [{"messageId": message_id, "status": status, "destination": "447911123456"}],
    }


def voice_answer(status: dict[str, Any], message_id: str = MESSAGE_ID) -> dict[str, Any]:
    """Infobip's 200 to ``POST /tts/3/advanced`` (one destination)."""
    return {
        "bulkId": "8c20f086-d82b-48cc-b2b3-3ca5f7aca9fb",
        "messages": [{"to": "447911123456", "status": status, "messageId": message_id}],
    }


CASE = ProviderCase(
    name="infobip",
    plugin="plugins.infobip",
    make_provider=InfobipProvider,
    config=config,
    credentials={"api_key": API_KEY},
    ok={"sms": Answer(200, sms_answer(PENDING)), "voice": Answer(200, voice_answer(PENDING))},
    message_id=MESSAGE_ID,
    permanent=Answer(
        401,
        {
            "requestError": {
                "serviceException": {"messageId": "UNAUTHORIZED", "text": "Invalid login details"}
            }
        },
    ),
    permanent_code="UNAUTHORIZED",
)
