"""The outbox in the runtime database: what it stores, `phone-actions outbox` lists; a store
that cannot answer fails the attempt (not handed off) instead of hanging."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from plugins.outbox import OutboxProvider
from runtime.cli import app
from runtime.errors import ProviderError
from runtime.providers import PhoneMessage
from tests.store.conftest import sqlite_url
from tests.store.faults import sqlite_write_lock


def message(tenant: str = "acme", channel: str = "sms") -> PhoneMessage:
    return PhoneMessage(
        id="m1",
        tenant=tenant,
        recipient="+14155552671",
        channel=channel,  # type: ignore[arg-type]
        purpose="verification",
        locale="en",
        code="123456",
        text="123456 is your code",
        timeout=5,
    )


async def test_what_the_outbox_stores_the_cli_lists_from_the_runtime_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outbox = OutboxProvider(sqlite_url(tmp_path), cap=1)
    receipt = await outbox.send(message(), None, None)
    with pytest.raises(ProviderError) as refused:
        await outbox.send(message(), None, None)
    await outbox.aclose()
    assert receipt.status == "stored"
    assert (refused.value.code, refused.value.handed_off) == ("outbox_cap_reached", False)

    monkeypatch.setenv("PHONE_ACTIONS_DATA_DIR", str(tmp_path / "data"))
    listed = CliRunner().invoke(app, ["outbox", "--json"])
    assert listed.exit_code == 0, listed.output
    [row] = [json.loads(line) for line in listed.output.splitlines()]
    assert (row["id"], row["tenant"]) == (receipt.message_id, "acme")
    assert row["text"] == "123456 is your code"


def test_listing_an_outbox_that_never_stored_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PHONE_ACTIONS_DATA_DIR", str(tmp_path / "data"))
    listed = CliRunner().invoke(app, ["outbox"])
    assert listed.exit_code == 0, listed.output
    assert not (tmp_path / "data").exists()


async def test_a_locked_database_fails_the_outbox_attempt_without_hand_off(tmp_path: Path) -> None:
    outbox = OutboxProvider(sqlite_url(tmp_path), timeout=0.5)
    await outbox.send(message(), None, None)  # migrated, working
    try:
        locked = sqlite_write_lock(tmp_path / "data" / "phone-actions.sqlite3")
        with locked, pytest.raises(ProviderError) as failed:
            await outbox.send(message(), None, None)
    finally:
        await outbox.aclose()
    error = failed.value
    assert (error.code, error.retryable, error.handed_off) == ("store_unavailable", True, False)
    assert "database is locked" in error.message
