"""The same idempotency key never sends twice, on any node, and returns the first report."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

from runtime import hookimpl
from runtime.delivery import Pipeline, request_fingerprint
from runtime.store import IdempotencyStore, create_engine_for, migrate
from runtime.tenants import TomlTenantDirectory
from tests.conftest import PipelineFactory, make_settings
from tests.fake_providers import ProvidersPlugin, ScriptedProvider
from tests.test_delivery import request, tenant


async def test_repeated_key_returns_the_first_report_without_sending(
    make_pipeline: PipelineFactory,
) -> None:
    primary = ScriptedProvider("primary")
    pipeline = make_pipeline(tenant(), plugins=(ProvidersPlugin(primary),))
    first = await pipeline.deliver(request(idempotency_key="login-42"))
    again = await pipeline.deliver(request(idempotency_key="login-42"))

    assert len(primary.sent) == 1
    assert again.id == first.id
    assert again.attempts == first.attempts
    assert (first.replayed, again.replayed) == (False, True)


async def test_key_reused_for_another_message_is_rejected(make_pipeline: PipelineFactory) -> None:
    primary = ScriptedProvider("primary")
    pipeline = make_pipeline(tenant(), plugins=(ProvidersPlugin(primary),))
    await pipeline.deliver(request(idempotency_key="k"))
    other = await pipeline.deliver(request(idempotency_key="k", code="654321"))
    assert (other.status, other.reason) == ("rejected", "idempotency_key_reused")
    assert len(primary.sent) == 1


async def test_idempotency_rejections_are_observed_but_replays_are_not(
    make_pipeline: PipelineFactory,
) -> None:
    seen: list[str] = []

    class Recorder:
        @hookimpl
        def after_send(self, report: Any) -> None:
            seen.append(f"{report.status}:{report.reason}:{report.replayed}")

    pipeline = make_pipeline(
        tenant(), plugins=(ProvidersPlugin(ScriptedProvider("primary")), Recorder())
    )
    await pipeline.deliver(request(idempotency_key="k"))
    await pipeline.deliver(request(idempotency_key="k"))
    await pipeline.deliver(request(idempotency_key="k", code="999999"))
    assert seen == [
        "delivered:None:False",
        "rejected:idempotency_key_reused:False",
    ]


async def test_keys_are_per_tenant(make_pipeline: PipelineFactory) -> None:
    primary = ScriptedProvider("primary")
    tenants = {**tenant(), "globex": {"provider": "primary"}}
    pipeline = make_pipeline(tenants, plugins=(ProvidersPlugin(primary),))
    await pipeline.deliver(request(idempotency_key="k"))
    await pipeline.deliver(request(tenant="globex", idempotency_key="k"))
    assert [m.tenant for m in primary.sent] == ["acme", "globex"]


async def test_concurrent_requests_with_one_key_send_once(make_pipeline: PipelineFactory) -> None:
    release, started = asyncio.Event(), asyncio.Event()

    def hold(_message: Any) -> Any:
        started.set()
        return release.wait()

    primary = ScriptedProvider("primary", hold)
    pipeline = make_pipeline(tenant(), plugins=(ProvidersPlugin(primary),))
    tasks = [
        asyncio.create_task(pipeline.deliver(request(idempotency_key="burst"))) for _ in range(5)
    ]
    await started.wait()  # the winner is inside the provider; the others wait for its report
    release.set()
    reports = await asyncio.gather(*tasks)

    assert len(primary.sent) == 1
    assert {r.id for r in reports} == {reports[0].id}
    assert sorted(r.replayed for r in reports) == [False, True, True, True, True]


async def test_a_pending_key_is_never_sent_again(make_pipeline: PipelineFactory) -> None:
    """A claim left by a crashed node may have sent: later requests are refused, not resent."""
    primary = ScriptedProvider("primary")
    pipeline = make_pipeline(tenant(), plugins=(ProvidersPlugin(primary),), idempotency_wait=0.05)
    store = pipeline.idempotency
    r = request(idempotency_key="crashed")
    store.claim("acme", "crashed", request_fingerprint(r))
    report = await pipeline.deliver(r)
    assert (report.status, report.reason) == ("rejected", "idempotency_in_progress")
    assert primary.sent == []


async def _two_nodes_one_key(tmp_path: Path, database_url: str) -> tuple[list[Any], int]:
    """Two pipelines (nodes) sharing one database race on the same key."""
    release, started = asyncio.Event(), asyncio.Event()
    sent: list[Any] = []

    def hold(message: Any) -> Any:
        sent.append(message)
        started.set()
        return release.wait()

    nodes = []
    for node in ("a", "b"):
        settings = make_settings(tmp_path / node, database_url=database_url)
        nodes.append(
            Pipeline.from_settings(
                settings,
                tenants=TomlTenantDirectory.from_mapping({"tenants": tenant()}),
                plugins=(ProvidersPlugin(ScriptedProvider("primary", hold)),),
                load_entrypoints=False,
            )
        )
    key = f"two-nodes-{uuid.uuid4().hex}"
    try:
        tasks = [asyncio.create_task(n.deliver(request(idempotency_key=key))) for n in nodes]
        await started.wait()
        release.set()
        reports = await asyncio.gather(*tasks)
    finally:
        for n in nodes:
            await n.aclose()
    return reports, len(sent)


async def test_two_nodes_sharing_sqlite_send_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    reports, sends = await _two_nodes_one_key(tmp_path, url)
    assert sends == 1
    assert reports[0].id == reports[1].id


async def test_two_nodes_sharing_postgresql_send_once(tmp_path: Path, postgres_url: str) -> None:
    reports, sends = await _two_nodes_one_key(tmp_path, postgres_url)
    assert sends == 1
    assert reports[0].id == reports[1].id
    assert sorted(r.replayed for r in reports) == [False, True]


def test_store_round_trip_on_postgresql(postgres_url: str) -> None:
    engine = create_engine_for(postgres_url)
    migrate(engine)
    store = IdempotencyStore(engine)
    key = uuid.uuid4().hex
    assert store.claim("acme", key, "digest").won
    assert not store.claim("acme", key, "digest").won
    store.complete("acme", key, '{"status": "delivered"}')
    claim = store.get("acme", key)
    assert claim is not None
    assert claim.report == '{"status": "delivered"}'
    store.close()
    engine.dispose()


def test_sqlite_store_keeps_one_connection_that_survives_a_lost_race(tmp_path: Path) -> None:
    """The SQLite store keeps a connection open; a duplicate key (an IntegrityError rolled
    back) leaves it usable, another store on the same file sees every record, and after
    close() the next call opens a new connection."""
    url = f"sqlite:///{tmp_path / 'keys.sqlite3'}"
    engine = create_engine_for(url)
    migrate(engine)
    store, other = IdempotencyStore(engine), IdempotencyStore(create_engine_for(url))
    assert store.claim("acme", "k1", "digest").won
    lost = store.claim("acme", "k1", "digest")
    assert not lost.won
    assert lost.report is None
    assert store.claim("acme", "k2", "digest").won
    store.complete("acme", "k1", '{"status": "delivered"}')
    seen = other.claim("acme", "k1", "digest")
    assert (seen.won, seen.report) == (False, '{"status": "delivered"}')
    store.close()
    again = store.get("acme", "k2")
    assert again is not None
    assert again.fingerprint == "digest"
    store.close()
    other.close()
