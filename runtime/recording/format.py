"""The recording format: JSON Lines, one header line, then one line per attempt.

```text
{"format": "phone-actions-recording", "version": 1, "created_at": "...", "redacted": true,
 "tenant": "acme", "ignore_fields": []}
{"type": "attempt", "seq": 1, "tenant": "acme", "provider": "phone-message-hook",
 "trigger": "send-phone-message", "event": {...}, "message": {...},
 "provider_settings": {...}, "secrets": {"NAME": "stand-in"}, "exchanges": [...],
 "result": {...}, "action": {...} | null}
```

``exchanges`` holds each HTTP exchange in order (``request``: method, url, headers, body;
``response``: status, headers, body; or ``error``: ``connect``, ``timeout``,
``disconnected``). ``result`` is the attempt as the report has it (outcome, error code,
handed off, retryable, message id); ``action`` is what the sandbox returned for a tenant action
(outcome, result, error, logs, handed_off, notification). Bodies are text; a body that is not
UTF-8 is stored in base64 with ``"body_encoding": "base64"``. Every string is redacted
(:mod:`runtime.recording.redact`).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from runtime.errors import InvalidInputError

__all__ = [
    "FORMAT",
    "VERSION",
    "ActionRecord",
    "AttemptRecord",
    "ExchangeRecord",
    "Recording",
    "RecordingHeader",
    "RequestRecord",
    "ResponseRecord",
    "ResultRecord",
    "body_bytes",
    "body_fields",
    "is_recording",
]

FORMAT = "phone-actions-recording"
VERSION = 1


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class RecordingHeader(_Model):
    format: Literal["phone-actions-recording"] = "phone-actions-recording"
    version: int = VERSION
    created_at: str = ""
    redacted: bool = True
    tenant: str | None = None
    ignore_fields: list[str] = Field(default_factory=list)


class RequestRecord(_Model):
    method: str
    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    body: str = ""
    body_encoding: Literal["text", "base64"] = "text"


class ResponseRecord(_Model):
    status: int
    headers: dict[str, str] = Field(default_factory=dict)
    body: str = ""
    body_encoding: Literal["text", "base64"] = "text"


class ExchangeRecord(_Model):
    request: RequestRecord
    response: ResponseRecord | None = None
    error: Literal["connect", "timeout", "disconnected"] | None = None


class ResultRecord(_Model):
    """The attempt as the delivery report shows it."""

    outcome: Literal["delivered", "failed"]
    error_code: str | None = None
    error: str | None = None
    handed_off: bool = False
    retryable: bool | None = None
    message_id: str | None = None


class ActionRecord(_Model):
    """What the sandbox returned for a tenant action."""

    outcome: str
    result: Any = None
    error: str | None = None
    logs: list[str] = Field(default_factory=list)
    handed_off: bool = False
    notification: dict[str, str] | None = None


class AttemptRecord(_Model):
    type: Literal["attempt"] = "attempt"
    seq: int
    tenant: str
    provider: str
    fallback: bool = False
    trigger: str | None = None
    event: dict[str, Any] | None = None
    message: dict[str, Any]
    provider_settings: dict[str, Any] = Field(default_factory=dict)
    secrets: dict[str, str] = Field(default_factory=dict)
    exchanges: list[ExchangeRecord] = Field(default_factory=list)
    result: ResultRecord
    action: ActionRecord | None = None


class Recording(BaseModel):
    """A recording read back: its header and its attempts, in order."""

    path: str
    header: RecordingHeader
    attempts: list[AttemptRecord]

    @classmethod
    def read(cls, path: Path) -> Recording:
        """Read and validate ``path``; raise :class:`InvalidInputError` naming the line."""
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise InvalidInputError(f"{path}: cannot read: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise InvalidInputError(f"{path}: not UTF-8 text") from None
        header: RecordingHeader | None = None
        attempts: list[AttemptRecord] = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                if header is None:
                    header = RecordingHeader.model_validate(data)
                    if header.version > VERSION:
                        raise InvalidInputError(
                            f"{path}: recording format version {header.version} is newer "
                            f"than this phone-actions reads ({VERSION})"
                        )
                elif isinstance(data, dict) and data.get("type") == "attempt":
                    attempts.append(AttemptRecord.model_validate(data))
            except json.JSONDecodeError as exc:
                raise InvalidInputError(
                    f"{path}, line {number}: malformed JSON: {exc.msg}"
                ) from None
            except ValidationError as exc:
                fields = "; ".join(
                    f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                    for e in exc.errors(include_input=False)
                )
                raise InvalidInputError(f"{path}, line {number}: {fields}") from None
        if header is None:
            raise InvalidInputError(f"{path}: empty recording (no header line)")
        return cls(path=str(path), header=header, attempts=attempts)

    def __iter__(self) -> Iterator[AttemptRecord]:  # type: ignore[override]
        return iter(self.attempts)

    def __len__(self) -> int:
        return len(self.attempts)


def is_recording(path: Path) -> bool:
    """True when the first line of ``path`` is a recording header (else: an event file)."""
    try:
        with path.open("rb") as handle:
            first = handle.readline(64 * 1024)
        data = json.loads(first)
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("format") == FORMAT


def encode_body(body: bytes) -> tuple[str, Literal["text", "base64"]]:
    try:
        return body.decode("utf-8"), "text"
    except UnicodeDecodeError:
        return base64.b64encode(body).decode("ascii"), "base64"


def body_bytes(record: RequestRecord | ResponseRecord) -> bytes:
    if record.body_encoding == "base64":
        return base64.b64decode(record.body)
    return record.body.encode("utf-8")


def body_fields(body: bytes, content_type: str, ignore: frozenset[str]) -> Any:
    """A body as comparable data: JSON or a form parsed, ``ignore`` fields dropped."""
    from urllib.parse import parse_qs

    mime = content_type.split(";", 1)[0].strip().lower()
    text = body.decode("utf-8", "replace")
    if mime == "application/x-www-form-urlencoded":
        form = parse_qs(text, keep_blank_values=True)
        return {k: v for k, v in sorted(form.items()) if k not in ignore}
    try:
        data = json.loads(text)
    except ValueError:
        return text
    return _without(data, ignore)


def _without(data: Any, ignore: frozenset[str]) -> Any:
    if isinstance(data, dict):
        return {k: _without(v, ignore) for k, v in data.items() if k not in ignore}
    if isinstance(data, list):
        return [_without(v, ignore) for v in data]
    return data
