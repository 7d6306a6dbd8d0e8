"""Vonage against a local stub: SMS (200 + ``messages[0].status``) and voice (201 + ``uuid``).

The harness gives one base URL for both channels, so both ``sms_base_url`` and
``voice_base_url`` point at the stub (SMS posts to ``/json``, voice to ``/``). The RSA key that
signs the voice JWT is generated once per test process (never a key checked into the repo).
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from plugins.vonage import VonageProvider
from tests.providers.harness import Answer, ProviderCase

API_KEY = "a1b2c3d4"  # the spec: exactly 8 characters
API_SECRET = "vonage-secret-0f9e8d7c"
APPLICATION_ID = "aaaaaaaa-bbbb-4ccc-8ddd-0123456789ab"
FROM_NUMBER = "+447911123000"
MESSAGE_ID = "63f61863-4a51-4f6b-86e1-46edebcf9356"  # SMS message-id and call uuid alike

PRIVATE_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PRIVATE_KEY_PEM = PRIVATE_KEY.private_bytes(
    serialization.Encoding.PEM,
    serialization.PrivateFormat.PKCS8,
    serialization.NoEncryption(),
).decode()
PUBLIC_KEY = PRIVATE_KEY.public_key()

CREDENTIALS = {
    "api_key": API_KEY,
    "api_secret": API_SECRET,
    "application_id": APPLICATION_ID,
    "private_key": PRIVATE_KEY_PEM,
}

SMS_OK: dict[str, Any] = {
    "message-count": "1",
    "messages": [
        {
            "to": "447911123456",
            "message-id": MESSAGE_ID,
            "status": "0",
            "remaining-balance": "3.14159265",
            "message-price": "0.03330000",
            "network": "23410",
            "client-ref": "msg-1",
        }
    ],
}
VOICE_OK: dict[str, Any] = {
    "uuid": MESSAGE_ID,
    "status": "started",
    "direction": "outbound",
    "conversation_uuid": "CON-f972836a-550f-45fa-956c-12a2ab5b7d22",
}


def config(base_url: str) -> dict[str, str]:
    return {
        "sender": "Acme",
        "from_number": FROM_NUMBER,
        "sms_base_url": base_url,
        "voice_base_url": base_url,
    }


CASE = ProviderCase(
    name="vonage",
    plugin="plugins.vonage",
    make_provider=VonageProvider,
    config=config,
    credentials=CREDENTIALS,
    ok={"sms": Answer(200, SMS_OK), "voice": Answer(201, VOICE_OK)},
    message_id=MESSAGE_ID,
    permanent=Answer(
        200,
        {"message-count": "1", "messages": [{"status": "4", "error-text": "Bad Credentials"}]},
    ),
    permanent_code="4",
)
