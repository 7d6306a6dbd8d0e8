"""Replaying recorded attempts against a provider plugin's real ``send``, offline.

The provider gets a :class:`~runtime.recording.replay.taps.ReplayObserver` as its
``observer``: every request is answered from the recording instead of its session.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Iterable

from runtime.errors import ProviderError
from runtime.providers import PhoneMessage, Provider, Receipt, accepts_observer
from runtime.recording.format import AttemptRecord, ResultRecord
from runtime.recording.replay.cursor import Cursor
from runtime.recording.replay.report import EventResult, compare_result, result_summary
from runtime.recording.replay.taps import ReplayObserver

__all__ = ["ProviderReplayer"]


class ProviderReplayer:
    """Replays recorded attempts against a provider plugin's ``send``."""

    def __init__(
        self, provider: Provider, *, ignore_fields: Iterable[str] = (), timeout: float = 10.0
    ) -> None:
        self.provider = provider
        self.ignore = frozenset(ignore_fields)
        self.timeout = timeout
        self._ids = itertools.count(1)

    async def replay(
        self, record: AttemptRecord, ignore: frozenset[str] | None = None
    ) -> EventResult:
        cursor = Cursor(record.exchanges)
        message = _message(record, next(self._ids), self.timeout)
        label = getattr(getattr(self.provider, "http", None), "label", self.provider.name)
        result: ResultRecord
        try:
            config = self.provider.config_model.model_validate(record.provider_settings)
            credentials = self.provider.credentials_model.model_validate(record.secrets)
            if not accepts_observer(self.provider):  # its requests would go to the network
                raise ProviderError(
                    "not_replayable",
                    f"{self.provider.name} takes no HTTP observer (declare accepts_observer, "
                    "or build it on runtime.provider_kit): not sent",
                    retryable=False,
                    handed_off=False,
                )
            send: Callable[..., Awaitable[Receipt]] = self.provider.send
            observer = ReplayObserver(cursor, str(label))
            receipt = await send(message, config, credentials, observer=observer)
            result = ResultRecord(outcome="delivered", message_id=receipt.message_id)
        except ProviderError as exc:
            result = ResultRecord(
                outcome="failed",
                error_code=exc.code,
                error=exc.message,
                handed_off=exc.handed_off,
                retryable=exc.retryable,
            )
        except Exception as exc:
            result = ResultRecord(
                outcome="failed",
                error_code="provider_crashed",
                error=f"{type(exc).__name__}: {exc}",
                handed_off=True,
                retryable=False,
            )
        differences = compare_result(
            record, result, cursor.sent, self.ignore if ignore is None else ignore
        )
        return EventResult(
            record=record,
            recorded=result_summary(record.result),
            replayed=result_summary(result),
            differences=differences,
            requests=cursor.sent,
            result=result,
        )


def _message(record: AttemptRecord, number: int, timeout: float) -> PhoneMessage:
    from runtime.events import ClientInfo, RequestContext

    data = record.message
    return PhoneMessage(
        id=f"replay-{record.seq}-{number}",
        tenant=str(data.get("tenant") or record.tenant),
        recipient=str(data["recipient"]),
        channel=data.get("channel", "sms"),
        purpose=data.get("purpose", "verification"),
        locale=str(data.get("locale") or "en"),
        code=str(data.get("code") or ""),
        text=str(data.get("text") or ""),
        timeout=timeout,
        user=dict(data.get("user") or {}),
        client=ClientInfo.model_validate(data.get("client") or {}),
        request=RequestContext.model_validate(data.get("request") or {}),
    )
