"""SandboxRunner.check: an upload is compiled in a worker of its tenant and none of it runs,
so the service refuses a bad script with its lines without executing tenant code itself."""

from __future__ import annotations

import asyncio
from pathlib import Path

from runtime.sandbox.host.runner import SandboxRunner

HANDLER = "def on_execute_send_phone_message(event, api):\n    return {'ok': True}\n"


def test_check_reports_lines_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    # a top level that would fail if it ran, and a handler that would write a file
    runs_if_executed = (
        "X = 1 // 0\n"
        "def on_execute_send_phone_message(event, api):\n"
        f"    open({str(marker)!r}, 'w')\n"
    )

    async def scenario() -> tuple[list[str], list[int | None], list[object]]:
        async with SandboxRunner(max_workers=2) as runner:
            good = await runner.check(
                tenant="t1", name="good", source=HANDLER, trigger="send-phone-message"
            )
            unexecuted = await runner.check(
                tenant="t1", name="div", source=runs_if_executed, trigger="send-phone-message"
            )
            bad = await runner.check(
                tenant="t1",
                name="bad",
                source=HANDLER + "\ndef helper(:\n    pass\n",
                trigger="send-phone-message",
            )
            wrong_trigger = await runner.check(
                tenant="t1", name="good", source=HANDLER, trigger="custom-phone-provider"
            )
        return (
            [i.message for i in wrong_trigger],
            [i.line for i in bad],
            [*good, *unexecuted],
        )

    wrong, bad_lines, clean = asyncio.run(scenario())
    assert clean == []
    assert bad_lines == [4]
    assert any("on_execute_custom_phone_provider" in m for m in wrong)
    assert not marker.exists()
