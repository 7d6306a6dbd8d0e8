"""Clickatell One API against a local stub (docs/providers/clickatell.md).

The answers follow the shapes of Clickatell's One API as the clickatell-api crate (docs.rs)
deserializes them: ``{"messages": [{"apiMessageId", "accepted", "to", "error"?}], "error"}``
with ``error`` objects ``{"code", "description"}``.
"""

from __future__ import annotations

from typing import Any

from plugins.clickatell import ClickatellProvider
from tests.providers.harness import Answer, ProviderCase

API_KEY = "clickatell-key-5e4d3c2b1a"
MESSAGE_ID = "02ca87d5a95446e68b0ac36a0c2057f1"
TO = "447911123456"


def config(base_url: str) -> dict[str, str]:
    return {"base_url": base_url}


def accepted(message_id: str = MESSAGE_ID) -> dict[str, Any]:
    """202: the message was taken."""
    return {"messages": [{"apiMessageId": message_id, "accepted": True, "to": TO}], "error": None}


def message_error(code: int, description: str) -> dict[str, Any]:
    """The message was not taken (400 for a single message, 207 in a batch)."""
    return {
        "messages": [
            {"error": {"code": code, "description": description}, "accepted": False, "to": TO}
        ],
        "error": None,
    }


def request_error(code: int, description: str) -> dict[str, Any]:
    """The request was not taken at all (a bad key, a malformed payload)."""
    return {"error": {"code": code, "description": description}}


CASE = ProviderCase(
    name="clickatell",
    plugin="plugins.clickatell",
    make_provider=ClickatellProvider,
    config=config,
    credentials={"api_key": API_KEY},
    ok={"sms": Answer(202, accepted())},
    message_id=MESSAGE_ID,
    permanent=Answer(400, message_error(25, "Invalid recipient address.")),
    permanent_code="25",
    unsupported_channel="voice",
)
