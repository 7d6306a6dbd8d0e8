"""Plivo against a local stub (202 ``message_uuid``, 201 ``request_uuid``).

There is no public Plivo OpenAPI spec: the answers below are built from Plivo's API docs and the
plivo-python SDK. The voice answer document goes to an in-memory store; ``answer_base_url`` is
only written into the Call request, so any local URL does.
"""

from __future__ import annotations

from plugins.plivo import AnswerStore, PlivoProvider
from tests.providers.harness import Answer, ProviderCase

AUTH_ID = "MAPLIVO0TEST0AUTH0ID"
AUTH_TOKEN = "plivo-token-5c4b3a29e1"
FROM_NUMBER = "+14155550100"
ANSWER_BASE_URL = "http://127.0.0.1:8099"
UUID = "db3ce55a-7f1d-11e1-8ea7-1231380bc196"
API_ID = "0f6b5e0e-0000-4000-8000-00000000aa01"


def config(base_url: str) -> dict[str, str]:
    return {"from_number": FROM_NUMBER, "base_url": base_url, "answer_base_url": ANSWER_BASE_URL}


def make_provider() -> PlivoProvider:
    return PlivoProvider(answers=AnswerStore.from_url("sqlite://"))


SMS_OK = Answer(202, {"api_id": API_ID, "message": "message(s) queued", "message_uuid": [UUID]})
VOICE_OK = Answer(201, {"api_id": API_ID, "message": "call fired", "request_uuid": UUID})

CASE = ProviderCase(
    name="plivo",
    plugin="plugins.plivo",
    make_provider=make_provider,
    config=config,
    credentials={"auth_id": AUTH_ID, "auth_token": AUTH_TOKEN},
    ok={"sms": SMS_OK, "voice": VOICE_OK},
    message_id=UUID,
    permanent=Answer(400, {"api_id": API_ID, "error": "invalid dst number"}),
    permanent_code="400",
)
