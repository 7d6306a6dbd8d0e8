"""Amazon SNS ``Publish`` against a local stub (docs/providers/sns.md).

The XML answers follow the AWS Query protocol as SNS (and moto) write them.
"""

from __future__ import annotations

from plugins.sns import SnsProvider
from tests.providers.harness import Answer, ProviderCase

REGION = "eu-west-1"
ACCESS_KEY_ID = "AKIAEXAMPLE7Q2W4E6R8"
SECRET_ACCESS_KEY = "sns-secret-wJalrXUtnFEMI/K7MDENG"
SESSION_TOKEN = "sns-session-token-FwoGZXIvYXdzEJr"
MESSAGE_ID = "95df01b4-ee98-5cb9-9903-4c221d41eb5e"
XML_HEADERS = {"Content-Type": "text/xml"}
NAMESPACE = "http://sns.amazonaws.com/doc/2010-03-31/"


def config(base_url: str) -> dict[str, str]:
    return {"region": REGION, "base_url": base_url}


def publish_response(message_id: str = MESSAGE_ID) -> str:
    """200: SNS took the message."""
    return (
        f'<PublishResponse xmlns="{NAMESPACE}">'
        f"<PublishResult><MessageId>{message_id}</MessageId></PublishResult>"
        "<ResponseMetadata><RequestId>f187a3c1-376f-11df-8963-01868b7c937a</RequestId>"
        "</ResponseMetadata></PublishResponse>"
    )


def error_response(code: str, message: str, kind: str = "Sender") -> str:
    """An error answer: ``Type`` is ``Sender`` (the caller's fault) or ``Receiver``."""
    return (
        f'<ErrorResponse xmlns="{NAMESPACE}">'
        f"<Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message></Error>"
        "<RequestId>42d59b56-7407-4c4a-be0f-4c88daeea257</RequestId></ErrorResponse>"
    )


CASE = ProviderCase(
    name="sns",
    plugin="plugins.sns",
    make_provider=SnsProvider,
    config=config,
    credentials={
        "access_key_id": ACCESS_KEY_ID,
        "secret_access_key": SECRET_ACCESS_KEY,
        "session_token": SESSION_TOKEN,
    },
    ok={"sms": Answer(200, publish_response(), XML_HEADERS)},
    message_id=MESSAGE_ID,
    permanent=Answer(400, error_response("InvalidParameter", "Invalid parameter: PhoneNumber")),
    permanent_code="InvalidParameter",
    unsupported_channel="voice",
)
