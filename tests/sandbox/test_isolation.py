"""The OS layers around a worker, checked from inside a real one with native-level probes.

The ``probe_*`` functions are trusted test code that the pool's test-only probe hook runs in a
worker of the given tenant, after the worker was bound (tenant uid, seccomp), exactly where
tenant code runs. They stand in for native code that escaped the language layers: they use
plain ``open``/``os`` calls, which seccomp allows for reading. Each isolation test has a
control with the layer switched off, so that it can fail.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from runtime.sandbox.guest import namespaces
from runtime.sandbox.guest.cgroups import _cgroup2_mount
from runtime.sandbox.host.context import InvocationContext
from runtime.sandbox.host.pool import SandboxPool
from runtime.sandbox.host.uids import TenantUids, preferred_uid
from runtime.sandbox.shared.contract import SandboxLimits
from runtime.sandbox.shared.oslayers import LAYERS, OsIsolation

HERE = "tests.sandbox.test_isolation"
NS_WHY = namespaces.probe_unshare(namespaces.CLONE_NEWNS | namespaces.CLONE_NEWNET)
needs_namespaces = pytest.mark.skipif(bool(NS_WHY), reason=f"no namespaces here: {NS_WHY}")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="per-tenant uids need root")
LIMITS = SandboxLimits(memory_bytes=256 * 1024 * 1024, cpu_seconds=3)


def _attempt(action: Callable[[], Any]) -> Any:
    try:
        return action()
    except OSError as exc:
        return f"refused:{errno.errorcode.get(exc.errno or 0, exc.errno)}"


def probe_read(path: str) -> Any:
    return _attempt(lambda: Path(path).read_text(errors="replace")[:200])


def probe_listdir(path: str) -> Any:
    return _attempt(lambda: sorted(os.listdir(path)))


def probe_uid() -> list[int]:
    return [os.getuid(), os.geteuid(), os.getgid()]


def probe_interfaces() -> Any:
    """Interface names from this process's own network namespace."""
    lines = _attempt(lambda: Path("/proc/self/net/dev").read_text().splitlines()[2:])
    return lines if isinstance(lines, str) else sorted(line.split(":")[0].strip() for line in lines)


def probe_connect(port: int) -> str:
    def connect() -> str:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return "connected"

    return str(_attempt(connect))


def probe_cgroup() -> str:
    """This process's cgroup v2 line (``0::/path``)."""
    lines = Path("/proc/self/cgroup").read_text().splitlines()
    return next(line for line in lines if line.startswith("0::"))


class _NoServices:
    async def handle(self, context: InvocationContext, op: str, params: dict[str, Any]) -> Any:
        raise AssertionError("probes make no api calls")


PoolFactory = Callable[..., Awaitable[SandboxPool]]


@pytest.fixture
async def make_pool() -> AsyncIterator[PoolFactory]:
    pools: list[SandboxPool] = []

    async def factory(**isolation: Any) -> SandboxPool:
        isolation.setdefault("cgroup_dir", "off")
        pool = SandboxPool(
            _NoServices(),
            limits=LIMITS,
            spare_workers=0,
            probe_modules=(HERE,),
            isolation=OsIsolation(**isolation),
        )
        pools.append(pool)
        await pool.start()
        return pool

    yield factory
    for pool in pools:
        await pool.aclose()


@pytest.fixture
def other_tenants_script(tmp_path: Path) -> Path:
    """Another tenant's action script, readable by everybody, as on a careless host."""
    script = tmp_path / "other-tenant.py"
    script.write_text("SECRET = 'of another tenant'\n")
    for folder in [tmp_path, *tmp_path.parents]:
        if folder == Path("/"):
            break
        folder.chmod(folder.stat().st_mode | 0o005)
    script.chmod(0o644)
    return script


async def test_every_layer_is_reported(make_pool: PoolFactory) -> None:
    pool = await make_pool()
    layers = pool.stats()["layers"]
    assert list(layers) == list(LAYERS)
    assert all(entry["detail"] for entry in layers.values())
    assert layers["rlimits"]["active"] is True
    if not NS_WHY:
        assert layers["mount namespace"]["active"] is True
        assert layers["network namespace"]["active"] is True


@needs_namespaces
@pytest.mark.parametrize("isolated", [True, False], ids=["namespaces", "control-without"])
async def test_native_code_sees_no_host_files(
    make_pool: PoolFactory, other_tenants_script: Path, isolated: bool
) -> None:
    pool = await make_pool(namespaces=isolated)
    supervisor = os.getpid()
    seen = {
        "hostname": await pool.probe("acme", f"{HERE}:probe_read", "/etc/hostname"),
        "script": await pool.probe("acme", f"{HERE}:probe_read", str(other_tenants_script)),
        "cmdline": await pool.probe("acme", f"{HERE}:probe_read", f"/proc/{supervisor}/cmdline"),
        "proc": await pool.probe("acme", f"{HERE}:probe_listdir", f"/proc/{supervisor}"),
        "init": await pool.probe("acme", f"{HERE}:probe_listdir", "/proc/1"),
    }
    if isolated:
        assert seen == dict.fromkeys(seen, "refused:ENOENT")
        root = await pool.probe("acme", f"{HERE}:probe_listdir", "/")
        assert root == ["proc"]
        own = await pool.probe("acme", f"{HERE}:probe_listdir", "/proc")
        assert "self" in own
        assert not [name for name in own if name.isdigit() and int(name) == supervisor]
    else:  # the same probes reach the host without the layer: the assertions above can fail
        assert seen["script"] == "SECRET = 'of another tenant'\n"
        assert seen["hostname"] == _read("/etc/hostname")


@needs_namespaces
@pytest.mark.parametrize("isolated", [True, False], ids=["namespaces", "control-without"])
async def test_worker_has_no_network(make_pool: PoolFactory, isolated: bool) -> None:
    pool = await make_pool(namespaces=isolated)
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.setblocking(False)
        port = server.getsockname()[1]
        outcome = await pool.probe("acme", f"{HERE}:probe_connect", port)
        assert outcome.startswith("refused:"), outcome  # EPERM (seccomp) or ENETUNREACH
        with pytest.raises(BlockingIOError):
            server.accept()  # nothing ever arrived
    interfaces = await pool.probe("acme", f"{HERE}:probe_interfaces")
    if isolated:
        assert interfaces == ["lo"]
    else:
        host = sorted(line.split(":")[0].strip() for line in _host_interfaces())
        assert interfaces == host


def _read(path: str) -> str:
    return Path(path).read_text(errors="replace")[:200]


def _workers_in(root: Path) -> list[Path]:
    return list(root.rglob("worker-*"))


def _host_interfaces() -> list[str]:
    return Path("/proc/self/net/dev").read_text().splitlines()[2:]


@needs_root
async def test_each_tenant_runs_as_its_own_uid(make_pool: PoolFactory) -> None:
    pool = await make_pool(uid_base=200_000, uid_count=1000)
    first = await pool.probe("tenant-a", f"{HERE}:probe_uid")
    other = await pool.probe("tenant-b", f"{HERE}:probe_uid")
    again = await pool.probe("tenant-a", f"{HERE}:probe_uid")
    assert first == again
    assert first[0] == first[1] == first[2]  # real, effective and group id alike
    assert first[0] != other[0]
    assert all(200_000 <= ids[0] < 201_000 for ids in (first, other))
    assert pool.stats()["tenant_uids"] == {
        "tenant-a": first[0],
        "tenant-b": other[0],
    }
    assert first[0] == preferred_uid("tenant-a", 200_000, 1000)  # stable across restarts


def test_colliding_tenants_get_distinct_uids_while_both_live() -> None:
    uids = TenantUids(base=5000, count=3)
    tenants = [f"t{i}" for i in range(50)]
    same = [t for t in tenants if preferred_uid(t, 5000, 3) == preferred_uid("t0", 5000, 3)]
    a, b = same[:2]
    ua = uids.acquire(a)
    ub = uids.acquire(b)
    assert ua == preferred_uid(a, 5000, 3)
    assert ub != ua  # moved to the next free uid
    assert uids.acquire(a) == ua  # a second worker of the same tenant shares its uid
    uids.release(a)
    assert uids.held() == {a: ua, b: ub}  # a still has a live worker
    uids.release(a)
    assert uids.held() == {b: ub}
    third = uids.acquire("x")
    fourth = uids.acquire("y")
    assert len({ub, third, fourth}) == 3
    with pytest.raises(RuntimeError, match="all 3 sandbox uids are in use"):
        uids.acquire("z")


async def test_missing_layers_are_warned_once(
    make_pool: PoolFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Said once per pool; a layer the settings turn off (here the namespaces) is the
    operator's choice: said at INFO, not warned about on every run."""
    caplog.set_level(logging.INFO, "runtime.sandbox.host.pool")
    pool = await make_pool(namespaces=False)
    for tenant in ("a", "b", "c"):
        assert await pool.probe(tenant, f"{HERE}:probe_uid")
    layers = pool.stats()["layers"]
    for name in ("mount namespace", "network namespace"):
        assert layers[name] == {
            "active": False,
            "detail": "disabled (sandbox_namespaces = false)",
        }
        said = [r for r in caplog.records if f"without {name}:" in r.getMessage().lower()]
        assert [r.levelno for r in said] == [logging.INFO]
    assert layers["cgroup memory"]["detail"] == "disabled (sandbox_cgroup_dir = off)"


def _cgroup_test_root() -> tuple[Path | None, str]:
    if os.geteuid() != 0:
        return None, "creating cgroups needs root"
    mount = _cgroup2_mount()
    if mount is None:
        return None, "no cgroup2 mounted"
    root = Path(mount) / f"phone-actions-test-{os.getpid()}"
    try:
        root.mkdir(exist_ok=True)
    except OSError as exc:
        return None, f"cgroup2 at {mount} not writable: {exc}"
    return root, ""


@pytest.fixture
def cgroup_root() -> Any:
    root, why = _cgroup_test_root()
    if root is None:
        pytest.skip(why)
    yield root
    for folder in sorted(root.rglob("*"), key=lambda p: -len(p.parts)):
        if folder.is_dir():
            folder.rmdir()
    root.rmdir()


@needs_namespaces
async def test_each_worker_gets_its_own_cgroup(make_pool: PoolFactory, cgroup_root: Path) -> None:
    pool = await make_pool(cgroup_dir=str(cgroup_root))
    inside = await pool.probe("acme", f"{HERE}:probe_cgroup")
    relative = inside.removeprefix("0::")
    assert relative.startswith(f"/{cgroup_root.name}/zygote-"), inside
    mount = Path(str(_cgroup2_mount()))
    worker_cgroup = mount / relative.lstrip("/")
    [pid] = pool.idle_pids("acme")
    assert worker_cgroup.name == f"worker-{pid}"
    assert (worker_cgroup / "cgroup.procs").read_text().split() == [str(pid)]
    layers = pool.stats()["layers"]
    if layers["cgroup memory"]["active"]:
        assert (worker_cgroup / "memory.max").read_text().strip() == str(LIMITS.memory_bytes)
    if layers["cgroup pids"]["active"]:
        assert (worker_cgroup / "pids.max").read_text().strip() == "8"
    await pool.aclose()
    assert not _workers_in(cgroup_root)  # removed as the zygote reaped them


@needs_namespaces
async def test_cgroup_limits_where_the_host_delegates_them(
    make_pool: PoolFactory, cgroup_root: Path
) -> None:
    pool = await make_pool(cgroup_dir=str(cgroup_root))
    layers = pool.stats()["layers"]
    if not (layers["cgroup memory"]["active"] and layers["cgroup pids"]["active"]):
        pytest.skip(f"memory/pids controllers unavailable: {layers['cgroup memory']['detail']}")
    inside = await pool.probe("acme", f"{HERE}:probe_cgroup")
    folder = Path(str(_cgroup2_mount())) / inside.removeprefix("0::").lstrip("/")
    assert (folder / "memory.max").read_text().strip() == str(LIMITS.memory_bytes)
    assert (folder / "pids.max").read_text().strip() == "8"
