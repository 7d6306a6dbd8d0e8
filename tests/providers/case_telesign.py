"""Telesign against a local stub (form POST, 200 + reference_id)."""

from __future__ import annotations

from typing import Any

from plugins.telesign import TelesignProvider
from tests.providers.harness import Answer, ProviderCase

CUSTOMER_ID = "FFFFFFFF-EEEE-DDDD-1234-AB1234567890"
API_KEY = "dGVsZXNpZ24tY2FzZS1rZXktMDEyMzQ1Njc4OWFiY2RlZg=="  # base64, as TelePortal shows keys
REFERENCE_ID = "0123456789ABCDEF0123456789ABCDEF"


def config(base_url: str) -> dict[str, Any]:
    return {"base_url": base_url}


def accepted(code: int, description: str) -> dict[str, Any]:
    """Telesign's answer to an accepted SMS (290) or call (103)."""
    return {
        "reference_id": REFERENCE_ID,
        "external_id": "msg-1",
        "status": {
            "code": code,
            "description": description,
            "updated_on": "2026-11-28T06:00:00.000000Z",
        },
    }


def rejected(error_code: int, description: str, status_code: int = 501) -> dict[str, Any]:
    """Telesign's error answer: ``status`` and ``errors`` carry the codes to act on."""
    return {
        "reference_id": REFERENCE_ID,
        "status": {
            "code": status_code,
            "description": "Not authorized" if status_code == 501 else "Transaction not attempted",
            "updated_on": "2026-11-28T06:00:00.000000Z",
        },
        "errors": [{"code": error_code, "description": description}],
    }


CASE = ProviderCase(
    name="telesign",
    plugin="plugins.telesign",
    make_provider=TelesignProvider,
    config=config,
    credentials={"customer_id": CUSTOMER_ID, "api_key": API_KEY},
    ok={
        "sms": Answer(200, accepted(290, "Message in progress")),
        "voice": Answer(200, accepted(103, "Call in progress")),
    },
    message_id=REFERENCE_ID,
    permanent=Answer(401, rejected(-30006, "Invalid Signature.")),
    permanent_code="-30006",
)
