"""Twilio attempts are recorded with their exchanges and replay offline like the others."""

from __future__ import annotations

from pathlib import Path

import plugins.recorder as recorder
from plugins.twilio import TwilioProvider
from runtime import PhoneMessageRequest
from runtime.recording.format import Recording
from runtime.recording.replay import ProviderReplayer, replay_recording
from tests.conftest import PipelineFactory
from tests.recordings.make_recordings import recorder_plugins
from tests.support.stub_server import StubServer
from tests.twilio.conftest import ACCOUNT_SID, AUTH_TOKEN, message_resource

CODE = "551230"


async def record_twilio(make_pipeline: PipelineFactory) -> Path:
    with StubServer() as stub:
        pipeline = make_pipeline(
            {
                "acme": {
                    "provider": "twilio",
                    "provider_settings": {"from_number": "+14155550100", "base_url": stub.url},
                    "credentials_env": {"account_sid": "TW_SID", "auth_token": "TW_TOKEN"},
                    "fallback": "never",
                    "record": True,
                }
            },
            plugins=recorder_plugins(),
            environ={"TW_SID": ACCOUNT_SID, "TW_TOKEN": AUTH_TOKEN},
        )
        answers = [
            (201, message_resource()),
            (400, {"code": 21211, "message": "invalid To", "status": 400}),
        ]
        for status, body in answers:
            stub.respond(status, body)
            request = PhoneMessageRequest.create(
                tenant="acme", recipient="+447911123456", code=CODE
            )
            await pipeline.deliver(request)
        assert len(stub.requests) == 2
    assert recorder.flush(), "the recorder did not catch up"  # it writes on its own thread
    [path] = (pipeline.settings.resolved_recordings_dir / "acme").iterdir()
    return path


async def test_twilio_exchanges_are_recorded_redacted(make_pipeline: PipelineFactory) -> None:
    path = await record_twilio(make_pipeline)
    text = path.read_text("utf-8")
    recording = Recording.read(path)
    assert [len(a.exchanges) for a in recording.attempts] == [1, 1]
    assert "/Messages.json" in recording.attempts[0].exchanges[0].request.url
    for secret in (CODE, AUTH_TOKEN, "447911123456"):
        assert secret not in text


async def test_twilio_replays_offline_equal_then_shows_a_changed_request(
    make_pipeline: PipelineFactory,
) -> None:
    recording = Recording.read(await record_twilio(make_pipeline))
    provider = TwilioProvider()
    try:
        report = await replay_recording(recording, provider=provider)
    finally:
        await provider.aclose()
    assert [r.replayed for r in report.results] == ["delivered", "failed (21211)"]
    assert report.ok, [r.differences for r in report.results]

    class Changed(TwilioProvider):
        """Sends through a Messaging Service instead of From: a different request body."""

        async def send(self, message, config, credentials, **observed):  # type: ignore[no-untyped-def]
            changed = config.model_copy(update={"messaging_service_sid": "MG" + "cd" * 16})
            return await super().send(message, changed, credentials, **observed)

    changed = Changed()
    try:
        result = await ProviderReplayer(changed).replay(recording.attempts[0])
    finally:
        await changed.aclose()
    assert result.differences
    assert any("body changed" in d for d in result.differences), result.differences
