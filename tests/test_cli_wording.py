"""Errors the CLI prints say what is wrong in the user's terms, not pydantic's.

Users write TOML, JSON and environment variables: a ``frozenset``, ``after validation`` or a
``(root)`` location means nothing to them. :mod:`runtime.wording` is the one translation table.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from typer.testing import CliRunner

from runtime.cli import app
from runtime.wording import plain, problems

LIBRARY_WORDS = ("Input should", "Value should", "List should", "after validation", "(root)")


@pytest.mark.parametrize(
    ("library", "ours"),
    [
        ("Input should be a valid frozenset", "should be a list, in brackets: [...]"),
        (
            "List should have at least 8 items after validation, not 3",
            "needs at least 8 entries (it has 3)",
        ),
        # "Value" is a secret (SecretStr): pydantic counts its characters as "items"
        (
            "Value should have at least 8 items after validation, not 3",
            "needs at least 8 characters (it has 3)",
        ),
        (
            "Value should have at most 64 items after validation, not 70",
            "takes at most 64 characters (it has 70)",
        ),
        ("Data should have at least 4 bytes", "needs at least 4 bytes"),
        ("List should have at most 2 items after validation, not 5", "takes at most 2 entries"),
        ("(root): Input should be a valid dictionary", "should be a table"),
        ("sender: Field required", "sender: missing (it is required)"),
        ("colour: Extra inputs are not permitted", "colour: not a known setting"),
        ("timeout: Input should be greater than or equal to 1", "timeout: should be at least 1"),
        ("fallback: Input should be 'never' or 'always'", "fallback: should be 'never' or"),
        ("x: Value error, not a host name", "x: not a host name"),
        ("tenant: String should have at least 1 character", "tenant: must not be empty"),
        ("Value should have at least 1 item after validation, not 0", "must not be empty"),
        ("List should have at most 1 item after validation, not 3", "takes at most 1 entry ("),
    ],
)
def test_each_library_phrase_is_translated(library: str, ours: str) -> None:
    said = plain(library)
    assert ours in said
    assert not any(word in said for word in LIBRARY_WORDS), said


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message_types: frozenset[str]
    numbers: list[int] = Field(default_factory=list, min_length=8)


def test_problems_formats_validation_errors_with_locations() -> None:
    with pytest.raises(ValidationError) as info:
        Model.model_validate({"message_types": "sms", "numbers": [1, 2, 3], "nope": 1})
    said = problems(info.value.errors(), prefix="tenants.acme")
    assert said == (
        "tenants.acme.message_types: should be a list, in brackets: [...]; "
        "tenants.acme.numbers: needs at least 8 entries (it has 3); "
        "tenants.acme.nope: not a known setting (check the spelling)"
    )
    with pytest.raises(ValidationError) as info:
        Model.model_validate(["not", "a", "table"])
    assert problems(info.value.errors()) == "should be a table"


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PHONE_ACTIONS_DATA_DIR", str(tmp_path / "data"))
    return CliRunner()


class Credentials(BaseModel):
    token: SecretStr = Field(min_length=8)


def test_a_secret_too_short_is_counted_in_characters() -> None:
    """A credential or token is text: "needs at least 8 entries" read as a list's length."""
    with pytest.raises(ValidationError) as info:
        Credentials.model_validate({"token": "abcde"})
    said = problems(info.value.errors(include_input=False), prefix="MYTEL")
    assert said == "MYTEL.token: needs at least 8 characters (it has 5)"


def test_a_setting_secret_too_short_names_the_variable_and_counts_characters(
    runner: CliRunner,
) -> None:
    result = runner.invoke(app, ["outbox"], env={"PHONE_ACTIONS_METRICS_TOKEN": "abcde"})
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [
        "error: invalid settings: PHONE_ACTIONS_METRICS_TOKEN: needs at least 16 characters "
        "(it has 5)"
    ]


def test_a_tenants_file_error_is_printed_in_toml_terms(runner: CliRunner, tmp_path: Path) -> None:
    tenants = tmp_path / "tenants.toml"
    tenants.write_text('[tenants.acme]\nprovider = "outbox"\nmessage_types = "sms"\n')
    result = runner.invoke(
        app,
        ["send", "--tenant", "acme", "--to", "+14155552671", "--code", "123456"],
        env={"PHONE_ACTIONS_TENANTS_FILE": str(tenants)},
    )
    assert result.exit_code == 2
    assert "tenants.acme.message_types: should be a list, in brackets: [...]" in result.output
    assert not any(word in result.output for word in LIBRARY_WORDS), result.output


def test_a_provider_setting_error_is_printed_in_the_users_terms(runner: CliRunner) -> None:
    result = runner.invoke(
        app,
        ["providers", "try", "mitto", "--to", "+447911123456", "--set", 'sender={"a": 1}'],
        env={"MITTO_API_KEY": "key-1234"},
    )
    assert result.exit_code == 2
    assert "settings of 'mitto': sender: should be text in quotes" in result.output
    assert not any(word in result.output for word in LIBRARY_WORDS), result.output


def test_a_provider_setting_error_about_the_whole_value_reads_as_one_sentence() -> None:
    """A model validator's error (no field of its own) is said without an empty location or
    pydantic's "Value error," (it read "provider 'twilio': : Value error, set from_number")."""
    from pydantic import ValidationError

    from plugins.twilio.provider import TwilioConfig
    from runtime.delivery.attempt import validation_problem
    from runtime.errors import ProviderError
    from runtime.provider_kit.models import validated

    try:
        TwilioConfig.model_validate({})
    except ValidationError as exc:
        said = str(validation_problem("twilio", "acme", exc))
    assert said.startswith("tenant 'acme', provider 'twilio': set from_number"), said
    with pytest.raises(ProviderError) as refused:
        validated(TwilioConfig, {}, label="twilio", what="config")
    for text in (said, str(refused.value)):
        assert ": :" not in text, text
        assert "Value error" not in text, text
        assert "(root)" not in text, text


SEND = ["send", "--tenant", "acme", "--to", "+14155552671", "--code", "123456"]


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (
            [*SEND, "--idempotency-key", ""],
            "error: idempotency_key: must be 1 to 255 characters",
        ),
        (
            [*SEND, "--idempotency-key", "k" * 1000],
            "error: idempotency_key: must be 1 to 255 characters",
        ),
        (
            ["send", "--tenant", "", "--to", "+14155552671", "--code", "123456"],
            "error: tenant: must be 1 to 64 characters",
        ),
        (
            ["send", "--tenant", "acme", "--to", "+14155552671", "--code", "12"],
            "error: code: must be 4 to 12 letters or digits",
        ),
        ([*SEND, "--channel", "fax"], "error: --channel: 'fax' is not one of 'sms', 'voice'."),
        (["outbox", "--last", "0"], "error: --last: should be at least 1"),
        (["outbox", "--last", "many"], "error: --last: should be a whole number"),
        (
            ["token", "create", "--tenant", "acme", "--scope", "read:actions", "--ttl", "0"],
            "error: --ttl: should be at least 1",
        ),
        (
            ["providers", "try", "outbox", "--to", "+14155552671", "--timeout", "-1"],
            "error: --timeout: should be at least 0.1",
        ),
    ],
)
def test_bad_option_values_are_one_line_in_the_users_terms(
    runner: CliRunner, tmp_path: Path, args: list[str], said: str
) -> None:
    """Typer checks option values with pydantic: its words (``Input should be greater than or
    equal to``, ``Value error,``, "1000 entries" for a text) are said as ours, naming the
    option (or the field), in one line and exit 2, without click's usage banner."""
    tenants = tmp_path / "tenants.toml"
    tenants.write_text('[tenants.acme]\nprovider = "outbox"\n')
    result = runner.invoke(app, args, env={"PHONE_ACTIONS_TENANTS_FILE": str(tenants)})
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [said]
    assert not any(word in result.stderr for word in (*LIBRARY_WORDS, "Value error", "items"))


def test_a_misspelt_scope_gets_the_closest_known_one(runner: CliRunner) -> None:
    """As an unknown provider or setting does: the list alone (28 scopes) hides the typo."""
    result = runner.invoke(app, ["token", "create", "--tenant", "acme", "--scope", "read:action"])
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(
        "error: --scope: unknown scope 'read:action' (did you mean 'read:actions'?); "
        "known scopes: read:actions, "
    ), line
    far = runner.invoke(app, ["token", "create", "--tenant", "acme", "--scope", "zzz"])
    assert "did you mean" not in far.stderr
