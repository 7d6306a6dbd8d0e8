"""``api.notification.retry``: the action runs again from the durable queue, in the real sandbox.

Small retry delays (0.05 s) and a short poll keep the tests fast; every wait is on an
``after_send`` observer's event, never a sleep.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from runtime import PhoneMessageRequest, hookimpl
from runtime.delivery import Pipeline
from runtime.delivery.retries import KIND
from runtime.events import DeliveryReport
from tests.conftest import PipelineFactory, read_log
from tests.store.conftest import fresh_postgres_url, sqlite_url  # noqa: F401 (a fixture)
from tests.support.stub_server import RecordedRequest, StubServer

CODE = "739184"
FAST = {"notification_retry_delays": [0.05] * 5, "job_poll_interval": 0.05}
WAIT = 60  # seconds: a bound for a loaded 2-core CI machine, not a timing assertion

# Posts the delivery id; the fake answers 503 (retry) or 200 (delivered) as the test says.
ACTION = """
def on_execute_custom_phone_provider(event, api):
    r = api.http.post(event.secrets.SMS_URL, json={"id": event.delivery_id})
    if r["status"] >= 500:
        api.notification.retry("provider busy")
    elif r["status"] >= 400:
        api.notification.drop("refused")
"""

ALWAYS_RETRY = """
def on_execute_custom_phone_provider(event, api):
    api.notification.retry("never today")
"""


class Finals:
    """An ``after_send`` observer: every report, and an event per final (not retrying) one."""

    def __init__(self, expected: int = 1) -> None:
        self.reports: list[DeliveryReport] = []
        self.expected = expected
        self.done = asyncio.Event()
        self._lock = threading.Lock()

    @hookimpl
    def after_send(self, request: PhoneMessageRequest, report: DeliveryReport) -> None:
        with self._lock:
            self.reports.append(report)
            if len(self.finals) >= self.expected:
                self.done.set()

    @property
    def finals(self) -> list[DeliveryReport]:
        return [r for r in self.reports if r.status != "retrying"]

    async def wait(self) -> None:
        async with asyncio.timeout(WAIT):
            await self.done.wait()


def answers(fake: StubServer, *statuses: int) -> Counter[str]:
    """Answer each delivery's n-th request with ``statuses[n]`` (the last one after that);
    the counter says how many requests each delivery id made."""
    seen: Counter[str] = Counter()
    lock = threading.Lock()

    def handler(request: RecordedRequest) -> tuple[int, Any, dict[str, str]]:
        delivery = json.loads(request.body)["id"]
        with lock:
            number = seen[delivery]
            seen[delivery] += 1
        return statuses[min(number, len(statuses) - 1)], {"ok": True}, {}

    fake.respond_with(handler)
    return seen


def tenant(tmp_path: Path, source: str, **extra: Any) -> dict[str, Any]:
    script = tmp_path / "action.py"
    script.write_text(source)
    table: dict[str, Any] = {
        "message_types": ["sms"],
        "provider": "custom",
        "provider_settings": {"script": str(script)},
        "credentials_env": {"SMS_URL": "ACME_URL"},
        "fallback": "always",
    }
    table.update(extra)
    return table


def build(
    make_pipeline: PipelineFactory,
    tmp_path: Path,
    fake: StubServer,
    observer: Finals,
    source: str = ACTION,
    *,
    table: dict[str, Any] | None = None,
    **settings: Any,
) -> Pipeline:
    return make_pipeline(
        {"acme": table or tenant(tmp_path, source)},
        plugins=(observer,),
        environ={"ACME_URL": f"{fake.url}/send"},
        sandbox_allow_http_hosts=[fake.url.removeprefix("http://")],
        **{**FAST, **settings},
    )


def otp(key: str | None = None) -> PhoneMessageRequest:
    return PhoneMessageRequest.create(
        tenant="acme", recipient="+447911123456", code=CODE, idempotency_key=key
    )


def outbox_count(pipeline: Pipeline) -> int:
    """Messages the fallback (the outbox) stored, read from the runtime database."""
    pipeline.idempotency  # noqa: B018 (opens and migrates the database if nothing did yet)
    engine = create_engine(pipeline.settings.resolved_database_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM outbox_messages")).scalar_one())
    finally:
        engine.dispose()


@pytest.fixture
def fake() -> Any:
    with StubServer() as server:
        yield server


async def test_retried_twice_then_delivered_reports_retrying_then_delivered(
    make_pipeline: PipelineFactory, tmp_path: Path, fake: StubServer
) -> None:
    calls = answers(fake, 503, 503, 200)
    observer = Finals()
    pipeline = build(make_pipeline, tmp_path, fake, observer)

    first = await pipeline.deliver(otp(key="login-1"))
    assert (first.status, first.reason) == ("retrying", "notification_retry")
    assert "retry 1 of 5" in (first.detail or "")
    await observer.wait()

    [final] = observer.finals
    assert (final.id, final.status, final.delivered_by) == (first.id, "delivered", "custom")
    assert [a.error_code for a in final.attempts] == ["notification_retry"] * 2 + [None]
    assert final.path == ["custom"] * 3  # no fallback in between
    assert calls == {first.id: 3}
    assert outbox_count(pipeline) == 0
    assert [r.status for r in observer.reports] == ["retrying", "delivered"]

    logged = [e for e in read_log(pipeline) if e["details"]["delivery_id"] == first.id]
    # each attempt logged once, numbered by its place: the first with the retrying report,
    # the others with the final one (a failure alert counts each failed attempt once)
    assert [(e["log_id"][-2:], e["type"], e["details"]["status"]) for e in logged] == [
        ("00", "gd_send_sms_failure", "retrying"),
        ("01", "gd_send_sms_failure", "delivered"),
        ("02", "gd_send_sms", "delivered"),
    ]

    stored = pipeline.idempotency.get("acme", "login-1")
    assert stored is not None
    assert stored.report is not None
    assert DeliveryReport.model_validate_json(stored.report).status == "delivered"
    again = await pipeline.deliver(otp(key="login-1"))
    assert (again.replayed, again.status, again.id) == (True, "delivered", first.id)


async def test_after_the_last_retry_the_fallback_rules_apply(
    make_pipeline: PipelineFactory, tmp_path: Path, fake: StubServer
) -> None:
    observer = Finals()
    pipeline = build(make_pipeline, tmp_path, fake, observer, ALWAYS_RETRY)

    first = await pipeline.deliver(otp())
    assert first.status == "retrying"
    await observer.wait()

    [final] = observer.finals
    assert final.path == ["custom"] * 6 + ["outbox"]  # 1 try + 5 retries, then the fallback
    assert [a.fallback for a in final.attempts] == [False] * 6 + [True]
    assert final.status == "stored"  # the embedded default sender reaches no phone
    assert outbox_count(pipeline) == 1


async def test_after_the_last_retry_a_tenant_without_fallback_fails(
    make_pipeline: PipelineFactory, tmp_path: Path, fake: StubServer
) -> None:
    observer = Finals()
    table = tenant(tmp_path, ALWAYS_RETRY, fallback="never")
    pipeline = build(make_pipeline, tmp_path, fake, observer, table=table)

    await pipeline.deliver(otp())
    await observer.wait()
    [final] = observer.finals
    assert (final.status, final.reason, len(final.attempts)) == ("failed", "provider_failed", 6)
    assert outbox_count(pipeline) == 0


async def test_drop_fails_at_once_without_retry_or_fallback(
    make_pipeline: PipelineFactory, tmp_path: Path, fake: StubServer
) -> None:
    calls = answers(fake, 400)
    observer = Finals()
    pipeline = build(make_pipeline, tmp_path, fake, observer)

    done = await pipeline.deliver(otp())
    assert (done.status, done.reason, done.path) == ("failed", "notification_drop", ["custom"])
    assert calls == {done.id: 1}
    assert outbox_count(pipeline) == 0
    queue = await pipeline.jobs.queue()
    assert queue.claim("test", limit=10, lease=60) == []  # nothing was queued


async def test_a_retry_queued_before_a_restart_runs_after_it(
    make_pipeline: PipelineFactory, tmp_path: Path, fake: StubServer
) -> None:
    calls = answers(fake, 503, 200)
    # 2 s: longer than closing the first pipeline takes, so the retry is left to the second
    before = build(make_pipeline, tmp_path, fake, Finals(), notification_retry_delays=[2.0])
    first = await before.deliver(otp())
    assert first.status == "retrying"
    await before.aclose()
    assert calls == {first.id: 1}

    observer = Finals()
    after = build(make_pipeline, tmp_path, fake, observer)
    await after.start_background()
    await observer.wait()
    [final] = observer.finals
    assert (final.id, final.status, final.path) == (first.id, "delivered", ["custom"] * 2)
    assert calls == {first.id: 2}


async def test_a_retry_interrupted_midway_is_never_run_again(
    make_pipeline: PipelineFactory, tmp_path: Path, fake: StubServer
) -> None:
    """A node died while running the retry: its action may have sent the code."""
    calls = answers(fake, 503, 200)
    before = build(make_pipeline, tmp_path, fake, Finals(), notification_retry_delays=[2.0])
    first = await before.deliver(otp())
    queue = await before.jobs.queue()
    await before.aclose()
    # the crashed node: it claimed the job (due or not) with a lease that is already over
    with queue._engine.begin() as conn:  # make the job due now
        conn.execute(text("UPDATE jobs SET due_at = created_at"))
    [claimed] = queue.claim("crashed-node", limit=1, lease=0)
    assert claimed.kind == KIND

    observer = Finals()
    after = build(make_pipeline, tmp_path, fake, observer)
    await after.start_background()
    await observer.wait()
    [final] = observer.finals
    assert (final.id, final.status, final.reason) == (first.id, "failed", "outcome_unknown")
    assert calls == {first.id: 1}  # the action was not run again
    assert outbox_count(after) == 0
    logged = [e for e in read_log(after) if e["details"]["delivery_id"] == first.id]
    # the final report's event numbered after the retrying report's
    assert [(e["log_id"][-2:], e["details"]["status"]) for e in logged] == [
        ("00", "retrying"),
        ("01", "failed"),
    ]
    assert logged[-1]["details"]["failure_details"]["errorCode"] == "outcome_unknown"


async def test_the_code_is_sealed_in_the_database(
    make_pipeline: PipelineFactory, tmp_path: Path, fake: StubServer
) -> None:
    """Checked in the raw SQLite file (and its write-ahead log) while a retry waits."""
    answers(fake, 503)
    pipeline = build(make_pipeline, tmp_path, fake, Finals(), notification_retry_delays=[3600.0])
    first = await pipeline.deliver(otp(key="sealed"))
    assert first.status == "retrying"
    database = Path(sqlite_url(tmp_path).removeprefix("sqlite:///"))
    files = [p for p in database.parent.glob(f"{database.name}*") if p.is_file()]
    raw = b"".join(p.read_bytes() for p in files)
    assert b"notification_retry" in raw  # the job is in these files
    assert CODE.encode() not in raw


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_two_nodes_run_each_retry_once(
    make_pipeline: PipelineFactory,
    tmp_path: Path,
    fake: StubServer,
    backend: str,
    request: pytest.FixtureRequest,
) -> None:
    database = {}
    if backend == "postgresql":
        database["database_url"] = request.getfixturevalue("fresh_postgres_url")
    calls = answers(fake, 503, 503, 200)
    observer = Finals(expected=8)
    node_a = build(make_pipeline, tmp_path, fake, observer, **database)
    node_b = build(make_pipeline, tmp_path, fake, observer, **database)
    await node_b.start_background()

    firsts = await asyncio.gather(*(node_a.deliver(otp()) for _ in range(8)))
    assert {r.status for r in firsts} == {"retrying"}
    await observer.wait()

    finals = observer.finals
    assert sorted(r.id for r in finals) == sorted(r.id for r in firsts)  # each ended once
    assert {r.status for r in finals} == {"delivered"}
    assert calls == dict.fromkeys((r.id for r in firsts), 3)  # each action ran 3 times, no more


@pytest.mark.parametrize("swept", [True, False])
async def test_a_retry_whose_first_record_was_never_stored_defers_to_the_sweep(
    make_pipeline: PipelineFactory, tmp_path: Path, fake: StubServer, swept: bool
) -> None:
    """The retrying report's record was never stored (its database call failed), and the
    claim is stale. If the sweep of stale claims answered it first (outcome_unknown, logged),
    the retry ends and never runs the action: that answer said "never sent again". If not,
    the retry stores its own retrying report on the record first (the sweep then leaves it
    alone), and runs."""
    from runtime.store.jobrunner import Done

    calls = answers(fake, 503, 200)
    before = build(make_pipeline, tmp_path, fake, Finals(), notification_retry_delays=[3600.0])
    first = await before.deliver(otp(key="k-lost"))
    assert first.status == "retrying"
    queue = await before.jobs.queue()
    await before.aclose()
    with queue._engine.begin() as conn:  # the record as a failed store left it, long ago
        conn.execute(text("UPDATE idempotency_records SET report = NULL"))
        conn.execute(text("UPDATE idempotency_records SET created_at = '2000-01-01 00:00:00'"))
        conn.execute(text("UPDATE jobs SET due_at = created_at"))
        conn.execute(text("UPDATE jobs SET created_at = '2000-01-01 00:00:00'"))
    [job] = queue.claim("this-node", limit=1, lease=60)

    observer = Finals()
    after = build(make_pipeline, tmp_path, fake, observer)
    try:
        if swept:
            assert await after.stale_claims.sweep() == 1
        outcome = await after._retries.run(job, queue.payload(job))
        held = after.idempotency.get("acme", "k-lost")
        swept_after = await after.stale_claims.sweep()
    finally:
        await after.aclose()
    assert held is not None
    assert held.report is not None
    final = DeliveryReport.model_validate_json(held.report)
    if swept:
        assert isinstance(outcome, Done)
        assert calls == {first.id: 1}  # never run again
        assert (final.status, final.reason) == ("failed", "outcome_unknown")
    else:
        assert calls == {first.id: 2}  # its retry ran, once
        assert (final.id, final.status) == (first.id, "delivered")
    assert swept_after == 0  # answered either way: nothing left for the sweep
