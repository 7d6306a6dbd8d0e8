"""Tables stay readable at 80 columns: what a reader looks for (an id, a plugin or file name)
is folded onto a second line if it must be, never cut with an ellipsis."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from runtime.console import plugins_table, reports_table
from runtime.events import Attempt, DeliveryReport


def render(table: Table) -> str:
    console = Console(width=80, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(table)
    return console.export_text()


def test_plugin_names_are_never_cut() -> None:
    rows: list[dict[str, Any]] = [
        {
            "name": "plugins.custom_action",
            "hooks": ["register_providers"],
            "error": None,
            "providers": ["custom", "phone-message-hook"],
        },
        {
            "name": "acme-sms-with-a-long-name",
            "hooks": ["register_providers", "after_send"],
            "providers": [],
            "error": "skipped: ModuleNotFoundError: No module named 'acme_sms'",
        },
    ]
    text = render(plugins_table(rows))
    assert "…" not in text
    assert "plugins.custom_action" in text
    assert "acme-sms-with-a-long-name" in text
    assert max(len(line) for line in text.splitlines()) <= 80


def test_replayed_event_file_names_and_reasons_are_folded_not_cut() -> None:
    name = "spm_sms_verify_us_with_a_rather_long_file_name_2026-11-28.json"
    report = DeliveryReport.model_validate(
        {
            "id": "r1",
            "tenant": "acme",
            "recipient": "+14155552671",
            "channel": "sms",
            "purpose": "verification",
            "status": "failed",
            "reason": "fallback_failed",
            "detail": "the tenant's provider and the default sender both failed " * 2,
            "attempts": [Attempt(provider="twilio", outcome="failed", latency_ms=1.0).model_dump()],
        }
    )
    text = render(reports_table([(name, report), ("bad.json", "malformed JSON at line 5")]))
    assert "…" not in text
    first_column = "".join(
        line.split("│")[1].strip() for line in text.splitlines() if line.startswith("│")
    )
    assert name in first_column  # folded over lines, every character kept
    assert max(len(line) for line in text.splitlines()) <= 80
