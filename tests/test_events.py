"""Recorded Auth0 trigger events (tests/events) replayed through ``runtime.events``.

Covers: which model each file becomes, E.164 normalisation, the §2.5 mapping between
``send-phone-message`` and ``custom-phone-provider`` (both ways), unknown fields kept,
``PhoneMessageRequest.from_event`` / ``create``, the code kept out of ``repr``, and every broken
file in tests/events/invalid raising ``InvalidInputError`` that names the field.
"""

from __future__ import annotations

import json
import re
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

import phonenumbers
import pytest

from runtime.errors import InvalidInputError
from runtime.events import (
    CustomPhoneProviderEvent,
    MessageOptions,
    Notification,
    PhoneMessageRequest,
    SendPhoneMessageEvent,
    TriggerEvent,
    parse_event,
)
from runtime.phone_numbers import country_of, normalise_e164
from tests.support.events import EVENTS_DIR, event_files, load_event

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")

VALID = event_files()
SPM = event_files("spm_*.json")
CPP = event_files("cpp_*.json")
INVALID = event_files("invalid/*.json")

ACTION_TO_MESSAGE_TYPE = {"enrollment": "otp_enroll", "second-factor-authentication": "otp_verify"}
CHANNEL_TO_DELIVERY = {"sms": "text", "voice": "voice"}
PURPOSE_OF_ACTION = {"enrollment": "enrollment", "second-factor-authentication": "verification"}
PURPOSE_OF_MESSAGE_TYPE = {"otp_enroll": "enrollment", "otp_verify": "verification"}


def _params(paths: list[Path]) -> list[Any]:
    return [pytest.param(p, id=p.stem) for p in paths]


def _raw(path: Path) -> dict[str, Any]:
    return load_event(path.name)


def _parse(path: Path) -> TriggerEvent:
    return parse_event(path.read_text(encoding="utf-8"))


def _spm(path: Path) -> SendPhoneMessageEvent:
    event = _parse(path)
    assert isinstance(event, SendPhoneMessageEvent)
    return event


def _cpp(path: Path) -> CustomPhoneProviderEvent:
    event = _parse(path)
    assert isinstance(event, CustomPhoneProviderEvent)
    return event


def _code_of(raw: dict[str, Any]) -> str:
    payload = raw.get("message_options") or raw["notification"]
    code = payload["code"]
    assert isinstance(code, str)
    return code


def _same_locale(a: str | None, b: str | None) -> bool:
    return (
        a is not None
        and b is not None
        and a.replace("_", "-").lower() == b.replace("_", "-").lower()
    )


def _assert_contains(actual: Any, expected: Any, where: str = "event") -> None:
    """Everything in ``expected`` (recorded JSON) is in ``actual`` (a model dump), recursively."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: expected an object, got {actual!r}"
        for key, value in expected.items():
            assert key in actual, f"{where}.{key} was lost"
            _assert_contains(actual[key], value, f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{where}: expected a list, got {actual!r}"
        assert len(actual) == len(expected), f"{where}: length changed"
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            _assert_contains(a, e, f"{where}[{i}]")
    else:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"


# --------------------------------------------------------------------------- the corpus itself


def test_corpus_covers_both_triggers_channels_purposes_tenants_and_countries() -> None:
    assert len(VALID) >= 10
    assert {p.name for p in VALID} == {p.name for p in SPM} | {p.name for p in CPP}
    combos = set()
    tenants: Counter[str] = Counter()
    countries = set()
    for path in VALID:
        raw = _raw(path)
        tenants[raw["tenant"]["id"]] += 1
        if "message_options" in raw:
            mo = raw["message_options"]
            combos.add(("spm", mo["message_type"], PURPOSE_OF_ACTION[mo["action"]]))
            countries.add(country_of(normalise_e164(mo["recipient"])))
        else:
            n = raw["notification"]
            combos.add(("cpp", n["delivery_method"], PURPOSE_OF_MESSAGE_TYPE[n["message_type"]]))
            countries.add(country_of(normalise_e164(n["recipient"])))
    for trigger, channels in (("spm", ("sms", "voice")), ("cpp", ("text", "voice"))):
        for channel in channels:
            assert {p for t, c, p in combos if (t, c) == (trigger, channel)}, (trigger, channel)
        assert {p for t, _, p in combos if t == trigger} == {"enrollment", "verification"}
    assert tenants == {"acme": len(VALID) - 2, "globex": 2}
    assert len(countries - {None}) >= 6


@pytest.mark.parametrize("path", _params(VALID))
def test_voice_text_spells_the_code_digit_by_digit(path: Path) -> None:
    raw = _raw(path)
    code = _code_of(raw)
    dotted = ". ".join(code)
    if "notification" in raw:
        assert raw["notification"]["as_voice"].endswith(dotted)
        assert code in raw["notification"]["as_text"]
    elif raw["message_options"]["message_type"] == "voice":
        assert raw["message_options"]["text"].endswith(dotted)
    else:
        assert code in raw["message_options"]["text"]


def test_load_event_returns_a_fresh_copy() -> None:
    first = load_event("spm_sms_verify_us")
    first["tenant"]["id"] = "changed"
    assert load_event("spm_sms_verify_us.json")["tenant"]["id"] == "acme"
    assert EVENTS_DIR.joinpath("spm_sms_verify_us.json").is_file()


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize("path", _params(VALID))
def test_event_becomes_the_model_of_its_trigger(path: Path) -> None:
    event = _parse(path)
    if path.name.startswith("spm_"):
        assert type(event) is SendPhoneMessageEvent
        assert event.trigger == "send-phone-message"
        assert isinstance(event.message_options, MessageOptions)
    else:
        assert type(event) is CustomPhoneProviderEvent
        assert event.trigger == "custom-phone-provider"
        assert isinstance(event.notification, Notification)
    assert event.tenant.id == _raw(path)["tenant"]["id"]


@pytest.mark.parametrize("path", _params(VALID))
def test_str_bytes_and_dict_parse_alike(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    from_str = parse_event(text)
    assert parse_event(text.encode("utf-8")) == from_str
    assert parse_event(json.loads(text)) == from_str


@pytest.mark.parametrize("path", _params(VALID))
def test_recipient_is_normalised_to_e164(path: Path) -> None:
    raw = _raw(path)
    event = _parse(path)
    if isinstance(event, SendPhoneMessageEvent):
        recorded, parsed = raw["message_options"]["recipient"], event.message_options.recipient
    else:
        recorded, parsed = raw["notification"]["recipient"], event.notification.recipient
    assert E164.match(parsed)
    number = phonenumbers.parse(parsed, None)
    assert phonenumbers.is_valid_number(number)
    assert parsed == phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    assert re.sub(r"\D", "", recorded) == parsed[1:]


def test_recorded_non_e164_recipient_is_normalised() -> None:
    raw = load_event("spm_sms_enroll_uk")
    assert raw["message_options"]["recipient"] == "+44 7911 123456"
    event = parse_event(raw)
    assert isinstance(event, SendPhoneMessageEvent)
    assert event.message_options.recipient == "+447911123456"
    assert event.to_custom_phone_provider().notification.recipient == "+447911123456"
    assert PhoneMessageRequest.from_event(event).recipient == "+447911123456"


@pytest.mark.parametrize(
    ("written", "e164"),
    [
        ("+1 (202) 555-0123", "+12025550123"),
        ("0033 6 12 34 56 78", "+33612345678"),
        ("+49 151 2345 6789", "+4915123456789"),
        ("  +61 412 345 678 ", "+61412345678"),
    ],
)
def test_other_written_forms_are_normalised(written: str, e164: str) -> None:
    raw = load_event("spm_sms_verify_us")
    raw["message_options"]["recipient"] = written
    event = parse_event(raw)
    assert isinstance(event, SendPhoneMessageEvent)
    assert event.message_options.recipient == e164


def test_legacy_hook_form_without_plus_is_refused() -> None:
    """``1-415-555-2671`` (the legacy Hook's form) names no country: it is not guessed."""
    raw = load_event("spm_sms_verify_us")
    raw["message_options"]["recipient"] = "1-415-555-2671"
    with pytest.raises(InvalidInputError, match="no country code") as info:
        parse_event(raw)
    assert info.value.field == "message_options.recipient"


@pytest.mark.parametrize("path", _params(VALID))
def test_nothing_recorded_is_lost(path: Path) -> None:
    raw = _raw(path)
    event = _parse(path)
    payload = "message_options" if "message_options" in raw else "notification"
    raw[payload]["recipient"] = normalise_e164(raw[payload]["recipient"])
    _assert_contains(event.model_dump(mode="json", by_alias=True), raw)


def test_unknown_fields_are_kept_everywhere() -> None:
    raw = load_event("spm_sms_verify_us")
    raw["x_recorded_by"] = "replay-tool"
    raw["tenant"]["home_url"] = "https://www.acme.example"
    raw["client"]["x_client_flag"] = True
    raw["request"]["query"] = {"ui_locales": "en"}
    raw["request"]["geoip"]["accuracyRadius"] = 20
    raw["transaction"]["locale"] = "en"
    raw["message_options"]["language"] = "en"
    raw["user"]["login_count"] = 7
    event = parse_event(raw)
    assert isinstance(event, SendPhoneMessageEvent)
    assert event.model_extra == {"x_recorded_by": "replay-tool"}
    assert event.tenant.model_extra == {"home_url": "https://www.acme.example"}
    assert event.client.model_extra == {"x_client_flag": True}
    assert event.request.model_extra == {"query": {"ui_locales": "en"}}
    assert event.request.geoip.model_extra == {"accuracyRadius": 20}
    assert event.transaction is not None
    assert event.transaction.model_extra == {"locale": "en"}
    assert event.message_options.model_extra == {"language": "en"}
    assert event.user["login_count"] == 7

    # ... and through the conversion to custom-phone-provider and back
    for converted in (
        event.to_custom_phone_provider(),
        event.to_custom_phone_provider().to_send_phone_message(),
    ):
        dumped = converted.model_dump(mode="json", by_alias=True)
        assert dumped["x_recorded_by"] == "replay-tool"
        assert dumped["tenant"]["home_url"] == "https://www.acme.example"
        assert dumped["client"]["x_client_flag"] is True
        assert dumped["request"]["query"] == {"ui_locales": "en"}
        assert dumped["request"]["geoip"]["accuracyRadius"] == 20
        assert dumped["transaction"]["locale"] == "en"
        assert dumped["user"]["login_count"] == 7


def test_documented_but_untyped_fields_are_kept() -> None:
    event = _spm(EVENTS_DIR / "spm_sms_verify_in_legacy_client.json")
    raw = load_event("spm_sms_verify_in_legacy_client")
    assert event.model_extra is not None
    assert event.model_extra["security_context"] == raw["security_context"]
    assert event.custom_domain == raw["custom_domain"]
    cpp = event.to_custom_phone_provider()
    assert cpp.model_extra is not None
    assert cpp.model_extra["security_context"] == raw["security_context"]
    assert cpp.custom_domain == raw["custom_domain"]


def test_unrecognised_object_names_the_missing_payload() -> None:
    raw = load_event("spm_sms_verify_us")
    del raw["message_options"]
    with pytest.raises(InvalidInputError) as info:
        parse_event(raw)
    assert info.value.field == "message_options"
    assert "notification" in str(info.value)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda e: e.pop("tenant"), "tenant"),
        (lambda e: e["tenant"].update(id=""), "tenant.id"),
        (lambda e: e["message_options"].update(action="login"), "message_options.action"),
        (lambda e: e["message_options"].pop("text"), "message_options.text"),
        (lambda e: e["secrets"].update(N=1), "secrets.N"),
    ],
    ids=["no-tenant", "empty-tenant-id", "unknown-action", "no-text", "non-string-secret"],
)
def test_invalid_spm_fields_are_named(change: Any, field: str) -> None:
    raw = load_event("spm_sms_verify_us")
    change(raw)
    with pytest.raises(InvalidInputError) as info:
        parse_event(raw)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}:")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda n: n.update(delivery_method="sms"), "notification.delivery_method"),
        (lambda n: n.update(message_type="otp"), "notification.message_type"),
        (lambda n: n.update(recipient="+1555"), "notification.recipient"),
        (lambda n: n.pop("as_voice"), "notification.as_voice"),
    ],
    ids=["sms-is-not-a-delivery-method", "otp-type", "short-recipient", "no-as-voice"],
)
def test_invalid_cpp_fields_are_named(change: Any, field: str) -> None:
    raw = load_event("cpp_text_verify_au")
    change(raw["notification"])
    with pytest.raises(InvalidInputError) as info:
        parse_event(raw)
    assert info.value.field == field
    assert field in str(info.value)


# --------------------------------------------------------------------------- §2.5 mapping


@pytest.mark.parametrize("path", _params(SPM))
def test_spm_to_cpp_follows_the_documented_mapping(path: Path) -> None:
    raw = _raw(path)
    event = _spm(path)
    cpp = event.to_custom_phone_provider()
    mo, n = event.message_options, cpp.notification

    assert n.message_type == ACTION_TO_MESSAGE_TYPE[mo.action]
    assert n.delivery_method == CHANNEL_TO_DELIVERY[mo.message_type]
    assert n.recipient == mo.recipient
    assert n.code == mo.code == raw["message_options"]["code"]
    assert n.as_text == mo.text
    assert n.as_voice == mo.text
    assert n.locale == raw["request"]["language"]

    # user.identities removed, everything else about the user kept
    assert raw["user"]["identities"]
    assert "identities" not in cpp.user
    assert cpp.user == {k: v for k, v in raw["user"].items() if k != "identities"}
    assert event.user["identities"] == raw["user"]["identities"]  # the source is untouched

    # client.client_metadata -> client.metadata
    client = cpp.model_dump(mode="json")["client"]
    assert "client_metadata" not in client
    expected_metadata = raw["client"].get("client_metadata", raw["client"].get("metadata", {}))
    assert client["metadata"] == expected_metadata
    assert client["client_id"] == raw["client"]["client_id"]

    assert cpp.tenant.id == raw["tenant"]["id"]
    assert cpp.secrets == raw["secrets"]
    assert cpp.transaction is not None
    assert cpp.transaction.correlation_id == raw["transaction"]["correlation_id"]
    assert cpp.request.geoip.countryCode == raw["request"]["geoip"]["countryCode"]


def test_client_metadata_of_the_legacy_shape_becomes_metadata() -> None:
    event = _spm(EVENTS_DIR / "spm_sms_verify_in_legacy_client.json")
    assert event.client.metadata == {}
    cpp = event.to_custom_phone_provider()
    assert cpp.client.metadata == {"legacy": "true", "owner": "india-team"}
    assert "client_metadata" not in (cpp.client.model_extra or {})


@pytest.mark.parametrize("path", _params(SPM))
def test_spm_cpp_spm_round_trip_keeps_the_message(path: Path) -> None:
    event = _spm(path)
    back = event.to_custom_phone_provider().to_send_phone_message()
    before, after = event.message_options, back.message_options
    assert after.action == before.action
    assert after.code == before.code
    assert after.message_type == before.message_type
    assert after.recipient == before.recipient
    if before.message_type == "sms":
        assert after.text == before.text
    assert back.tenant == event.tenant
    assert back.request == event.request


@pytest.mark.parametrize("path", _params(CPP))
def test_cpp_to_spm_follows_the_documented_mapping(path: Path) -> None:
    raw = _raw(path)
    event = _cpp(path)
    spm = event.to_send_phone_message()
    n, mo = event.notification, spm.message_options
    assert ACTION_TO_MESSAGE_TYPE[mo.action] == n.message_type
    assert CHANNEL_TO_DELIVERY[mo.message_type] == n.delivery_method
    assert mo.recipient == n.recipient
    assert mo.code == raw["notification"]["code"]
    assert mo.text == (n.as_text if n.delivery_method == "text" else n.as_voice)
    assert spm.tenant.id == raw["tenant"]["id"]
    assert spm.user == raw["user"]
    # connection and organization have no place in send-phone-message
    dumped = spm.model_dump(mode="json")
    assert "connection" not in dumped
    assert "organization" not in dumped


@pytest.mark.parametrize("path", _params(CPP))
def test_cpp_spm_cpp_round_trip_keeps_the_notification(path: Path) -> None:
    event = _cpp(path)
    back = event.to_send_phone_message().to_custom_phone_provider()
    before, after = event.notification, back.notification
    assert after.message_type == before.message_type
    assert after.delivery_method == before.delivery_method
    assert after.recipient == before.recipient
    assert after.code == before.code
    if before.delivery_method == "text":
        assert after.as_text == before.as_text
    else:
        assert after.as_voice == before.as_voice


def test_otp_notification_without_code_has_no_spm_equivalent() -> None:
    raw = load_event("cpp_text_verify_au")
    del raw["notification"]["code"]
    event = parse_event(raw)  # the code is optional in custom-phone-provider
    assert isinstance(event, CustomPhoneProviderEvent)
    with pytest.raises(InvalidInputError) as info:
        event.to_send_phone_message()
    assert info.value.field == "notification.code"
    with pytest.raises(InvalidInputError):
        PhoneMessageRequest.from_event(event)


# --------------------------------------------------------------------------- PhoneMessageRequest


@pytest.mark.parametrize("path", _params(SPM))
def test_request_from_spm_event(path: Path) -> None:
    raw = _raw(path)
    event = _spm(path)
    request = PhoneMessageRequest.from_event(event, idempotency_key="replay-1")
    mo = event.message_options
    assert request.tenant == raw["tenant"]["id"]
    assert request.recipient == mo.recipient
    assert request.code == raw["message_options"]["code"]
    assert request.channel == raw["message_options"]["message_type"]
    assert request.purpose == PURPOSE_OF_ACTION[raw["message_options"]["action"]]
    assert request.locale == raw["request"]["language"]
    assert request.text == raw["message_options"]["text"]
    assert request.user == raw["user"]
    assert request.client == event.client
    assert request.request == event.request
    assert request.idempotency_key == "replay-1"


@pytest.mark.parametrize("path", _params(CPP))
def test_request_from_cpp_event(path: Path) -> None:
    raw = _raw(path)
    event = _cpp(path)
    request = PhoneMessageRequest.from_event(event)
    n = raw["notification"]
    assert request.tenant == raw["tenant"]["id"]
    assert request.recipient == normalise_e164(n["recipient"])
    assert request.code == n["code"]
    assert request.channel == {"text": "sms", "voice": "voice"}[n["delivery_method"]]
    assert request.purpose == PURPOSE_OF_MESSAGE_TYPE[n["message_type"]]
    assert request.text == (n["as_text"] if n["delivery_method"] == "text" else n["as_voice"])
    if raw["request"].get("language"):
        assert _same_locale(request.locale, raw["request"]["language"]) or _same_locale(
            request.locale, n["locale"]
        )
    assert request.user == raw["user"]


def test_request_from_cpp_event_keeps_the_locale_the_text_was_rendered_in() -> None:
    event = _cpp(EVENTS_DIR / "cpp_text_verify_fr_no_request_language.json")
    assert event.request.language is None
    assert event.notification.locale == "fr_FR"
    request = PhoneMessageRequest.from_event(event)
    assert _same_locale(request.locale, "fr-FR")


def test_request_from_event_tenant_override() -> None:
    event = _spm(EVENTS_DIR / "spm_sms_verify_br_globex.json")
    assert PhoneMessageRequest.from_event(event).tenant == "globex"
    assert PhoneMessageRequest.from_event(event, tenant="acme").tenant == "acme"


def test_create_accepts_a_good_request_and_normalises() -> None:
    request = PhoneMessageRequest.create(
        tenant="acme", recipient="+44 7911 123456", code="739204", channel="voice"
    )
    assert request.recipient == "+447911123456"
    assert request.channel == "voice"
    assert request.purpose == "verification"
    assert request.locale == "en"
    assert "739204" not in repr(request)


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"code": "123"}, "code"),
        ({"code": "48-1516"}, "code"),
        ({"code": "4815 16"}, "code"),
        ({"code": "1234567890123"}, "code"),
        ({"code": ""}, "code"),
        ({"tenant": ""}, "tenant"),
        ({"tenant": "t" * 65}, "tenant"),
        ({"channel": "fax"}, "channel"),
        ({"channel": "text"}, "channel"),
        ({"recipient": "+1555"}, "recipient"),
        ({"purpose": "login"}, "purpose"),
        ({"locale": "e"}, "locale"),
        ({"idempotency_key": ""}, "idempotency_key"),
        ({"unexpected": 1}, "unexpected"),
    ],
    ids=lambda v: repr(v) if isinstance(v, dict) else v,
)
def test_create_names_the_bad_field(bad: dict[str, Any], field: str) -> None:
    fields: dict[str, Any] = {"tenant": "acme", "recipient": "+14155552671", "code": "481516"}
    fields.update(bad)
    with pytest.raises(InvalidInputError) as info:
        PhoneMessageRequest.create(**fields)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}:")
    if field == "code" and bad["code"]:
        assert bad["code"] not in str(info.value)


def test_create_names_every_bad_field() -> None:
    with pytest.raises(InvalidInputError) as info:
        PhoneMessageRequest.create(tenant="", recipient="+14155552671", code="1", channel="fax")
    message = str(info.value)
    assert info.value.field == "tenant"
    for field in ("tenant", "code", "channel"):
        assert f"{field}:" in message


def test_create_requires_tenant_recipient_and_code() -> None:
    with pytest.raises(InvalidInputError) as info:
        PhoneMessageRequest.create()
    for field in ("tenant", "recipient", "code"):
        assert f"{field}: Field required" in str(info.value)


# --------------------------------------------------------------------------- the code stays secret


@pytest.mark.parametrize("path", _params(VALID))
def test_code_and_secrets_never_in_repr(path: Path) -> None:
    raw = _raw(path)
    code = _code_of(raw)
    event = _parse(path)
    options = event.message_options if isinstance(event, SendPhoneMessageEvent) else None
    notification = event.notification if isinstance(event, CustomPhoneProviderEvent) else None
    converted: TriggerEvent = (
        event.to_custom_phone_provider()
        if isinstance(event, SendPhoneMessageEvent)
        else event.to_send_phone_message()
    )
    request = PhoneMessageRequest.from_event(event)
    shown = [repr(event), str(event), repr(converted), repr(request), str(request)]
    shown += [repr(options), repr(notification)]
    shown += [
        repr(
            converted.message_options
            if isinstance(converted, SendPhoneMessageEvent)
            else converted.notification
        )
    ]
    for text in shown:
        assert code not in text
        assert ". ".join(code) not in text
        for secret in raw["secrets"].values():
            assert secret not in text
    assert request.code == code  # it is there, only not shown


def test_invalid_event_traceback_does_not_carry_the_code() -> None:
    raw = {
        "message_options": {
            "action": "second-factor-authentication",
            "code": "481516",
            "message_type": "sms",
            "recipient": "+14155552671",
            "text": "Your verification code is 481516",
        }
    }  # no tenant
    with pytest.raises(InvalidInputError) as info:
        parse_event(raw)
    assert "481516" not in str(info.value)
    assert "481516" not in "".join(traceback.format_exception(info.value))


# --------------------------------------------------------------------------- tests/events/invalid

INVALID_FIELDS = {
    "spm_missing_code.json": "message_options.code",
    "spm_invalid_recipient.json": "message_options.recipient",
    "spm_message_type_fax.json": "message_options.message_type",
}


def test_every_invalid_file_is_checked() -> None:
    assert {p.name for p in INVALID} == {
        *INVALID_FIELDS,
        "truncated.json",
        "array.json",
        "cpp_password_breach.json",
    }


@pytest.mark.parametrize("name", sorted(INVALID_FIELDS))
def test_invalid_event_names_the_field(name: str) -> None:
    field = INVALID_FIELDS[name]
    with pytest.raises(InvalidInputError) as info:
        parse_event((EVENTS_DIR / "invalid" / name).read_text(encoding="utf-8"))
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}:")


def test_invalid_recipient_message_says_why_without_the_number() -> None:
    """The number is never repeated: the message may be answered to an API client or logged."""
    with pytest.raises(InvalidInputError, match=r"recipient: is not a valid phone number") as info:
        parse_event(load_event("invalid/spm_invalid_recipient"))
    assert "1555" not in str(info.value)


def test_fax_message_type_message_lists_the_allowed_values() -> None:
    with pytest.raises(InvalidInputError, match="'sms' or 'voice'"):
        parse_event(load_event("invalid/spm_message_type_fax"))


def test_missing_code_message_says_required() -> None:
    with pytest.raises(InvalidInputError, match=r"^message_options\.code: Field required$"):
        parse_event(load_event("invalid/spm_missing_code"))


@pytest.mark.parametrize("as_bytes", [False, True], ids=["str", "bytes"])
def test_truncated_json_names_line_and_column(as_bytes: bool) -> None:
    text = (EVENTS_DIR / "invalid" / "truncated.json").read_text(encoding="utf-8")
    lines = text.split("\n")
    line, column = len(lines), len(lines[-1]) + 1  # the file stops short: the error is at its end
    assert line > 1
    with pytest.raises(InvalidInputError) as info:
        parse_event(text.encode("utf-8") if as_bytes else text)
    assert f"line {line}, column {column}" in str(info.value)
    assert "malformed JSON" in str(info.value)
    assert info.value.field is None
    assert "481516" not in str(info.value)


def test_json_array_is_not_an_event() -> None:
    text = (EVENTS_DIR / "invalid" / "array.json").read_text(encoding="utf-8")
    assert isinstance(json.loads(text), list)
    with pytest.raises(InvalidInputError, match="must be a JSON object") as info:
        parse_event(text)
    assert info.value.field is None
    with pytest.raises(TypeError):
        load_event("invalid/array")


def test_password_breach_is_a_valid_event_without_spm_equivalent() -> None:
    raw = load_event("invalid/cpp_password_breach")
    event = parse_event(raw)
    assert isinstance(event, CustomPhoneProviderEvent)
    assert event.notification.message_type == "password_breach"
    assert event.notification.code is None
    for convert in (event.to_send_phone_message, lambda: PhoneMessageRequest.from_event(event)):
        with pytest.raises(InvalidInputError) as info:
            convert()
        assert info.value.field == "notification.message_type"
        assert str(info.value).startswith("notification.message_type:")
        assert "password_breach" in str(info.value)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b'{"message_options": {"text": "\xff"}}', id="invalid-utf8"),
        pytest.param("[" * 100_000, id="deep-nesting"),
    ],
)
def test_undecodable_input_is_invalid_input(raw: str | bytes) -> None:
    with pytest.raises(InvalidInputError):
        parse_event(raw)


def test_payload_must_be_an_object() -> None:
    raw = load_event("spm_sms_verify_us")
    raw["message_options"] = "481516"
    with pytest.raises(InvalidInputError) as info:
        parse_event(raw)
    assert info.value.field == "message_options"


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_the_correlation_id_rides_on_the_request_but_never_into_event_request(
    path: Path,
) -> None:
    raw = json.loads(path.read_text())
    event = parse_event(raw)
    given = (raw.get("transaction") or {}).get("correlation_id")
    assert event.request.correlation_id == given
    request = PhoneMessageRequest.from_event(event)
    assert request.request.correlation_id == given  # a replayed event hands it on
    dumped = event.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert "correlation_id" not in dumped["request"]
    assert dumped.get("transaction") == raw.get("transaction")


def test_a_request_context_may_carry_the_correlation_id() -> None:
    request = PhoneMessageRequest.create(
        tenant="acme",
        recipient="+447911123456",
        code="246810",
        request={"ip": "203.0.113.7", "correlation_id": "c0ffee-42"},
    )
    assert request.request.correlation_id == "c0ffee-42"
    with pytest.raises(InvalidInputError, match=r"request\.correlation_id"):
        PhoneMessageRequest.create(
            tenant="acme", recipient="+447911123456", code="246810",
            request={"correlation_id": "x" * 256},
        )  # fmt: skip


@pytest.mark.parametrize("field", ["idempotency_key", "tenant"])
@pytest.mark.parametrize("bad", ["a\x00b", "tab\there", "line\nbreak"])
def test_control_characters_in_keys_and_tenants_are_refused(field: str, bad: str) -> None:
    """A database cannot store NUL, and one such key in a batch of claims would fail the
    others' too: refused at the door, naming the field."""
    fields: dict[str, Any] = {"tenant": "acme", "recipient": "+14155552671", "code": "123456"}
    fields[field] = bad
    with pytest.raises(InvalidInputError) as caught:
        PhoneMessageRequest.create(**fields)
    assert caught.value.field == field
    assert (
        str(caught.value)
        == f"{field}: must not contain control characters (tab, newline, NUL, ...)"
    )
