"""The attack suite (attacks/README.md): every file in ``attacks/`` is a hostile tenant action.

Each file runs through the real sandbox (``SandboxRunner``: zygote, seccomp'd and rlimited
workers, the supervisor's egress and cache) as its own tenant, and must end in the outcome its
``# expect:`` header names, without any evidence of escape (the string ``ESCAPED``, or another
tenant's secret or cache value) in what comes back; then the same tenant's next, trivial
invocation must be served normally. See ``attacks/README.md`` for the file format.

Network safety: the runner's egress gets a fake resolver and a guarding transport. The only
real socket the transport ever opens goes to :class:`FakeServer` on 127.0.0.1; a request for
anything else is recorded as a violation (and fails the test) unless the attack declares it
with ``# dial: IP HOST``, in which case a canned answer is returned and nothing is sent.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import re
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import pytest_asyncio

from runtime.masking import MASK
from runtime.sandbox.host.egress import EgressPolicy
from runtime.sandbox.host.runner import SandboxRunner
from runtime.sandbox.shared.contract import HANDLERS, InvocationResult, SandboxLimits, Trigger

in_module_loop = pytest.mark.asyncio(loop_scope="module")

ATTACKS_DIR = Path(__file__).parent / "attacks"
CLASSES = ("adv", "lang", "graph", "api", "dos", "out")
OUTCOMES = ("ok", "compile_error", "runtime_error", "timeout", "memory_limit", "output_limit")
TRIGGERS = tuple(HANDLERS)
FILE_NAME = re.compile(r"(?P<cls>[a-z]+)_(?P<nn>\d{2})_(?P<what>[a-z0-9_]+)\.py")
HEADER = re.compile(rb"^#\s*(attack|expect|trigger|repeat|cross-tenant|dial):\s*(.*?)\s*$")
EVIDENCE = "ESCAPED"

# Every attack gets a 1.5 s wall-clock budget, but those expected to end at RLIMIT_AS get the
# runner's longer one: a memory bomb reaches 256 MiB within its 1 s of CPU (RLIMIT_CPU), but on a
# loaded 2-core machine that CPU can take longer than 1.5 s of wall time (dos_25 ended as a
# timeout there). With 10 s, its outcome depends on the CPU it uses, not on the machine's load.
ATTACK_TIMEOUT = 1.5
LIMITS = SandboxLimits(timeout=10.0, cpu_seconds=1, memory_bytes=256 * 1024 * 1024)
MAX_ERROR_CHARS = 4096 + 1  # protocol._MAX_ERROR bytes plus the ellipsis
MAX_REASON_CHARS = 1024 + 1

VICTIM = "victim"
VICTIM_SECRET = "victim-secret-5f0c9a7e1d"
VICTIM_CACHE = "victim-cache-3b8d41c2aa"
VICTIM_KEYS = ("session", "victim-session", "token")
VICTIM_RECORDS = {  # as the victim reads them back: its own secret masked (runtime.masking)
    "session": f"{MASK}|{VICTIM_CACHE}",
    "victim-session": VICTIM_CACHE,
    "token": VICTIM_CACHE,
}
VICTIM_WRITE = """
def on_execute_send_phone_message(event, api):
    api.cache.set("session", event.secrets.VICTIM_TOKEN + "|" + event.cache_marker)
    api.cache.set("victim-session", event.cache_marker)
    api.cache.set("token", event.cache_marker)
    return "stored"
"""
VICTIM_READ = """
def on_execute_send_phone_message(event, api):
    out = {}
    for key in ("session", "victim-session", "token"):
        record = api.cache.get(key)
        out[key] = None if record is None else record.value
    return out
"""
CANARY = """
def on_execute_send_phone_message(event, api):
    api.cache.set("canary", event.fake.run)
    if api.cache.get("canary").value != event.fake.run:
        return "the api link is out of step"
    return "alive"
"""
"""The next invocation after each attack: it must be served normally, api calls included."""

PUBLIC_IP = "93.184.216.34"
DNS: dict[str, tuple[str, ...]] = {
    "public.example": (PUBLIC_IP,),
    "internal.example": ("10.0.0.5",),
    "metadata.example": ("169.254.169.254",),
    "metadata.google.internal": ("169.254.169.254",),
    "mixed.example": (PUBLIC_IP, "10.1.2.3"),
    "v6mapped.example": ("::ffff:127.0.0.1",),
    "nat64.example": ("64:ff9b::a9fe:a9fe",),
    "ula.example": ("fd00:ec2::254",),
    "localhost": ("127.0.0.1", "::1"),
    "loopback.example": ("127.0.0.1",),
    "bogus.example": ("not-an-address",),
}
"""What the fake resolver answers; ``rebind.example`` is public once, then 127.0.0.1."""


# ------------------------------------------------------------------------------ the corpus


@dataclass(frozen=True)
class Attack:
    path: Path
    cls: str
    attack: str
    expect: str
    trigger: Trigger = "send-phone-message"
    repeat: int = 1
    cross_tenant: bool = False
    dials: tuple[tuple[str, str], ...] = ()

    @property
    def stem(self) -> str:
        return self.path.stem

    @property
    def tenant(self) -> str:
        return f"atk-{self.stem}"

    @property
    def secret(self) -> str:
        return f"attacker-secret-{self.stem}"


def parse_attack(path: Path) -> Attack:
    """Read the ``# key: value`` header lines (in the leading comment block) of one file."""
    match = FILE_NAME.fullmatch(path.name)
    if match is None or match["cls"] not in CLASSES:
        raise ValueError(f"{path.name}: name must be <class>_<nn>_<what>.py, class in {CLASSES}")
    headers: dict[str, list[str]] = {}
    for line in path.read_bytes().splitlines():
        if not line.startswith(b"#"):
            break
        found = HEADER.match(line)
        if found:
            value = found[2].decode("utf-8", "replace")
            headers.setdefault(found[1].decode(), []).append(value)
    attack = " ".join(headers.get("attack", []))
    expect = (headers.get("expect") or [""])[0]
    trigger = (headers.get("trigger") or ["send-phone-message"])[0]
    if not attack or expect not in OUTCOMES or trigger not in TRIGGERS:
        raise ValueError(f"{path.name}: needs '# attack:' and a valid '# expect:'/'# trigger:'")
    dials = tuple(tuple(d.split()) for d in headers.get("dial", []))
    if any(len(d) != 2 for d in dials):
        raise ValueError(f"{path.name}: '# dial:' takes 'IP HOST'")
    return Attack(
        path=path,
        cls=match["cls"],
        attack=attack,
        expect=expect,
        trigger=trigger,  # type: ignore[arg-type]
        repeat=int((headers.get("repeat") or ["1"])[0]),
        cross_tenant=(headers.get("cross-tenant") or ["no"])[0] == "yes",
        dials=dials,  # type: ignore[arg-type]
    )


ATTACKS = [parse_attack(path) for path in sorted(ATTACKS_DIR.glob("*.py"))]


# ------------------------------------------------------------------------------ the network


@dataclass
class Dial:
    ip: str
    port: int
    scheme: str
    host_header: str
    sni: str | None
    path: str


@dataclass
class NetLog:
    """Everything the egress asked of the network during the current attack."""

    fake_netloc: str = ""
    allowed: set[tuple[str, str]] = field(default_factory=set)
    dials: list[Dial] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    lookups: list[str] = field(default_factory=list)
    rebind_lookups: int = 0

    def begin(self, attack: Attack | None) -> None:
        self.allowed = set(attack.dials) if attack else set()
        self.dials.clear()
        self.violations.clear()
        self.lookups.clear()
        self.rebind_lookups = 0

    async def resolve(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        if host == "rebind.example":
            self.rebind_lookups += 1
            return [PUBLIC_IP] if self.rebind_lookups == 1 else ["127.0.0.1"]
        if host in DNS:
            return list(DNS[host])
        raise OSError(f"test resolver: no such host {host!r}")


class GuardedTransport(httpx.AsyncBaseTransport):
    """Dials only the fake on 127.0.0.1; canned answers for declared dials; else a violation."""

    def __init__(self, net: NetLog) -> None:
        self._net = net
        self._real = httpx.AsyncHTTPTransport(trust_env=False, retries=0)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        port = url.port or (443 if url.scheme == "https" else 80)
        dial = Dial(
            ip=url.host,
            port=port,
            scheme=url.scheme,
            host_header=request.headers.get("host", ""),
            sni=request.extensions.get("sni_hostname"),
            path=url.raw_path.decode("ascii", "replace"),
        )
        self._net.dials.append(dial)
        if f"{url.host}:{port}" == self._net.fake_netloc == dial.host_header:
            return await self._real.handle_async_request(request)
        if (dial.ip, dial.host_header) in self._net.allowed and dial.scheme == "https":
            return _canned(dial)
        self._net.violations.append(f"asked to dial {dial}")
        raise httpx.ConnectError("the test transport refuses this destination", request=request)

    async def aclose(self) -> None:
        await self._real.aclose()


def _canned(dial: Dial) -> httpx.Response:
    """A public server's answer, made up: the address is never dialled for real."""
    if dial.path.startswith("/redirect-to-self"):
        location = f"https://{dial.host_header}/after-redirect"
        return httpx.Response(302, headers={"location": location})
    return httpx.Response(200, text="canned public answer")


class FakeServer:
    """A tiny HTTP/1.1 server on 127.0.0.1: the only real destination in this suite."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._bomb = gzip.compress(b"\0" * (16 * 1024 * 1024), compresslevel=9)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *lines = head.decode("latin-1").split("\r\n")
            _method, target, _version = request_line.split(" ", 2)
            headers = {}
            for line in lines:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length") or 0)
            if length:
                await reader.readexactly(length)
            status, extra, body = await self._route(target, headers)
            lines_out = [f"HTTP/1.1 {status} X", "connection: close"]
            lines_out += [f"{k}: {v}" for k, v in extra.items()]
            if body is not None:
                lines_out.append(f"content-length: {len(body)}")
            writer.write(("\r\n".join(lines_out) + "\r\n\r\n").encode("latin-1"))
            if body is not None:
                writer.write(body)
            else:  # no content-length: stream until the client gives up
                for _ in range(64):
                    writer.write(b"x" * (64 * 1024))
                    await writer.drain()
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            self._tasks.discard(task)

    async def _route(
        self, target: str, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes | None]:
        parts = urlsplit(target)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        tag = query.get("tag", "")
        self.hits[tag] += 1
        text = {"content-type": "text/plain"}
        if parts.path == "/ok":
            return 200, text, b"FAKE-OK"
        if parts.path == "/redirect":
            status = int(query.get("status", "302"))  # 307/308 keep method and body
            return status, {"location": query.get("to", "/ok")}, b""
        if parts.path == "/hop":
            left = int(query.get("n", "0"))
            if left > 0:
                return 302, {"location": f"/hop?n={left - 1}&tag={tag}"}, b""
            return 200, text, str(self.hits[tag]).encode()
        if parts.path == "/count":
            return 200, text, str(self.hits[tag] - 1).encode()
        if parts.path == "/headers":
            return 200, {"content-type": "application/json"}, json.dumps(headers).encode()
        if parts.path == "/large-ok":
            return 200, text, b"y" * 900_000
        if parts.path == "/big":
            return 200, text, b"x" * (3 * 1024 * 1024)
        if parts.path == "/big-stream":
            return 200, text, None
        if parts.path == "/gzip-bomb":
            return 200, {**text, "content-encoding": "gzip"}, self._bomb
        if parts.path == "/deep-json":
            deep = b"[" * 100_000 + b"]" * 100_000
            return 200, {"content-type": "application/json"}, deep
        if parts.path == "/punycode":
            return 200, {"content-type": "text/plain; charset=punycode"}, b"-" + b"a" * 450_000
        if parts.path == "/undefined-charset":
            return 200, {"content-type": "text/plain; charset=undefined"}, b"abc"
        if parts.path == "/slow":
            await asyncio.sleep(5)
            return 200, text, b"too late"
        return 404, text, b"not found"


# ------------------------------------------------------------------------------ fixtures


@dataclass
class Sandbox:
    runner: SandboxRunner
    net: NetLog
    fake: FakeServer

    def event(self, tenant: str) -> dict[str, Any]:
        base = f"http://127.0.0.1:{self.fake.port}"
        event: dict[str, Any] = {
            "tenant": {"id": tenant},
            "message_options": {
                "action": "second-factor-authentication",
                "code": "481516",
                "message_type": "sms",
                "recipient": "+14155550100",
                "text": "Your code is 481516",
            },
            "notification": {
                "message_type": "otp_verify",
                "delivery_method": "text",
                "recipient": "+14155550100",
                "code": "481516",
                "as_text": "Your code is 481516",
            },
            "fake": {
                "base": base,
                "port": self.fake.port,
                "closed_port": self.fake.port + 1,
                "run": uuid.uuid4().hex,
            },
        }
        if tenant == VICTIM:
            event["cache_marker"] = VICTIM_CACHE
        return event

    async def run(
        self,
        tenant: str,
        source: str | bytes,
        *,
        trigger: Trigger = "send-phone-message",
        secrets: dict[str, str] | None = None,
        name: str = "attack",
        budget: float | None = ATTACK_TIMEOUT,
    ) -> InvocationResult:
        return await self.runner.run(
            tenant=tenant,
            name=name,
            source=source,
            trigger=trigger,
            event=self.event(tenant),
            secrets=secrets,
            budget=budget,
        )

    async def victim_records(self) -> dict[str, Any]:
        result = await self.run(VICTIM, VICTIM_READ, secrets={"VICTIM_TOKEN": VICTIM_SECRET})
        assert result.outcome == "ok", result
        return dict(result.result)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sandbox() -> AsyncIterator[Sandbox]:
    fake = FakeServer()
    await fake.start()
    net = NetLog(fake_netloc=f"127.0.0.1:{fake.port}")
    runner = SandboxRunner(
        limits=LIMITS,
        policy=EgressPolicy(allow_http_hosts=frozenset({net.fake_netloc})),
        max_workers=8,
        resolver=net.resolve,
        transport_factory=lambda: GuardedTransport(net),
    )
    box = Sandbox(runner, net, fake)
    try:
        await runner.start()
        stored = await box.run(VICTIM, VICTIM_WRITE, secrets={"VICTIM_TOKEN": VICTIM_SECRET})
        assert stored.outcome == "ok", stored
        yield box
    finally:
        await runner.aclose()
        await fake.stop()


# ------------------------------------------------------------------------------ checks


def _returned_text(result: InvocationResult) -> str:
    """Everything an invocation hands back that tenant code could have shaped (the
    traceback's source lines are the tenant's own text, so only its frame lines count)."""
    parts = [
        json.dumps(result.result),
        result.error or "",
        *result.logs,
        *(line for line in result.traceback if line.startswith("File ")),
        *(issue.message for issue in result.compile_errors),
        json.dumps(result.notification),
    ]
    return "\n".join(parts)


def _check_no_escape(attack: Attack, result: InvocationResult) -> None:
    text = _returned_text(result)
    where = f"{attack.stem}: {result.outcome}: {text[:800]}"
    assert EVIDENCE not in text, f"evidence of escape: {where}"
    assert VICTIM_SECRET not in text, f"another tenant's secret leaked: {where}"
    assert VICTIM_CACHE not in text, f"another tenant's cache leaked: {where}"
    echoed = [result.error or "", *result.logs, *result.traceback, json.dumps(result.notification)]
    shown = [text[:200] for text in echoed if attack.secret in text]
    assert not shown, f"the action's own secret came back unmasked: {shown}"
    for line in result.traceback:
        if line.startswith("File "):
            assert line.startswith(f'File "<action:{attack.stem}>"'), f"host frame: {line}"


def _check_caps(result: InvocationResult) -> None:
    assert len(result.logs) <= LIMITS.max_log_lines + 1
    for line in result.logs:
        assert len(line.encode("utf-8", "replace")) <= LIMITS.max_log_line_bytes + 3
    assert len(result.error or "") <= MAX_ERROR_CHARS
    if result.outcome == "ok":
        assert len(json.dumps(result.result)) <= LIMITS.max_result_bytes
    if result.notification is not None:
        assert set(result.notification) <= {"action", "reason"}
        assert len(result.notification.get("reason", "")) <= MAX_REASON_CHARS


def _describe(result: InvocationResult) -> str:
    shown = result.model_dump(include={"outcome", "error", "result", "compile_errors"})
    return json.dumps(shown, default=str)[:1500]


# ------------------------------------------------------------------------------ tests


def test_corpus_covers_every_class() -> None:
    counts = Counter(attack.cls for attack in ATTACKS)
    assert len(ATTACKS) >= 60, counts
    assert set(counts) == set(CLASSES), counts
    stems = [attack.stem for attack in ATTACKS]
    assert len(stems) == len(set(stems))
    numbers = [attack.stem.split("_", 2)[:2] for attack in ATTACKS]
    assert len({tuple(n) for n in numbers}) == len(numbers), "duplicate <class>_<nn>"


@in_module_loop
@pytest.mark.parametrize("attack", ATTACKS, ids=[attack.stem for attack in ATTACKS])
async def test_attack(sandbox: Sandbox, attack: Attack) -> None:
    sandbox.net.begin(attack)
    source = attack.path.read_bytes()
    secrets = {"ATTACKER_TOKEN": attack.secret}
    budget = None if attack.expect == "memory_limit" else ATTACK_TIMEOUT
    try:
        for _ in range(attack.repeat):
            started = time.monotonic()
            result = await sandbox.run(
                attack.tenant,
                source,
                trigger=attack.trigger,
                secrets=secrets,
                name=attack.stem,
                budget=budget,
            )
            _check_no_escape(attack, result)
            assert sandbox.net.violations == [], "egress asked for a forbidden destination"
            assert result.outcome == attack.expect, _describe(result)
            _check_caps(result)
            # Generous: the kill at the deadline comes within ms idle, but a loaded 2-core CI
            # machine delays the supervisor's timer and reaping by hundreds of ms.
            assert time.monotonic() - started < (budget or LIMITS.timeout) + 3.0, "overshot"
        for ip, host in attack.dials:
            pinned = [d for d in sandbox.net.dials if d.host_header == host]
            assert pinned, f"expected a dial of {host} pinned to {ip}"
            assert {d.ip for d in pinned} == {ip}, f"{host} was dialled at {pinned}"
            assert all(d.sni == host for d in pinned), "TLS SNI must stay the host name"
            assert sandbox.net.lookups.count(host) >= 2, f"{host} was not looked up again"
    finally:
        sandbox.net.begin(None)

    canary = await sandbox.run(attack.tenant, CANARY, secrets=secrets, name="canary")
    assert (canary.outcome, canary.result) == ("ok", "alive"), _describe(canary)

    if attack.cross_tenant:
        records = await sandbox.victim_records()
        assert records == VICTIM_RECORDS, "the attack changed another tenant's cache"


@in_module_loop
async def test_event_secrets_are_the_callers_own(sandbox: Sandbox) -> None:
    source = """
def on_execute_send_phone_message(event, api):
    return {"secrets": event.secrets, "session": api.cache.get("session")}
"""
    own = {"B_TOKEN": "tenant-b-token-0001", "B_KEY": "tenant-b-key-0002"}
    result = await sandbox.run("atk-tenant-b", source, secrets=own)
    assert result.outcome == "ok", _describe(result)
    # masked: only the caller's own secret values are masked, so MASK means "exactly its own"
    assert result.result == {"secrets": dict.fromkeys(own, MASK), "session": None}
    victim = await sandbox.run(VICTIM, source, secrets={"VICTIM_TOKEN": VICTIM_SECRET})
    assert victim.result["secrets"] == {"VICTIM_TOKEN": MASK}
    assert victim.result["session"]["value"] == VICTIM_RECORDS["session"]


@in_module_loop
async def test_a_tenant_cannot_read_another_tenants_cache_by_guessing(sandbox: Sandbox) -> None:
    guesses = [
        *VICTIM_KEYS,
        *(f"{VICTIM}{sep}{key}" for key in VICTIM_KEYS for sep in (":", ".", "-", "_")),
        *(f"atk-{VICTIM}:{key}" for key in VICTIM_KEYS),
    ]
    source = f"""
def on_execute_send_phone_message(event, api):
    found = []
    for key in {guesses!r}:
        record = api.cache.get(key)
        if record is not None:
            found.append([key, record.value])
    return found
"""
    result = await sandbox.run("atk-cache-guesser", source)
    assert (result.outcome, result.result) == ("ok", []), _describe(result)
    assert await sandbox.victim_records() == VICTIM_RECORDS


@in_module_loop
async def test_the_network_guard_itself_refuses_a_public_destination(sandbox: Sandbox) -> None:
    """The guard is not vacuous: a request the policy allows (a public name) reaches the
    transport, which records it as a violation and refuses it, sending nothing."""
    source = """
def on_execute_send_phone_message(event, api):
    try:
        return api.http.get("https://public.example/").status
    except ApiError as exc:
        return exc.args[0]
"""
    sandbox.net.begin(None)
    try:
        result = await sandbox.run("atk-guard-selftest", source)
        dials = list(sandbox.net.dials)
        violations = list(sandbox.net.violations)
    finally:
        sandbox.net.begin(None)
    assert result.outcome == "ok", _describe(result)
    assert "could not connect" in result.result
    assert [(d.ip, d.port, d.host_header, d.sni) for d in dials] == [
        (PUBLIC_IP, 443, "public.example", "public.example")
    ]
    assert len(violations) == 1
