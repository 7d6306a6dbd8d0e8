"""Regenerate the committed recordings in this folder.

    .venv/bin/python -m tests.recordings.make_recordings [OUT_DIR]

Each sample tenant action in ``tenant_actions/`` delivers a few messages through the real
pipeline (tenant ``acme`` with ``record = true``, fallback ``never``) and the real sandbox,
to a :class:`~tests.support.stub_server.StubServer` on 127.0.0.1 that plays the provider:
successes and the error classes each sample handles. The recorder plugin writes what it saw;
this script copies each tenant's recording to ``OUT_DIR/<sample>.jsonl`` (default: this
folder). Stand-ins are seeded, so secrets get the same stand-ins on every run; webhook ids,
timestamps and correlation ids still change.

``SECRETS``, ``CODES`` and ``NUMBERS`` are the real values used: the redaction tests check
that none of them survives in a recording.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import plugins.recorder as recorder
from runtime import PhoneMessageRequest
from runtime.delivery import Pipeline
from runtime.events import parse_event
from runtime.plugins import DEFAULT_PLUGINS
from runtime.recording.recorder import RecordingFiles
from runtime.settings import Settings
from runtime.tenants import TomlTenantDirectory
from tests.support.stub_server import RecordedRequest, StubServer

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
ACTIONS = ROOT / "tenant_actions"
SEED = "phone-actions-test-recordings"

Answer = tuple[int, Any, dict[str, str]]
Behaviour = Callable[[RecordedRequest], Answer]

INFOBIP_KEY = "ib-0123456789abcdef0123456789abcdef-0a1b2c3d"
WEBHOOK_SECRET = "whsec-6f1d2c9a8b7e4f30a1b2c3d4e5f60718"
CLIENT_SECRET = "cs-9f8e7d6c5b4a3210"


def _secrets(sample: str, url: str) -> dict[str, str]:
    vonage = {
        "VONAGE_API_KEY": "a1b2c3d4",
        "VONAGE_API_SECRET": "vs3cret-Xy9",
        "VONAGE_FROM": "AcmeOTP",
        "VONAGE_BASE_URL": url + "/",
    }
    infobip = {"INFOBIP_API_KEY": INFOBIP_KEY, "INFOBIP_BASE_URL": url}
    return {
        "vonage_sms": vonage,
        "infobip_sms": infobip | {"INFOBIP_SENDER": "AcmeID"},
        "webhook_relay": {"WEBHOOK_URL": url + "/hooks/phone", "WEBHOOK_SECRET": WEBHOOK_SECRET},
        "country_routing": vonage | infobip,
        "voice_tts": infobip | {"INFOBIP_VOICE_FROM": "41793026700"},
        "custom_provider": {
            "PROVIDER_BASE_URL": url,
            "PROVIDER_CLIENT_ID": "acme-otp-client",
            "PROVIDER_CLIENT_SECRET": CLIENT_SECRET,
        },
    }[sample]


SECRETS = sorted(
    {
        value
        for sample in ("vonage_sms", "infobip_sms", "webhook_relay", "voice_tts", "custom_provider")
        for name, value in _secrets(sample, "http://127.0.0.1:1").items()
        if not name.endswith("_URL")
    }
)
"""Every secret value the samples get (URLs aside: their port changes from run to run)."""


def _vonage(status: str = "0", error: str | None = None) -> Behaviour:
    def answer(request: RecordedRequest) -> Answer:
        message: dict[str, Any] = {"to": request.form.get("to", [""])[0], "status": status}
        if status == "0":
            message |= {"message-id": "0A0000000123ABCD1", "remaining-balance": "3.14159265"}
        else:
            message["error-text"] = error
        return 200, {"message-count": "1", "messages": [message]}, {}

    return answer


def _infobip(group: str = "PENDING") -> Behaviour:
    def answer(request: RecordedRequest) -> Answer:
        body = json.loads(request.body)
        to = body["messages"][0]["destinations"][0]["to"]
        status = {"groupId": 1, "groupName": group, "id": 26, "name": f"{group}_ACCEPTED"}
        status["description"] = "Message sent to next instance"
        message = {"messageId": f"ib-msg-{to[-4:]}", "status": status, "destination": to}
        return 200, {"bulkId": "2034072219640523072", "messages": [message]}, {}

    return answer


def _status(status: int, body: Any) -> Behaviour:
    return lambda _request: (status, body, {})


def _routing(request: RecordedRequest) -> Answer:
    return (_vonage() if request.path == "/sms/json" else _infobip())(request)


class _Cpaas:
    """OAuth2 client-credentials provider: issues tokens, answers sends with ``send_status``."""

    def __init__(self) -> None:
        self.issued = 0
        self.send_status = 202

    def __call__(self, request: RecordedRequest) -> Answer:
        if request.path == "/oauth2/token":
            self.issued += 1
            token = f"tok-{self.issued}-9d8c7b6a5f4e3d2c1b0a"
            return 200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600}, {}
        if self.send_status >= 300:
            return self.send_status, {"error": {"code": "E", "message": "busy"}}, {}
        return self.send_status, {"id": f"cp-{len(request.body)}", "status": "queued"}, {}


@dataclass
class Case:
    recipient: str
    code: str
    answer: Behaviour
    text: str | None = None


def _cases(sample: str) -> list[Case]:
    cpaas = _Cpaas()

    def cpaas_then(status: int) -> Behaviour:
        def answer(request: RecordedRequest) -> Answer:
            cpaas.send_status = status
            return cpaas(request)

        return answer

    return {
        "vonage_sms": [
            Case("+447911123456", "730419", _vonage()),
            Case("+33612345678", "481902", _vonage(), "481902 est votre code de vérification"),
            Case("+447911123456", "550318", _vonage("9", "Quota Exceeded - rejected")),
            Case("+447911123457", "902211", _status(503, "upstream unavailable")),
        ],
        "infobip_sms": [
            Case("+4915123456789", "915372", _infobip()),
            Case("+4915198765432", "660124", _infobip("REJECTED")),
            Case(
                "+4915123456789",
                "307781",
                _status(
                    401,
                    {
                        "requestError": {
                            "serviceException": {
                                "messageId": "UNAUTHORIZED",
                                "text": "Invalid login details",
                            }
                        }
                    },
                ),
            ),
        ],
        "webhook_relay": [
            Case("+14155552671", "264801", _status(202, {"id": "hook-msg-1"})),
            Case("+14155550199", "118264", _status(503, "maintenance")),
        ],
        "country_routing": [
            Case("+33612345678", "458136", _routing),
            Case("+4915123456789", "220931", _routing),
            Case("+14155552671", "873310", _routing),
            Case("+919876543210", "641205", _routing),
        ],
        "voice_tts": [
            Case("+34612345678", "603927", _infobip()),
            Case("+34612345679", "118027", _status(429, {"errorCode": "E429"})),
        ],
        "custom_provider": [
            Case("+61412345678", "187254", cpaas),
            Case("+61412345678", "552901", cpaas),
            Case("+61498765432", "730011", cpaas_then(503)),
        ],
    }[sample]


SAMPLES = ("vonage_sms", "infobip_sms", "webhook_relay", "country_routing", "voice_tts",
           "custom_provider")  # fmt: skip
IGNORE_FIELDS = {"webhook_relay": ["id", "sent_at"]}
"""Body fields that change on every run (a random id, a timestamp): not compared."""

CODES = sorted({case.code for sample in SAMPLES for case in _cases(sample)})
NUMBERS = sorted({case.recipient for sample in SAMPLES for case in _cases(sample)})


def recorder_plugins() -> tuple[object, ...]:
    """The recorder plugin, unless the built-in plugins already include it."""
    return () if "plugins.recorder" in DEFAULT_PLUGINS else (recorder,)


async def record_sample(sample: str, workdir: Path) -> Path:
    """Deliver the sample's cases through a recording tenant; return the recording's path."""
    data = json.loads((ACTIONS / "events" / f"{sample}.json").read_text(encoding="utf-8"))
    trigger = "custom-phone-provider" if "notification" in data else "send-phone-message"
    provider = "custom" if trigger == "custom-phone-provider" else "phone-message-hook"
    with StubServer() as stub:
        secrets = _secrets(sample, stub.url)
        tenants = TomlTenantDirectory.from_mapping(
            {
                "tenants": {
                    "acme": {
                        "message_types": ["sms", "voice"],
                        "provider": provider,
                        "provider_settings": {"script": _script(sample)},
                        "credentials_env": {name: f"ACME_{name}" for name in secrets},
                        "fallback": "never",
                        "record": True,
                    }
                }
            },
            environ={f"ACME_{name}": value for name, value in secrets.items()},
        )
        settings = Settings(
            _env_file=None,
            data_dir=workdir / "data",
            recordings_dir=workdir / sample,
            sandbox_allow_http_hosts=[stub.url.removeprefix("http://")],
        )
        async with Pipeline.from_settings(
            settings, tenants=tenants, plugins=recorder_plugins(), load_entrypoints=False
        ) as pipeline:
            for case in _cases(sample):
                stub.respond_with(case.answer)
                event = parse_event(data)
                part = event.message_options if hasattr(event, "message_options") else None
                request = PhoneMessageRequest.from_event(event)
                text = case.text or (request.text or "").replace(
                    part.code if part else (event.notification.code or ""),  # type: ignore[union-attr]
                    case.code,
                )
                if request.channel == "voice" or "." in text:
                    text = _respell(text, case.code)
                await pipeline.deliver(
                    request.model_copy(
                        update={"recipient": case.recipient, "code": case.code, "text": text}
                    )
                )
    assert recorder.flush(), "the recorder did not catch up"  # it writes on its own thread
    [path] = sorted((workdir / sample).rglob("*.jsonl"))
    if sample in IGNORE_FIELDS:
        lines = path.read_text(encoding="utf-8").splitlines()
        header = json.loads(lines[0]) | {"ignore_fields": IGNORE_FIELDS[sample]}
        path.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n", encoding="utf-8")
    return path


def _script(sample: str) -> str:
    """The script's path, relative to the working folder when it is inside it (so the
    committed recordings do not name the machine's folders)."""
    path = ACTIONS / f"{sample}.py"
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _respell(text: str, code: str) -> str:
    """Put ``code`` into a text that spells the sample's code out digit by digit."""
    import re

    return re.sub(r"\d(?:\. \d)+", ". ".join(code), text)


async def make_all(out_dir: Path) -> list[Path]:
    recorder.FILES = RecordingFiles(seed=SEED)
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        for sample in SAMPLES:
            path = await record_sample(sample, Path(tmp))
            target = out_dir / f"{sample}.jsonl"
            shutil.copyfile(path, target)
            written.append(target)
    return written


def main() -> None:
    out_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE
    out_dir.mkdir(parents=True, exist_ok=True)
    for path in asyncio.run(make_all(out_dir)):
        lines = path.read_text(encoding="utf-8").count("\n") - 1
        print(f"{path}: {lines} attempts")


if __name__ == "__main__":
    main()
