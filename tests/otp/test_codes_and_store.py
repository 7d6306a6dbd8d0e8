"""Codes and their rows: drawn from ``secrets``, kept as HMACs, expiring (a controllable
clock), single use, at most N attempts even when many threads check at once; on SQLite and
PostgreSQL."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from runtime.errors import NotFoundError
from runtime.otp import CodeHasher, OtpStore, new_code
from runtime.store.crypto import Keyring
from runtime.store.db import create_engine_for, migrate
from runtime.store.schema import phone_enrollments
from tests.conftest import service_url

KEY_A = "A" * 43 + "="  # base64 of 32 bytes
KEY_B = "B" * 43 + "="


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'otp.sqlite3'}"
    return service_url("PHONE_ACTIONS_TEST_POSTGRES_URL", "PostgreSQL")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(url: str, clock: Clock) -> Iterator[OtpStore]:
    engine = create_engine_for(url, timeout=10)
    migrate(engine)
    hasher = CodeHasher(Keyring.load(KEY_A, Path("/nonexistent")))
    yield OtpStore(engine, hasher, ttl=300, max_attempts=5, clock=clock)
    engine.dispose()


def enrollment(store: OtpStore, code: str = "123456", **extra: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "tenant": f"otp-{uuid.uuid4().hex[:10]}",
        "user_id": "auth0|1",
        "channel": "sms",
        "locale": "en",
        "code": code,
        "digest": "d",
        "idempotency_key": None,
        "phone_number": "+14155552671",
        **extra,
    }
    row, created = store.create("enrollment", **fields)  # type: ignore[arg-type]
    assert created
    return row


def test_codes_are_digits_of_the_asked_length_and_vary() -> None:
    codes = {new_code(6) for _ in range(200)}
    assert all(len(c) == 6 and c.isdigit() for c in codes)
    assert len(codes) > 190  # a million values: 200 draws almost never repeat
    assert len(new_code(8)) == 8


def test_the_table_holds_an_hmac_never_the_code(store: OtpStore) -> None:
    row = enrollment(store, "424242")
    with store.engine.connect() as conn:
        stored = conn.execute(
            select(phone_enrollments.c.code_hash).where(phone_enrollments.c.id == row["id"])
        ).scalar_one()
    assert "424242" not in stored
    other = CodeHasher(Keyring.load(KEY_B, Path("/nonexistent")))
    assert not other.matches(str(row["id"]), "424242", stored)  # needs the master key
    rotated = CodeHasher(Keyring.load(f"{KEY_B},{KEY_A}", Path("/nonexistent")))
    assert rotated.matches(str(row["id"]), "424242", stored)  # still checks after rotation


def test_a_right_code_works_once(store: OtpStore) -> None:
    row = enrollment(store)
    tenant, id = str(row["tenant"]), str(row["id"])
    assert store.check("enrollment", tenant, id, "123456").outcome == "ok"
    assert store.check("enrollment", tenant, id, "123456").outcome == "used"


def test_a_code_expires_after_its_ttl(store: OtpStore, clock: Clock) -> None:
    row = enrollment(store)
    tenant, id = str(row["tenant"]), str(row["id"])
    clock.now += timedelta(seconds=299)
    wrong = store.check("enrollment", tenant, id, "000000")
    assert (wrong.outcome, wrong.attempts_left) == ("wrong", 4)
    clock.now += timedelta(seconds=1)
    assert store.check("enrollment", tenant, id, "123456").outcome == "expired"


def test_the_sixth_attempt_is_refused_even_with_the_right_code(store: OtpStore) -> None:
    row = enrollment(store)
    tenant, id = str(row["tenant"]), str(row["id"])
    outcomes = [store.check("enrollment", tenant, id, "000000").outcome for _ in range(5)]
    assert outcomes == ["wrong"] * 5
    assert store.check("enrollment", tenant, id, "123456").outcome == "exhausted"


def test_concurrent_guesses_count_every_attempt_and_one_right_code_wins_once(
    store: OtpStore,
) -> None:
    """16 threads (on PostgreSQL 16 connections) at once: exactly 5 attempts are counted
    whatever the interleaving, and the right code sent by 4 of them succeeds once at most."""
    row = enrollment(store)
    tenant, id = str(row["tenant"]), str(row["id"])
    start = threading.Barrier(16)
    outcomes: list[str] = []
    lock = threading.Lock()

    def guess(code: str) -> None:
        start.wait()
        outcome = store.check("enrollment", tenant, id, code).outcome
        with lock:
            outcomes.append(outcome)

    codes = ["123456"] * 4 + [f"{n:06d}" for n in range(12)]
    threads = [threading.Thread(target=guess, args=(c,)) for c in codes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("ok") <= 1
    assert outcomes.count("ok") + outcomes.count("wrong") <= 5
    assert store.get("enrollment", tenant, id)["attempts"] <= 5


def test_the_same_key_finds_the_first_row(store: OtpStore) -> None:
    row = enrollment(store, idempotency_key="k")
    again, created = store.create(
        "enrollment",
        tenant=str(row["tenant"]),
        user_id="auth0|1",
        channel="sms",
        locale="en",
        code="999999",
        digest="d",
        idempotency_key="k",
        phone_number="+14155552671",
    )
    assert not created
    assert again["id"] == row["id"]
    assert store.check("enrollment", str(row["tenant"]), str(row["id"]), "999999").outcome == (
        "wrong"
    )


def test_a_challenge_goes_to_the_latest_confirmed_enrollment(store: OtpStore) -> None:
    row = enrollment(store, channel="voice")
    tenant = str(row["tenant"])
    with pytest.raises(NotFoundError, match="no confirmed phone enrollment"):
        store.create(
            "challenge", tenant=tenant, user_id="auth0|1", channel="", locale="en",
            code="1", digest="d", idempotency_key=None,
        )  # fmt: skip
    assert store.check("enrollment", tenant, str(row["id"]), "123456").outcome == "ok"
    challenge, _ = store.create(
        "challenge", tenant=tenant, user_id="auth0|1", channel="", locale="en",
        code="654321", digest="d", idempotency_key=None,
    )  # fmt: skip
    assert (challenge["enrollment_id"], challenge["channel"]) == (row["id"], "voice")
    assert store.phone_of(challenge) == "+14155552671"
    assert store.check("challenge", "another-tenant", str(challenge["id"]), "654321").outcome == (
        "not_found"
    )
    assert store.check("challenge", tenant, str(challenge["id"]), "654321").outcome == "ok"
