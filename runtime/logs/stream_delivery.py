"""Delivers log streams: one durable job per stream (kind ``log_stream`` on the runtime's job
queue) walks a cursor over the stored log, one batch at a time.

Why a cursor and one job per stream rather than one job per event: the stored log already is
a durable, ordered queue (``log_events.seq``), so a stream needs only its position; one job
per stream (fenced by ``log_streams.job_id``) means one sender per stream across all nodes, so
batches leave in order, and an outage of any length is a cursor that stands still. A run reads
the batch after the cursor, POSTs it (signed, :mod:`runtime.signing`), and moves the cursor
only once the sink answered 2xx: a crash between the sink's answer and the cursor update sends
that batch again, so each event carries its ``log_id`` for the sink to drop a repeat. A
``JSONOBJECT`` stream POSTs each event of the batch alone, in order; when one fails, the
cursor moves past those the sink took before it, so only the rest is sent again. A
failing sink is retried with exponential backoff; past ``log_stream_suspend_after`` seconds of
failure the stream is suspended until a PATCH sets it active again (it resumes where it
stopped). A sweep re-creates the job of an active stream whose job is gone. The POST goes
through :mod:`runtime.outbound`: resolved once, pinned to a public address, no redirect
followed, so a sink's name cannot be re-pointed at the service's own network.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson

from runtime.logs.categories import category_of, types_of
from runtime.logs.stored import LogRepository, LogRow
from runtime.logs.streams import LogStreamRepository, StreamState
from runtime.metrics import observe_log_stream
from runtime.outbound import OutboundFailed, OutboundHttp, OutboundRefused, OutboundRules
from runtime.settings import Settings
from runtime.signing import SIGNATURE_HEADER, sign
from runtime.store.executor import StoreExecutor
from runtime.store.jobrunner import Again, Done, JobRunner, Outcome
from runtime.store.jobs import Job

__all__ = ["KIND", "LogStreamDelivery"]

log = logging.getLogger("runtime.logs")
T = TypeVar("T")

KIND = "log_stream"
IDLE_DELAY = 1.0  # seconds between two looks at the log of a stream that is caught up
_SWEEP_EVERY = 30.0
_REQUEST_TIMEOUT = 10.0  # one batch's POST, well within the job lease


@dataclass(frozen=True)
class _Batch:
    stream: StreamState
    rows: list[LogRow]  # the events to send (filters applied)
    last_seq: int  # the cursor after it (past events the filters dropped too)


def _age(rows: list[LogRow]) -> float:
    """Seconds since the oldest undelivered event (the batch's first) was logged; 0 when
    there is none, or its date cannot be read (the lag gauge must not fail a delivery)."""
    if not rows:
        return 0.0
    try:
        date = datetime.fromisoformat(str(orjson.loads(rows[0].event).get("date")))
    except (orjson.JSONDecodeError, ValueError, AttributeError):
        return 0.0
    if date.tzinfo is None:
        date = date.replace(tzinfo=UTC)
    return max((datetime.now(UTC) - date).total_seconds(), 0.0)


class LogStreamDelivery:
    """The ``log_stream`` job handler, and the sweep that gives each active stream its job."""

    def __init__(
        self,
        stores: Callable[[], Awaitable[tuple[LogRepository, LogStreamRepository]]],
        executor: StoreExecutor,
        settings: Settings,
        jobs: JobRunner,
        *,
        outbound: OutboundHttp | None = None,
    ) -> None:
        """``outbound``: a seam for tests (an injected resolver and transport)."""
        self._stores = stores
        self._executor = executor
        self._settings = settings
        self._jobs = jobs
        self._outbound = outbound or OutboundHttp(OutboundRules(settings.outbound_hosts()))
        self._swept = -_SWEEP_EVERY
        self.sent_batches = 0
        self.failed_batches = 0

    async def aclose(self) -> None:
        await self._outbound.aclose()

    # -- the job --------------------------------------------------------------------------------

    async def run(self, job: Job, payload: bytes) -> Outcome:
        stream_id = payload.decode()
        logs, streams = await self._stores()
        batch = await self._call(self._next_batch, logs, streams, stream_id, job.id)
        if batch is None:
            return Done()  # deleted, paused, suspended, or served by another job
        stream = batch.stream
        observe_log_stream(stream.tenant, stream.id, lag_seconds=_age(batch.rows))
        if batch.last_seq == stream.cursor:
            return Again(IDLE_DELAY)
        if batch.rows:
            taken, error = await self._send(stream, batch.rows)
            if error is not None:
                self.failed_batches += 1
                observe_log_stream(stream.tenant, stream.id, failed=True)
                if taken:  # JSONOBJECT: the events before the failed one were taken
                    last = batch.rows[taken - 1].seq
                    if not await self._call(streams.advance, stream, job.id, last, taken):
                        return Done()
                    stream = replace(stream, cursor=last, failures=0, failing_since=None)
                suspend_after = self._settings.log_stream_suspend_after
                suspended = await self._call(streams.failed, stream, job.id, error, suspend_after)
                if suspended:
                    log.warning("log stream %s suspended: %s", stream.id, error)
                    return Done()
                return Again(self._backoff(stream.failures + 1))
            self.sent_batches += 1
            if taken < len(batch.rows):  # JSONOBJECT: the batch's time ran out; go on soon
                last = batch.rows[taken - 1].seq
                moved = await self._call(streams.advance, stream, job.id, last, taken)
                return Again(0.0) if moved else Done()
        moved = await self._call(streams.advance, stream, job.id, batch.last_seq, len(batch.rows))
        return Again(0.0) if moved else Done()

    def _next_batch(
        self, logs: LogRepository, streams: LogStreamRepository, stream_id: str, job_id: str
    ) -> _Batch | None:
        limit = self._settings.log_stream_batch_size
        with streams.transaction("reading a log stream's batch") as conn:
            stream = streams.state(conn, stream_id, job_id)
            if stream is None:
                return None
            types = types_of(stream.categories)
            rows = logs.batch(conn, stream.tenant, stream.cursor, types, limit)
        last = rows[-1].seq if rows else stream.cursor
        if stream.categories and types is None:  # "other" among the filters: filter here
            wanted = set(stream.categories)
            rows = [row for row in rows if category_of(row.type) in wanted]
        return _Batch(stream, rows, last)

    async def post(self, stream: StreamState, rows: list[LogRow]) -> str | None:
        """POST one batch; None when the sink took it all, else why not (one line)."""
        taken, error = await self._send(stream, rows)
        if error is None and taken < len(rows):  # JSONOBJECT: the batch's time ran out
            return f"the batch's time ran out after {taken} of {len(rows)} events"
        return error

    async def _send(self, stream: StreamState, rows: list[LogRow]) -> tuple[int, str | None]:
        """POST ``rows`` in ``stream``'s format: how many the sink took, and why it did not
        take the rest (None when it took them all, or, one event a request, when the batch's
        time ran out: no request starts after one request's budget, so a slow sink holds
        the job for at most twice that, well within its lease)."""
        items = [
            b'{"log_id":' + orjson.dumps(row.log_id) + b',"data":' + row.event.encode() + b"}"
            for row in rows
        ]
        if stream.content_format == "JSONOBJECT":  # one request per event
            deadline = time.monotonic() + _REQUEST_TIMEOUT
            for taken, item in enumerate(items):
                if taken and time.monotonic() >= deadline:  # the rest in the next run
                    return taken, None
                error = await self._post_body(stream, item)
                if error is not None:
                    return taken, error
            return len(items), None
        if stream.content_format == "JSONLINES":
            body = b"\n".join(items) + b"\n"
        else:
            body = b"[" + b",".join(items) + b"]"
        error = await self._post_body(stream, body)
        return (len(items), None) if error is None else (0, error)

    async def _post_body(self, stream: StreamState, body: bytes) -> str | None:
        """One signed POST; None when the sink answered 2xx, else why not (one line)."""
        headers = {
            **stream.headers,
            "Content-Type": stream.content_type,
            SIGNATURE_HEADER: sign(stream.secret, body),
            "X-Phone-Actions-Log-Stream": stream.id,
        }
        try:
            answer = await self._outbound.post(
                stream.tenant, stream.endpoint, body, headers, budget=_REQUEST_TIMEOUT
            )
        except OutboundRefused as exc:
            return f"the sink is refused: {exc}"
        except OutboundFailed as exc:
            return f"the sink could not be reached: {exc}"
        return None if answer.ok else f"the sink answered HTTP {answer.status}"

    def _backoff(self, failures: int) -> float:
        return float(min(self._settings.log_stream_max_backoff, 2 ** min(failures - 1, 20)))

    # -- the sweep ------------------------------------------------------------------------------

    async def sweep(self, *, force: bool = False) -> int:
        """Give each active stream without a live job a new one; how many were made. Runs
        with each pass of the log copy, at most every 30 s unless ``force``."""
        now = time.monotonic()
        if not force and now - self._swept < _SWEEP_EVERY:
            return 0
        self._swept = now
        _, streams = await self._stores()
        queue = await self._jobs.queue()
        made = 0
        for stream_id, tenant, old_job in await self._call(streams.without_job):
            job_id = await self._call(queue.enqueue, KIND, tenant, stream_id.encode())
            if await self._call(streams.assign, stream_id, old_job, job_id):
                made += 1
        if made:
            self._jobs.wake()
        return made

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._executor.run(fn, *args, timeout=self._settings.store_timeout)
