"""The provider kit (runtime.provider_kit): the error table's rules, the shared field types and
base models that every built-in provider relies on."""

from __future__ import annotations

import pytest
from pydantic import Field, ValidationError

from plugins.twilio import TwilioConfig, TwilioCredentials
from runtime.http import HttpResponse
from runtime.provider_kit import (
    AbsoluteUrl,
    BaseUrl,
    ErrorTable,
    OriginUrl,
    ProviderCredentials,
    ProviderSettings,
    SenderId,
    answered_error,
    is_success,
    refused,
)
from tests.providers.harness import all_cases

TABLE = ErrorTable(
    permanent={"bad_number", 21211},
    retryable={"internal"},
    throttled={"slow_down"},
    handed_off={"in_flight"},
)
FINAL = ErrorTable(permanent={"bad_number"}, final=True)


def answer(status: int) -> HttpResponse:
    return HttpResponse(status, {}, b"")


@pytest.mark.parametrize(
    ("table", "status", "code", "expected"),
    [
        # (code reported, retryable, handed off)
        (TABLE, 400, "bad_number", ("bad_number", False, False)),
        (TABLE, 500, "bad_number", ("bad_number", False, True)),  # a gateway's 500: may be queued
        (FINAL, 500, "bad_number", ("bad_number", False, False)),  # the provider's own last word
        (TABLE, 400, "internal", ("internal", True, False)),
        (TABLE, 502, "internal", ("internal", True, True)),
        (TABLE, 500, "slow_down", ("slow_down", True, False)),  # rate limited: never taken
        (TABLE, 409, "in_flight", ("in_flight", False, True)),
        (TABLE, 400, "unknown", ("unknown", False, False)),
        (TABLE, 429, "unknown", ("unknown", True, False)),
        (TABLE, 503, None, ("503", True, False)),
        (TABLE, 504, None, ("504", True, True)),
        (TABLE, 400, 21211, ("21211", False, False)),  # int codes compare as strings
    ],
)
def test_answered_error_reads_the_table_then_the_status(
    table: ErrorTable, status: int, code: str | int | None, expected: tuple[str, bool, bool]
) -> None:
    error = answered_error(answer(status), code, "no", table=table)
    assert (error.code, error.retryable, error.handed_off) == expected
    assert error.status == status


def test_a_refusal_is_never_handed_off_and_retried_as_the_table_says() -> None:
    assert refused("internal", "no", status=200, table=TABLE).retryable
    assert refused("slow_down", "no", status=200, table=TABLE).retryable
    assert not refused("bad_number", "no", status=200, table=TABLE).retryable
    assert not refused("unknown", "no", status=200, table=TABLE).retryable
    lenient = ErrorTable(permanent={"2"}, unknown_retryable=True)
    assert refused("9", "no", status=200, table=lenient).retryable
    assert not refused("2", "no", status=200, table=lenient).retryable
    assert not refused("2", "no", status=200, table=lenient).handed_off
    assert refused("x", "no", status=200, retryable=True).retryable  # the answer itself says


def test_a_code_cannot_be_both_permanent_and_retryable() -> None:
    with pytest.raises(ValueError, match="both permanent and retryable: 7"):
        ErrorTable(permanent={7}, retryable={"7"})


def test_is_success_is_exactly_2xx() -> None:
    assert [s for s in (199, 200, 202, 299, 300, 404) if is_success(s)] == [200, 202, 299]


class Settings(ProviderSettings):
    base_url: BaseUrl = "https://api.example.test/"
    origin: OriginUrl = "https://api.example.test"
    webhook: AbsoluteUrl | None = None
    sender: SenderId | None = None


class Secrets(ProviderCredentials):
    token: str = Field(min_length=1)


def test_the_url_types() -> None:
    settings = Settings(
        base_url="http://127.0.0.1:8080/v1/",
        origin="http://127.0.0.1:8080/",
        webhook="https://hooks.example.test/sms?tenant=acme",
    )
    assert settings.base_url == "http://127.0.0.1:8080/v1"  # paths are appended to it
    assert settings.origin == "http://127.0.0.1:8080"
    assert settings.webhook == "https://hooks.example.test/sms?tenant=acme"  # kept as written
    for field, value, message in [
        ("base_url", "ftp://example.test", "absolute http:// or https:// URL"),
        ("base_url", "/relative", "absolute http:// or https:// URL"),
        ("base_url", "https://example.test/?key=1", "query or a fragment"),
        ("origin", "https://example.test/api", r"scheme://host\[:port\] only"),
        ("webhook", "example.test/hook", "absolute http:// or https:// URL"),
    ]:
        with pytest.raises(ValidationError, match=message) as caught:
            Settings.model_validate({field: value})
        assert caught.value.errors()[0]["loc"] == (field,)


@pytest.mark.parametrize("sender", ["Acme", "Acme Bank 1", "12345", "+447911123456"])
def test_sender_ids_that_carriers_take(sender: str) -> None:
    assert Settings(sender=sender).sender == sender


@pytest.mark.parametrize("sender", ["", "AcmeBankLtd12", "Acme!", "+12", "+1234567890123456"])
def test_sender_ids_that_carriers_refuse(sender: str) -> None:
    with pytest.raises(ValidationError, match="sender"):
        Settings(sender=sender)


def test_the_base_models_refuse_unknown_fields_and_are_frozen() -> None:
    with pytest.raises(ValidationError, match="bsae_url"):
        Settings.model_validate({"bsae_url": "https://example.test"})
    secrets = Secrets(token="t0ken")
    with pytest.raises(ValidationError, match="frozen"):
        secrets.token = "other"  # type: ignore[misc]


def test_every_built_in_provider_builds_on_the_kit() -> None:
    models = [(case.name, case.make_provider()) for case in all_cases()]
    for name, provider in models:
        assert issubclass(provider.config_model, ProviderSettings), name
        assert issubclass(provider.credentials_model, ProviderCredentials), name
    assert issubclass(TwilioConfig, ProviderSettings)
    assert issubclass(TwilioCredentials, ProviderCredentials)
