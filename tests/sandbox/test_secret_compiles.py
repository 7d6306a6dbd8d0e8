"""New sets of secrets compile on threads within their bound: two at a time in all, and one of
a tenant's at a time, even when their callers leave (the threads run on, and keep their place
until they end). Six cancelled action tests with new sets once took every thread of the
default pool, and another tenant waited 17.7 s."""

from __future__ import annotations

import asyncio
import threading

import pytest

import runtime.sandbox.host.runner as runner_module
from runtime.sandbox.host.runner import COMPILES, SandboxRunner


class HeldCompiles:
    """Stands in for the compile itself (our own, but seconds long): each call enters, says
    so, and waits for ``release``."""

    def __init__(self) -> None:
        self.entered: list[tuple[str, ...]] = []
        self.release = threading.Event()
        self._lock = threading.Lock()
        self._counts: dict[int, threading.Event] = {}

    def __call__(self, key: tuple[str, ...], _tenant: str | None = None) -> object:
        with self._lock:
            self.entered.append(key)
            event = self._counts.get(len(self.entered))
        if event is not None:
            event.set()
        self.release.wait(30)
        return object()

    def reached(self, count: int) -> threading.Event:
        with self._lock:
            event = self._counts.setdefault(count, threading.Event())
            if len(self.entered) >= count:
                event.set()
            return event


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> HeldCompiles:
    compiles = HeldCompiles()
    monkeypatch.setattr(runner_module, "compiled_forms", compiles)
    monkeypatch.setattr(runner_module, "forms_compiled", lambda key: False)
    return compiles


async def test_callers_that_leave_keep_their_place_until_their_thread_ends(
    held: HeldCompiles,
) -> None:
    runner = SandboxRunner(max_workers=1)  # not started: only its compiles are used
    first = [asyncio.ensure_future(runner._compile(f"t{n}", (f"k{n}",))) for n in range(2)]
    assert await asyncio.to_thread(held.reached(COMPILES).wait, 10)
    for task in first:
        task.cancel()
    await asyncio.gather(*first, return_exceptions=True)
    later = asyncio.ensure_future(runner._compile("t9", ("k9",)))
    assert not await asyncio.to_thread(held.reached(COMPILES + 1).wait, 1.0)  # no third thread
    held.release.set()
    await later
    assert len(held.entered) == COMPILES + 1


async def test_a_tenants_sets_compile_one_after_another(held: HeldCompiles) -> None:
    runner = SandboxRunner(max_workers=1)
    one = asyncio.ensure_future(runner._compile("acme", ("k1",)))
    assert await asyncio.to_thread(held.reached(1).wait, 10)
    two = asyncio.ensure_future(runner._compile("acme", ("k2",)))
    one.cancel()  # its caller leaves; its thread runs on
    await asyncio.gather(one, return_exceptions=True)
    three = asyncio.ensure_future(runner._compile("acme", ("k3",)))
    assert not await asyncio.to_thread(held.reached(2).wait, 1.0)  # the tenant's one thread
    held.release.set()
    results = await asyncio.gather(two, three)
    assert len(results) == 2
    assert len(held.entered) == 3


async def test_an_event_code_longer_than_a_code_is_refused_before_anything_runs() -> None:
    """The code is masked on the supervisor too, with work that grows with its length: a
    100,000-character code in a test payload froze the loop for 30 s (red team, pass 6). The
    event models bound it, and so does the runner, before any worker or compile."""
    from pydantic import ValidationError

    from runtime.events import MAX_EVENT_CODE, MessageOptions

    options = {"action": "enrollment", "message_type": "sms", "recipient": "+14155552671"}
    with pytest.raises(ValidationError, match="code"):
        MessageOptions.model_validate({**options, "text": "t", "code": "1" * 100_000})
    runner = SandboxRunner(max_workers=1)  # never started: refused first
    event = {"message_options": {**options, "code": "1" * (MAX_EVENT_CODE + 1)}}
    with pytest.raises(ValueError, match=f"the limit is {MAX_EVENT_CODE}"):
        await runner.run(tenant="t", name="a", source="", trigger="send-phone-message", event=event)
    assert not runner._started


async def test_an_event_code_of_other_characters_than_letters_and_digits_is_refused() -> None:
    """A code made of separators ('-' * 64) made the masker's code pattern backtrack for hours
    on a URL of dashes (red team, pass 7): an event's code is letters and digits, checked by
    the event models and by the runner before anything runs."""
    from pydantic import ValidationError

    from runtime.events import MessageOptions

    options = {"action": "enrollment", "message_type": "sms", "recipient": "+14155552671"}
    with pytest.raises(ValidationError, match="code"):
        MessageOptions.model_validate({**options, "text": "t", "code": "-" * 64})
    runner = SandboxRunner(max_workers=1)  # never started: refused first
    event = {"message_options": {**options, "code": "12 34-56"}}
    with pytest.raises(ValueError, match="letters and digits"):
        await runner.run(tenant="t", name="a", source="", trigger="send-phone-message", event=event)
    assert not runner._started
