"""Bird (the default ``api``) against a local stub (docs/providers/messagebird.md).

No public spec exists: the answers are built from Bird's API reference and bird-sdk-python's error
model. The legacy API is covered in ``test_messagebird.py``.
"""

from __future__ import annotations

from plugins.messagebird import MessageBirdProvider
from tests.providers.harness import Answer, ProviderCase

ACCESS_KEY = "bk_eu1_0a1b2c3d4e5f6a7b8c9d"
MESSAGE_ID = "sms_01jz8k7h2q3w4e5r6t7y8u9i0o"


def config(base_url: str) -> dict[str, str]:
    return {"api": "bird", "sender": "Acme", "base_url": base_url}


CASE = ProviderCase(
    name="messagebird",
    plugin="plugins.messagebird",
    make_provider=MessageBirdProvider,
    config=config,
    credentials={"access_key": ACCESS_KEY},
    ok={"sms": Answer(202, {"id": MESSAGE_ID, "status": "accepted"})},
    message_id=MESSAGE_ID,
    permanent=Answer(
        422,
        {
            "error": {
                "type": "validation_error",
                "code": "invalid_parameter",
                "message": "to is not a valid phone number",
                "param": "to",
                "request_id": "req_01jz8k7h2q",
            }
        },
    ),
    permanent_code="validation_error",
    unsupported_channel="voice",
)
