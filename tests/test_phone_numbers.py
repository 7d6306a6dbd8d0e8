"""A number is never rewritten into another: strict characters, an explicit country."""

from __future__ import annotations

import random
from pathlib import Path

import phonenumbers
import pytest
from phonenumbers import PhoneNumberFormat, PhoneNumberType
from typer.testing import CliRunner

from runtime.cli import app
from runtime.errors import InvalidInputError
from runtime.events import PhoneMessageRequest
from runtime.phone_numbers import MAX_NUMBER_LENGTH, _normalise, normalise_e164

E164 = PhoneNumberFormat.E164


def request(recipient: str, default_country: str | None = None) -> PhoneMessageRequest:
    return PhoneMessageRequest.create(
        tenant="acme", recipient=recipient, code="123456", default_country=default_country
    )


def refused(recipient: str, default_country: str | None = None) -> InvalidInputError:
    with pytest.raises(InvalidInputError) as info:
        request(recipient, default_country)
    assert info.value.field == "recipient"
    return info.value


@pytest.mark.parametrize(
    "written",
    [
        "+1415abc2671",  # phonenumbers reads letters as keypad digits: +14152222671
        "+1 415 FLOWERS",
        "+14155552671 ext. 12",  # phonenumbers drops the extension
        "+14155552671 x12",
        "+14155552671#12",
        "+14155552671;ext=12",
        "tel:+14155552671",
        "+1 415 555 2671 / 2672",
        "+1+4155552671",
        "+1_415_555_2671",
    ],
)
def test_letters_extensions_and_other_characters_are_refused(written: str) -> None:
    assert "has " in str(refused(written))
    assert "has " in str(refused(written, "US"))


def test_dashed_national_number_needs_the_tenants_country() -> None:
    # Read as international, 203-484-9800 is an Egyptian number (+20 34849800).
    assert "no country code" in str(refused("203-484-9800"))
    assert request("203-484-9800", "US").recipient == "+12034849800"
    assert request("(203) 484-9800", "us").recipient == "+12034849800"


def test_legacy_hook_form_is_national_too() -> None:
    refused("1-808-555-5555")
    assert request("1-808-555-5555", "US").recipient == "+18085555555"


def test_international_prefixes_and_separators() -> None:
    for written in ("+1 (415) 555-2671", "+1.415.555.2671", "001 415 555 2671", " +14155552671 "):
        assert request(written).recipient == "+14155552671"
        assert request(written, "FR").recipient == "+14155552671"  # + or 00 wins


def in_script(text: str, zero: int) -> str:
    """``text`` with its ASCII digits written in the script whose zero is ``zero``."""
    return text.translate({ord("0") + d: zero + d for d in range(10)})


@pytest.mark.parametrize(
    ("written", "default_country"),
    [
        (in_script("+14155552671", 0x0660), None),  # Arabic-Indic
        (in_script("+14155552671", 0x06F0), None),  # Extended Arabic-Indic (Persian)
        (in_script("\uff0b1 415 555 2671", 0xFF10), None),  # full-width, plus included
        (in_script("+14155552671", 0x0966), None),  # Devanagari
        (in_script("(415) 555-2671", 0x0660), "US"),
    ],
)
def test_decimal_digits_of_any_script(written: str, default_country: str | None) -> None:
    assert request(written, default_country).recipient == "+14155552671"


def test_superscripts_are_not_decimal_digits() -> None:
    refused("+1415555267\u00b9")  # superscript one: a digit, but not a decimal one


def test_valid_us_numbers_without_plus_one_are_never_another_country() -> None:
    """Before: 1,149 of 11,408 valid US numbers typed without +1 became another country's."""
    rng = random.Random(20240611)
    numbers: list[tuple[str, str]] = []
    while len(numbers) < 2000:
        national = str(rng.randrange(2_000_000_000, 10_000_000_000))
        parsed = phonenumbers.parse(national, "US")
        if phonenumbers.is_valid_number(parsed):
            numbers.append((national, phonenumbers.format_number(parsed, E164)))
    for national, e164 in numbers:
        with pytest.raises(ValueError, match="no country code"):
            normalise_e164(national)
        assert normalise_e164(national, "US") == e164


def _examples() -> list[tuple[str, phonenumbers.PhoneNumber]]:
    found = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is not None:
                found.append((region, example))
    return found


EXAMPLES = _examples()


def test_every_regions_example_numbers_keep_their_number() -> None:
    """For each region's example numbers (phonenumbers' own): the national form with the
    right country gives the same E.164; without a country it is refused; the international
    form gives the same E.164 whatever the default country."""
    assert len({region for region, _ in EXAMPLES}) > 200
    others = ["US", "GB", "FR", "DE", "IN", "BR", "JP"]
    for region, example in EXAMPLES:
        e164 = phonenumbers.format_number(example, E164)
        national = phonenumbers.format_number(example, PhoneNumberFormat.NATIONAL)
        international = phonenumbers.format_number(example, PhoneNumberFormat.INTERNATIONAL)
        assert normalise_e164(national, region) == e164, (region, national)
        with pytest.raises(ValueError, match="no country code"):
            normalise_e164(national)
        for default in [None, region, *others]:
            assert normalise_e164(international, default) == e164, (region, international)
            assert normalise_e164(e164, default) == e164


def test_national_number_in_another_country_is_refused_or_that_countrys() -> None:
    """A national form read in the wrong country is never silently the first country's."""
    uk = "020 7946 0958"
    assert normalise_e164(uk, "GB") == "+442079460958"
    for other in ("US", "FR", "DE"):
        try:
            result = normalise_e164(uk, other)
        except ValueError:
            continue
        assert phonenumbers.region_code_for_number(phonenumbers.parse(result)) == other


def test_cache_is_keyed_by_the_default_country_and_bounded() -> None:
    assert normalise_e164("0612345678", "FR") == "+33612345678"
    assert normalise_e164("0612345678", "NL") == "+31612345678"
    assert _normalise.cache_info().maxsize == 65536
    before = _normalise.cache_info().currsize
    with pytest.raises(ValueError, match=f"at most {MAX_NUMBER_LENGTH} characters"):
        normalise_e164("+1" + "5" * MAX_NUMBER_LENGTH)
    assert _normalise.cache_info().currsize == before  # refused before it reached the cache


@pytest.mark.parametrize("country", ["XX", "USA", "u", "1A", ""])
def test_bad_default_country_is_named(country: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        request("4155552671", country)
    assert info.value.field == "default_country"


def test_empty_and_digitless_recipients() -> None:
    for written in ("", "   ", "+", "()-"):
        refused(written)


LIBRARY_PHRASES = ("Could not interpret", "did not seem", "The string supplied", "IDD", "(0)")


@pytest.mark.parametrize(
    ("written", "default_country", "why"),
    [
        ("+999123", None, "has no country calling code after + (or 00)"),
        ("00999123", None, "has no country calling code after + (or 00)"),
        ("011999123456", "US", "has no country calling code after its international prefix"),
        ("+1", None, "is too short to be a phone number"),
        ("+441", None, "is too short to be a phone number"),
        ("0119", "US", "is too short to be a phone number"),
        ("+" + "1" * 30, None, "is too long to be a phone number"),
    ],
)
def test_numbers_phonenumbers_cannot_read_are_refused_in_our_words(
    written: str, default_country: str | None, why: str
) -> None:
    """Not phonenumbers' ``(0) Could not interpret numbers after plus-sign.``; never the
    number itself."""
    said = str(refused(written, default_country))
    assert why in said, said
    assert not any(phrase in said for phrase in LIBRARY_PHRASES), said
    assert written.lstrip("+") not in said


def test_a_number_phonenumbers_cannot_read_is_one_line_from_send(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PHONE_ACTIONS_DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "tenants.toml").write_text('[tenants.acme]\nprovider = "outbox"\n')
    result = CliRunner().invoke(
        app,
        ["send", "--tenant", "acme", "--to", "+999123", "--code", "123456"],
        env={"PHONE_ACTIONS_TENANTS_FILE": str(tmp_path / "tenants.toml")},
    )
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [
        "error: recipient: has no country calling code after + (or 00): the digits there must "
        "begin with one, such as 1 (US) or 44 (UK)"
    ]
