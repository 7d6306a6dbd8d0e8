"""SandboxPool, the supervisor: an asyncio pool of per-tenant worker processes (docs/sandbox.md).

Trusted code in the API process that never runs tenant code and never unpickles anything
(:mod:`runtime.sandbox.host.invocation` runs one invocation and judges its end). Workers are
persistent and serve one tenant each, ever: a warm worker answers in well under a millisecond,
where a fork per invocation would cost several. They are recycled after
``max_invocations_per_worker`` invocations and after any outcome other than ``ok``. When
``max_workers`` tenant workers exist, the least recently used idle one is evicted; a few
unbound *spares* (on top of ``max_workers``) are forked in advance so that a tenant without a
warm worker does not wait for a fork. There are ``spare_workers`` of them; each time a cold
start finds none, the target doubles, up to ``max_spare_workers``, and it falls back once no
cold start has missed a spare for ``SPARE_DECAY`` seconds (tenant churn comes in bursts).
At most ``max_workers_per_tenant`` invocations of one tenant run at once and further ones
queue (bounded), so one tenant's infinite loops occupy at most that many workers while
everybody else keeps being served.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import OrderedDict, deque
from typing import Any

from runtime.sandbox.guest import oslimits
from runtime.sandbox.host.context import InvocationContext
from runtime.sandbox.host.invocation import Services, run_invocation
from runtime.sandbox.host.uids import TenantUids
from runtime.sandbox.host.zygote_client import Worker, ZygoteClient, ZygoteError
from runtime.sandbox.shared.contract import InvocationResult, Outcome, SandboxLimits, Trigger
from runtime.sandbox.shared.frames import FrameTooLarge, InvokeFrame, encode_frame
from runtime.sandbox.shared.oslayers import Layer, OsIsolation, layers_from_hello

__all__ = ["SandboxPool", "Services"]

log = logging.getLogger(__name__)

SPARE_DECAY = 30.0
"""Seconds without a cold start that missed a spare before the spare target falls back."""
DEFAULT_MAX_SPARES = 8
"""Spares kept at most under churn (about 4 MiB private each, see bench/README.md)."""


class _Unavailable(Exception):
    def __init__(self, message: str, outcome: Outcome = "timeout") -> None:
        super().__init__(message)
        self.outcome: Outcome = outcome


class _FifoSemaphore:
    """A counting semaphore with FIFO hand-over, a bounded queue and deadline-aware waits."""

    def __init__(self, limit: int, max_waiters: int = 1 << 30) -> None:
        self.limit = limit
        self.active = 0
        self.max_waiters = max_waiters
        self.waiters: deque[asyncio.Future[None]] = deque()

    def waiting(self) -> bool:
        while self.waiters and self.waiters[0].done():
            self.waiters.popleft()
        return bool(self.waiters)

    def try_acquire(self) -> bool:
        if self.active < self.limit and not self.waiting():
            self.active += 1
            return True
        return False

    async def acquire(self, deadline: float, what: str) -> None:
        if self.try_acquire():
            return
        if len(self.waiters) >= self.max_waiters:
            raise _Unavailable(f"too many queued invocations for {what}")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters.append(future)
        try:
            async with asyncio.timeout_at(deadline):
                await asyncio.shield(future)
        except BaseException as exc:
            if future.done() and not future.cancelled() and future.exception() is None:
                self.release()  # handed over just as we gave up: pass it on
            future.cancel()
            if isinstance(exc, TimeoutError):
                raise _Unavailable(f"no {what} became free within the time budget") from None
            raise

    def release(self) -> None:
        if self.waiting():
            self.waiters.popleft().set_result(None)
        else:
            self.active -= 1

    def fail_all(self, exc: Exception) -> None:
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_exception(exc)


class SandboxPool:
    """Run tenant actions in isolated worker processes; see the module docstring."""

    def __init__(
        self,
        services: Services,
        *,
        limits: SandboxLimits = SandboxLimits(),  # noqa: B008 - frozen model
        max_workers: int = 64,
        max_workers_per_tenant: int = 2,
        require_seccomp: bool = False,
        spare_workers: int = 2,
        max_spare_workers: int | None = None,
        max_queued_per_tenant: int = 256,
        probe_modules: tuple[str, ...] = (),
        isolation: OsIsolation | None = None,
    ) -> None:
        self._services = services
        self._limits = limits
        self._per_tenant = max_workers_per_tenant
        self._max_queued = max_queued_per_tenant
        self._require_seccomp = require_seccomp
        self._spare_base = spare_workers
        if max_spare_workers is None:  # no spares asked for: none under churn either
            max_spare_workers = max(spare_workers, DEFAULT_MAX_SPARES) if spare_workers else 0
        self._spare_max = max(max_spare_workers, spare_workers)
        self._spare_target = spare_workers
        self._spare_missed_at = 0.0
        self._probes = probe_modules
        self._zygote: ZygoteClient | None = None
        self._zygote_lock = asyncio.Lock()
        self._slots = _FifoSemaphore(max_workers)  # one per tenant-bound worker, alive or spawning
        self._gates: dict[str, _FifoSemaphore] = {}
        self._idle: dict[str, list[Worker]] = {}
        self._lru: OrderedDict[Worker, None] = OrderedDict()
        self._spares: list[Worker] = []
        self._spares_pending = 0
        self._busy = 0
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()
        self._counts = {"spawned": 0, "recycled": 0, "killed": 0, "evicted": 0}
        self._outcomes: dict[str, int] = {}
        self._seccomp: tuple[bool, str] = (False, "not started")
        self._running = False
        self._isolation = isolation or OsIsolation()
        self._uids = TenantUids(self._isolation.uid_base, self._isolation.uid_count)
        self._layers: list[Layer] = []
        self._tenant_uids = False

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start the zygote; warn (or refuse, with ``require_seccomp``) without seccomp."""
        self._running = True
        try:
            await self._ensure_zygote()
        except BaseException:
            self._running = False
            raise
        self._refill_spares()

    async def _ensure_zygote(self) -> ZygoteClient:
        async with self._zygote_lock:
            if not self._running:
                raise _Unavailable("sandbox pool is not running", "runtime_error")
            if self._zygote is not None and self._zygote.alive:
                return self._zygote
            zygote = ZygoteClient(self._worker_exited)
            await zygote.start(
                probes=self._probes,
                require_seccomp=self._require_seccomp,
                isolation=self._isolation,
            )
            self._note_layers(layers_from_hello(zygote.info))
            ok, detail = zygote.info.get("seccomp") is True, str(zygote.info.get("seccomp_detail"))
            self._seccomp = (ok, detail)
            if not ok and self._require_seccomp:
                await zygote.aclose()
                raise RuntimeError(f"seccomp is required but unavailable: {detail}")
            if not ok:
                log.warning("sandbox workers run WITHOUT seccomp: %s", detail)
            if zygote.info.get("executor_error"):
                log.error("sandbox executor cannot be imported: %s", zygote.info["executor_error"])
            self._zygote = zygote
            return zygote

    def _note_layers(self, layers: list[Layer]) -> None:
        """Keep the host's layers; warn once per pool about each missing one (seccomp has its
        own warning, repeated for each zygote since it can also be required)."""
        first = not self._layers
        self._layers = layers
        self._tenant_uids = any(x.name == "per-tenant uid" and x.active for x in layers)
        for layer in layers if first else ():
            if layer.active or layer.name == "seccomp":
                continue
            if self._turned_off(layer):  # the operator's choice: said, not warned about
                log.info("sandbox workers run without %s: %s", layer.name, layer.detail)
            else:
                log.warning("sandbox workers run WITHOUT %s: %s", layer.name, layer.detail)

    def _turned_off(self, layer: Layer) -> bool:
        """Whether ``layer`` is off because the settings say so (not for want of the host)."""
        if layer.name.startswith("cgroup"):
            return self._isolation.cgroup_dir == "off"
        return layer.name.endswith("namespace") and not self._isolation.namespaces

    def layers(self) -> list[Layer]:
        """The OS layers the workers get on this host (empty until started)."""
        return list(self._layers)

    async def aclose(self) -> None:
        """Kill every worker and stop the zygote; waiting invocations end ``runtime_error``."""
        self._running = False
        for task in list(self._tasks):
            task.cancel()
        closed = _Unavailable("sandbox pool is closed", "runtime_error")
        for semaphore in [self._slots, *self._gates.values()]:
            semaphore.fail_all(closed)
        for worker in [*self._lru, *self._spares]:
            self._discard(worker, "killed")
        if self._zygote is not None:
            await self._zygote.aclose()

    def stats(self) -> dict[str, Any]:
        """Live counts for ``phone-actions doctor`` and metrics."""
        per_tenant: dict[str, int] = {}
        for worker in [*self._lru]:
            per_tenant[worker.tenant or "?"] = per_tenant.get(worker.tenant or "?", 0) + 1
        return {
            "live": self._slots.active + len(self._spares),
            "busy": self._busy,
            "idle": len(self._lru),
            "spares": len(self._spares),
            "spare_target": self._spare_target,
            "idle_per_tenant": per_tenant,
            "queued": sum(len(g.waiters) for g in self._gates.values() if g.waiting()),
            "waiting_for_worker": len(self._slots.waiters) if self._slots.waiting() else 0,
            **self._counts,
            "outcomes": dict(self._outcomes),
            "seccomp": {"active": self._seccomp[0], "detail": self._seccomp[1]},
            "zygote_pid": self._zygote.pid if self._zygote and self._zygote.alive else None,
            "layers": {x.name: {"active": x.active, "detail": x.detail} for x in self._layers},
            "tenant_uids": self._uids.held(),
        }

    # ------------------------------------------------------------------ invocations

    async def invoke(
        self,
        *,
        tenant: str,
        name: str,
        source: str | bytes,
        trigger: Trigger,
        event: dict[str, Any],
        limits: SandboxLimits | None = None,
        check: bool = False,
    ) -> InvocationResult:
        """Run ``trigger``'s handler in ``source`` for ``tenant``, in a worker of that tenant
        (``check``: only compile it there; outcome ``ok`` or ``compile_error``).

        The wall-clock budget ``limits.timeout`` counts from this call (queueing included).
        """
        limits = limits or self._limits
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + limits.timeout
        invocation = next(self._ids)
        context = InvocationContext.start(tenant, trigger, limits)
        try:
            frame = InvokeFrame(
                invocation, tenant, name, source, trigger, event, limits, check=check
            )
            worker = await self._acquire(tenant, limits, deadline)
        except (FrameTooLarge, TypeError, ValueError) as exc:
            result = InvocationResult(outcome="runtime_error", error=f"cannot send: {exc}")
        except _Unavailable as exc:
            why = "sandbox busy" if exc.outcome == "timeout" else "sandbox unavailable"
            result = InvocationResult(outcome=exc.outcome, error=f"{why}: {exc}")
        else:
            healthy = False
            try:
                result, healthy = await run_invocation(
                    worker,
                    self._services,
                    context,
                    invocation=invocation,
                    frame=frame.for_worker(worker.sources),
                )
            finally:
                self._release(worker, tenant, healthy, limits)
        self._outcomes[result.outcome] = self._outcomes.get(result.outcome, 0) + 1
        return result.model_copy(update={"duration_ms": (loop.time() - started) * 1000})

    # ------------------------------------------------------------------ scheduling

    async def _acquire(self, tenant: str, limits: SandboxLimits, deadline: float) -> Worker:
        if not self._running:
            raise _Unavailable("sandbox pool is not running", "runtime_error")
        gate = self._gates.get(tenant)
        if gate is None:
            gate = self._gates[tenant] = _FifoSemaphore(self._per_tenant, self._max_queued)
        try:
            await gate.acquire(deadline, "worker of this tenant")
        except BaseException:
            self._drop_gate(tenant)
            raise
        try:
            worker = self._take_idle(tenant, limits)
            if worker is None:
                if not self._slots.try_acquire() and not self._evict_lru():
                    await self._slots.acquire(deadline, "sandbox worker")
                try:
                    worker = self._take_spare(limits)
                    if worker is None:
                        self._missed_spare()
                        worker = await self._spawn(limits, deadline, warm=False)
                except BaseException:
                    self._slots.release()
                    raise
                self._bind(worker, tenant)
        except BaseException:
            self._leave_gate(tenant)
            raise
        worker.state = "busy"
        self._busy += 1
        return worker

    def _release(self, worker: Worker, tenant: str, healthy: bool, limits: SandboxLimits) -> None:
        self._busy -= 1
        worker.invocations += 1
        gate = self._gates[tenant]
        if not healthy or worker.state == "gone" or not self._running:
            self._discard(worker, "killed")
        elif worker.retire or worker.invocations >= limits.max_invocations_per_worker:
            self._discard(worker, "recycled")
        elif self._slots.waiting() and not gate.waiting():
            self._discard(worker, "evicted")  # a tenant without any worker needs the slot
        else:
            worker.state = "idle"
            self._idle.setdefault(tenant, []).append(worker)
            self._lru[worker] = None
        self._leave_gate(tenant)
        self._refill_spares()

    def _bind(self, worker: Worker, tenant: str) -> None:
        """Give a fresh worker its tenant and, where the host allows, the tenant's uid."""
        uid = self._uids.acquire(tenant) if self._tenant_uids else None
        worker.bind(tenant, uid)  # written with the invocation's frame, which judges a failure

    def _unbind(self, worker: Worker) -> None:
        """The worker is gone: its tenant's uid may go back to the range."""
        if worker.uid is not None and worker.tenant is not None:
            self._uids.release(worker.tenant)
        worker.uid = None

    def _leave_gate(self, tenant: str) -> None:
        self._gates[tenant].release()
        self._drop_gate(tenant)

    def _drop_gate(self, tenant: str) -> None:
        gate = self._gates.get(tenant)
        if gate is not None and gate.active == 0 and not gate.waiting():
            del self._gates[tenant]

    def _take_idle(self, tenant: str, limits: SandboxLimits) -> Worker | None:
        while self._idle.get(tenant):
            worker = self._idle[tenant][-1]  # most recently used: the warmest
            self._unidle(worker)
            if _fits(worker, limits) and not worker.conn.failed:
                return worker
            worker.state = "busy"  # holds its slot until discarded
            self._discard(worker, "recycled")
        return None

    def _unidle(self, worker: Worker) -> None:
        self._lru.pop(worker, None)
        workers = self._idle.get(worker.tenant or "", [])
        if worker in workers:
            workers.remove(worker)
        if not workers:
            self._idle.pop(worker.tenant or "", None)

    def _evict_lru(self) -> bool:
        """Take the slot of the least recently used idle worker; False if none.

        The victim is killed on the next turn of the event loop, once the invocation that takes
        its slot has been written: a SIGKILL wakes the victim, whose exit (about 1.5 ms of
        kernel work) would otherwise run ahead of that invocation. It is idle, bound to its
        own tenant and out of every list meanwhile; its uid is released only once it is killed.
        """
        if not self._lru:
            return False
        victim = next(iter(self._lru))
        self._unidle(victim)
        victim.state = "gone"
        self._counts["evicted"] += 1
        asyncio.get_running_loop().call_soon(self._kill_evicted, victim)
        return True

    def _kill_evicted(self, victim: Worker) -> None:
        victim.kill()
        self._unbind(victim)

    def _take_spare(self, limits: SandboxLimits) -> Worker | None:
        for index, worker in enumerate(self._spares):
            if _fits(worker, limits) and not worker.conn.failed:
                del self._spares[index]  # refilled after the invocation: not competing with it
                return worker
        return None

    async def _spawn(self, limits: SandboxLimits, deadline: float, *, warm: bool) -> Worker:
        try:
            async with asyncio.timeout_at(deadline):
                zygote = await self._ensure_zygote()
                worker = await zygote.spawn(_worker_limits(limits), warm=warm)
        except TimeoutError:
            raise _Unavailable("no worker could be started in time") from None
        except (ZygoteError, OSError) as exc:
            raise _Unavailable(f"cannot start a worker: {exc}", "runtime_error") from None
        self._counts["spawned"] += 1
        self._check_seccomp(worker)
        return worker

    def _check_seccomp(self, worker: Worker) -> None:
        if not worker.seccomp and self._seccomp[0]:
            self._seccomp = (False, f"worker {worker.pid} could not load the seccomp filter")
            log.warning("sandbox worker %d runs without seccomp", worker.pid)
        if not worker.seccomp and self._require_seccomp:
            worker.kill()
            raise _Unavailable(
                "seccomp is required but a worker could not load it", "runtime_error"
            )

    def _missed_spare(self) -> None:
        """A cold start found no spare: keep more of them (bounded), starting now."""
        self._spare_missed_at = asyncio.get_running_loop().time()
        if self._spare_target < self._spare_max:
            self._spare_target = min(self._spare_max, 2 * self._spare_target)
            self._refill_spares()

    def _refill_spares(self) -> None:
        if not self._running:
            return
        quiet = asyncio.get_running_loop().time() - self._spare_missed_at > SPARE_DECAY
        if self._spare_target > self._spare_base and quiet:
            self._spare_target = self._spare_base
        if len(self._spares) + self._spares_pending >= self._spare_target:
            return
        self._spares_pending += 1
        task = asyncio.get_running_loop().create_task(self._spawn_spare())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _spawn_spare(self) -> None:
        try:
            # warm while tenants are few; lean under churn, when spares are the bottleneck
            warm = self._spare_target <= self._spare_base
            deadline = asyncio.get_running_loop().time() + 30
            worker = await self._spawn(self._limits, deadline, warm=warm)
        except _Unavailable as exc:
            log.warning("could not start a spare sandbox worker: %s", exc)
            return
        finally:
            self._spares_pending -= 1
        if not self._running or worker.conn.failed:
            worker.kill()
            return
        worker.state = "spare"
        self._spares.append(worker)
        self._refill_spares()

    def _discard(self, worker: Worker, reason: str) -> None:
        """Kill ``worker``; a tenant worker's slot goes to the next waiter (or back)."""
        was, worker.state = worker.state, "gone"
        worker.kill()
        self._unbind(worker)
        if was == "gone":
            return
        self._counts[reason] += 1
        if was == "spare":
            self._spares.remove(worker)
            self._refill_spares()
            return
        if was == "idle":
            self._unidle(worker)
        self._slots.release()

    def _worker_exited(self, worker: Worker) -> None:
        """The zygote reaped ``worker``: forget it unless an invocation is handling it."""
        if worker.state in ("idle", "spare"):
            self._discard(worker, "killed")

    # ------------------------------------------------------------------ test hooks

    async def probe(self, tenant: str, target: str, *args: Any, budget: float = 10.0) -> Any:
        """TEST ONLY: run trusted ``module:function`` (``module`` in ``probe_modules``, imported
        by the zygote) in a worker of ``tenant``, where its invocations run; returns the JSON
        result."""
        if not self._probes:
            raise RuntimeError("probes are disabled in this pool")
        limits = self._limits.model_copy(update={"timeout": budget})
        deadline = asyncio.get_running_loop().time() + budget
        worker = await self._acquire(tenant, limits, deadline)
        healthy = False
        try:
            message = {"type": "probe", "id": 0, "tenant": tenant, "target": target}
            worker.send(encode_frame({**message, "args": list(args)}, max_size=1 << 20))
            async with asyncio.timeout_at(deadline):
                reply = await worker.conn.recv()
            healthy = reply.get("type") == "probe_result" and reply.get("ok") is True
            if not healthy:
                raise RuntimeError(f"probe failed: {reply.get('error')}")
            return reply.get("value")
        finally:
            self._release(worker, tenant, healthy, limits)

    def idle_pids(self, tenant: str) -> list[int]:
        """Pids of ``tenant``'s idle workers."""
        return [worker.pid for worker in self._idle.get(tenant, [])]


def _worker_limits(limits: SandboxLimits) -> oslimits.WorkerLimits:
    return oslimits.WorkerLimits(memory_bytes=limits.memory_bytes, cpu_seconds=limits.cpu_seconds)


def _fits(worker: Worker, limits: SandboxLimits) -> bool:
    return (
        worker.limits.memory_bytes >= limits.memory_bytes
        and worker.limits.cpu_hard > limits.cpu_seconds
    )
