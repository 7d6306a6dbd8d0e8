"""The durable job queue: due jobs are claimed once under a lease, on SQLite and PostgreSQL;
an expired lease (a crashed node) hands the job over; payloads are sealed at rest."""

from __future__ import annotations

import base64
import os
import stat
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from runtime.errors import ConfigurationError
from runtime.store import create_engine_for, migrate
from runtime.store.crypto import KEY_FILE, Keyring, SealError, key_id
from runtime.store.jobs import JobQueue, QueueFullError
from tests.store.conftest import sqlite_url

SECRET = b'{"code": "739184"}'


@pytest.fixture(params=["sqlite", "postgresql"])
def jobs_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """SQLite in a temporary folder, or a fresh PostgreSQL database (claims take any due job,
    so the shared test database would mix in other tests' jobs)."""
    if request.param == "sqlite":
        return sqlite_url(tmp_path)
    return str(request.getfixturevalue("fresh_postgres_url"))


@pytest.fixture
def keys(tmp_path: Path) -> Keyring:
    return Keyring.load(None, tmp_path / "keys")


@pytest.fixture
def engine(jobs_url: str) -> Iterator[Engine]:
    made = create_engine_for(jobs_url, timeout=5)
    migrate(made)
    yield made
    made.dispose()


@pytest.fixture
def queue(engine: Engine, keys: Keyring) -> JobQueue:
    return JobQueue(engine, keys)


def test_a_due_job_is_claimed_once_and_completed(queue: JobQueue) -> None:
    job_id = queue.enqueue("k", "acme", SECRET)
    later = queue.enqueue("k", "acme", b"later", delay=3600)

    [job] = queue.claim("node-a", limit=10, lease=60)
    assert (job.id, job.kind, job.tenant, job.attempts) == (job_id, "k", "acme", 1)
    assert queue.payload(job) == SECRET
    assert queue.claim("node-b", limit=10, lease=60) == []  # leased to node-a; `later` not due
    assert queue.complete(job, "node-a")
    assert queue.state(job_id) == ("done", 1, None)
    assert queue.state(later) == ("queued", 0, None)


def test_an_expired_lease_hands_the_job_to_another_node(queue: JobQueue) -> None:
    job_id = queue.enqueue("k", "acme", SECRET)
    [first] = queue.claim("crashed", limit=1, lease=0)  # expires at once: the node died

    [again] = queue.claim("node-b", limit=1, lease=60)
    assert (again.id, again.attempts) == (job_id, 2)
    assert not queue.complete(first, "crashed")  # fenced: the old owner cannot finish it
    assert queue.state(job_id) == ("running", 2, None)
    assert queue.complete(again, "node-b")


def test_reschedule_replaces_the_payload_and_fail_drops_it(queue: JobQueue, engine: Engine) -> None:
    job_id = queue.enqueue("k", "acme", SECRET)
    [job] = queue.claim("n", limit=1, lease=60)
    assert queue.reschedule(job, "n", delay=0, payload=b"second", error="try again")
    assert queue.state(job_id) == ("queued", 1, "try again")
    [job] = queue.claim("n", limit=1, lease=60)
    assert queue.payload(job) == b"second"
    assert queue.fail(job, "n", "gave up")
    assert queue.state(job_id) == ("failed", 2, "gave up")
    with engine.connect() as conn:
        payload = conn.execute(text("SELECT payload FROM jobs")).scalar_one()
    assert payload is None


def test_a_tenant_has_at_most_max_pending_unfinished_jobs(queue: JobQueue) -> None:
    for _ in range(3):
        queue.enqueue("k", "greedy", b"x", max_pending=3)
    with pytest.raises(QueueFullError, match=r"'greedy' already has 3 k jobs waiting \(limit 3\)"):
        queue.enqueue("k", "greedy", b"x", max_pending=3)
    queue.enqueue("k", "other", b"x", max_pending=3)  # another tenant is not affected
    queue.enqueue("other-kind", "greedy", b"x", max_pending=3)


def test_the_payload_is_sealed_at_rest_and_only_opens_in_its_row(
    queue: JobQueue, engine: Engine
) -> None:
    queue.enqueue("k", "acme", SECRET)
    queue.enqueue("k", "acme", b"other")
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, payload FROM jobs ORDER BY created_at")).all()
    assert all(b"739184" not in str(row.payload).encode() for row in rows)
    assert all(str(row.payload).startswith("pa1.") for row in rows)
    with engine.begin() as conn:  # someone with database access moves a payload to a row
        conn.execute(
            text("UPDATE jobs SET payload = :p WHERE id = :id"),
            {"p": rows[0].payload, "id": rows[1].id},
        )
    jobs = {job.id: job for job in queue.claim("n", limit=2, lease=60)}
    assert queue.payload(jobs[rows[0].id]) == SECRET
    with pytest.raises(SealError, match="damaged or not from here"):
        queue.payload(jobs[rows[1].id])


@pytest.mark.parametrize("per_tenant", [None, 2])
def test_concurrent_claimers_take_each_job_exactly_once(
    jobs_url: str, queue: JobQueue, keys: Keyring, per_tenant: int | None
) -> None:
    """Four claimers with engines of their own (as four nodes) race for 120 jobs of five
    tenants; with a cap per tenant, the rows are read unlocked and claimed by an UPDATE that
    checks again that each is due, and still each job is taken once."""
    ids = {queue.enqueue("k", f"t{n % 5}", b"x") for n in range(120)}
    claimed: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(4)
    problems: list[BaseException] = []

    def node(name: str) -> None:
        engine = create_engine_for(jobs_url, timeout=10)
        mine = JobQueue(engine, keys)
        try:
            start.wait()
            while batch := mine.claim(name, limit=7, lease=60, per_tenant=per_tenant):
                with lock:
                    claimed.extend(job.id for job in batch)
        except BaseException as exc:
            problems.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=node, args=(f"node-{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert problems == []
    assert Counter(claimed) == Counter(ids)  # every job, none twice


def test_one_tenant_gets_at_most_its_share_of_a_claim(queue: JobQueue) -> None:
    """A tenant with many due jobs (a frozen log stream receiver's) takes at most
    ``per_tenant`` slots of a node, counting the ones it already runs there: another tenant's
    job, due later, is claimed in the same call."""
    noisy = [queue.enqueue("k", "noisy", b"x") for _ in range(10)]
    quiet = queue.enqueue("k", "quiet", b"x")  # due after every one of noisy's
    first = queue.claim("node", limit=4, lease=60, per_tenant=2)
    assert Counter(job.tenant for job in first) == {"noisy": 2, "quiet": 1}
    assert [job.id for job in first if job.tenant == "noisy"] == noisy[:2]  # oldest first
    assert [job.attempts for job in first] == [1, 1, 1]
    assert {job.id for job in first if job.tenant == "quiet"} == {quiet}
    assert queue.claim("node", limit=4, lease=60, per_tenant=2, busy={"noisy": 2}) == []
    [more] = queue.claim("node", limit=4, lease=60, per_tenant=2, busy={"noisy": 1})
    assert more.id == noisy[2]


async def test_a_tenants_slow_jobs_leave_the_other_tenants_slots(tmp_path: Path) -> None:
    """A node with 4 job slots: 'noisy' queued 6 jobs that hang (a frozen log stream
    receiver), then 'quiet' queued one (a retried code). Quiet's runs while noisy's still
    hang: noisy holds at most a quarter of the slots."""
    import asyncio

    from runtime.store.executor import StoreExecutor
    from runtime.store.jobrunner import Done, JobRunner, Outcome, per_tenant
    from runtime.store.jobs import Job
    from tests.conftest import make_settings

    settings = make_settings(tmp_path, job_workers=4, job_poll_interval=0.05)
    engine = create_engine_for(sqlite_url(tmp_path), timeout=5)
    migrate(engine)

    async def stores() -> Engine:
        return engine

    executor = StoreExecutor()
    runner = JobRunner(stores, executor, settings, lease=60)
    release, quiet_ran = asyncio.Event(), asyncio.Event()
    hanging: list[str] = []

    async def handler(job: Job, payload: bytes) -> Outcome:
        if job.tenant == "quiet":
            quiet_ran.set()
        else:
            hanging.append(job.id)
            await release.wait()
        return Done()

    runner.register("k", handler)
    queue = await runner.queue()
    for _ in range(6):
        await executor.run(queue.enqueue, "k", "noisy", b"x", timeout=5)
    await executor.run(queue.enqueue, "k", "quiet", b"x", timeout=5)
    runner.start()
    try:
        await asyncio.wait_for(quiet_ran.wait(), 30)
        assert len(hanging) == per_tenant(4) == 1
    finally:
        release.set()
        await runner.aclose()
        executor.shutdown()
        engine.dispose()


# -- the master key ----------------------------------------------------------------------


def test_the_key_file_is_made_once_with_mode_0600(tmp_path: Path) -> None:
    first = Keyring.load(None, tmp_path)
    path = tmp_path / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = Keyring.load(None, tmp_path)
    assert again.current == first.current
    assert again.open(first.seal(b"x", "c"), "c") == b"x"


def test_a_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    Keyring.load(None, tmp_path)
    path = tmp_path / KEY_FILE
    path.chmod(0o644)
    with pytest.raises(ConfigurationError, match=r"readable by other users \(mode 644\)"):
        Keyring.load(None, tmp_path)


def test_rotation_seals_with_the_first_key_and_opens_with_any() -> None:
    old, new = os.urandom(32), os.urandom(32)
    b64 = [base64.b64encode(k).decode() for k in (old, new)]
    sealed_old = Keyring.load(b64[0], Path("/nonexistent")).seal(b"x", "c")
    rotated = Keyring.load(f"{b64[1]}, {b64[0]}", Path("/nonexistent"))
    assert sealed_old.split(".")[1] == key_id(old)
    assert rotated.open(sealed_old, "c") == b"x"
    assert rotated.seal(b"x", "c").split(".")[1] == key_id(new)
    with pytest.raises(SealError, match=f"sealed with key {key_id(new)}, which is not among"):
        Keyring.load(b64[0], Path("/nonexistent")).open(rotated.seal(b"x", "c"), "c")


@pytest.mark.parametrize("value", ["short", base64.b64encode(b"16 bytes only!!!").decode()])
def test_a_bad_key_setting_is_one_line_naming_it(value: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Keyring.load(f"{base64.b64encode(os.urandom(32)).decode()},{value}", Path("/x"))
    message = str(caught.value)
    assert message.startswith("PHONE_ACTIONS_MASTER_KEY: key 2 is not base64 of 32 bytes")
    assert "\n" not in message
