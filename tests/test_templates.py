"""Message texts: Liquid templates, the built-in defaults and their fast path."""

from __future__ import annotations

import pytest

from runtime import ConfigurationError
from runtime.events import Channel, PhoneMessageRequest, Purpose
from runtime.templates import (
    DEFAULT_TEMPLATES,
    LOCALISED_TEMPLATES,
    MAX_LOOP_ITERATIONS,
    MAX_SOURCE_LENGTH,
    MAX_TEXT_LENGTH,
    MAX_VALUE_LENGTH,
    _render_liquid,
    check,
    render,
    spell_code,
)


@pytest.mark.parametrize(("channel", "purpose"), sorted(DEFAULT_TEMPLATES))
def test_default_fast_path_equals_liquid(channel: Channel, purpose: Purpose) -> None:
    spoken = spell_code("908172") if channel == "voice" else "908172"
    expected = _render_liquid(
        LOCALISED_TEMPLATES["fr"][(channel, purpose)],  # the locale "fr" picks French
        channel,
        purpose,
        spoken,
        "fr",
        "acme",
        "Acme & Co",
    )
    fast = render(
        None,
        channel=channel,
        purpose=purpose,
        code="908172",
        locale="fr",
        tenant_id="acme",
        tenant_name="Acme & Co",
    )
    assert fast == expected
    assert spoken in fast
    assert "Acme & Co" in fast


def test_defaults_follow_auth0_wording() -> None:
    args = {"code": "123456", "locale": "en", "tenant_id": "acme", "tenant_name": "Acme"}
    assert render(None, channel="sms", purpose="enrollment", **args) == (
        "123456 is your verification code for Acme. Please enter this code to verify your "
        "enrollment."
    )
    assert render(None, channel="voice", purpose="verification", **args) == (
        "Your verification code for Acme is 1. 2. 3. 4. 5. 6."
    )


def test_tenant_template_sees_documented_variables() -> None:
    source = (
        "{{ message_type }}|{{ purpose }}|{{ locale }}|{{ tenant.id }}|"
        "{{ tenant.friendlyName }}|{{ code }}"
    )
    out = render(
        source,
        channel="voice",
        purpose="enrollment",
        code="42",
        locale="de",
        tenant_id="acme",
        tenant_name="Acme",
    )
    assert out == "voice|enrollment|de|acme|Acme|4. 2"


def test_broken_template_names_the_template_and_line() -> None:
    with pytest.raises(ConfigurationError, match="sms verification template") as info:
        render(
            "line one\n{{ code | nosuchfilter }}",
            channel="sms",
            purpose="verification",
            code="123456",
            locale="en",
            tenant_id="a",
            tenant_name="A",
        )
    assert "unknown filter 'nosuchfilter'" in str(info.value)
    assert "2:10" in str(info.value)  # line 2, column 10 of the tenant's template


# --------------------------------------------------------------------------- limits

NESTED_LOOPS = (
    "{% for a in (1..1000) %}{% for b in (1..1000) %}{% for c in (1..1000) %}{{ code }}"
    "{% endfor %}{% endfor %}{% endfor %}"
)


def _render(source: str, channel: Channel = "sms") -> str:
    return render(
        source,
        channel=channel,
        purpose="verification",
        code="123456",
        locale="en",
        tenant_id="acme",
        tenant_name="Acme",
    )


def test_nested_loops_are_refused_at_load_and_stopped_at_render() -> None:
    assert "render steps, over the limit of" in (check(NESTED_LOOPS) or "")
    with pytest.raises(ConfigurationError, match=f"more than {MAX_LOOP_ITERATIONS} loop"):
        _render(NESTED_LOOPS)  # one billion iterations asked for: none is run


def test_loops_one_after_another_share_one_budget() -> None:
    source = "{{ code }}" + "{% for a in (1..60) %}{% endfor %}" * 2
    with pytest.raises(ConfigurationError, match=f"more than {MAX_LOOP_ITERATIONS} loop"):
        _render(source)


def test_a_huge_range_in_a_filter_is_refused_before_it_is_built() -> None:
    with pytest.raises(ConfigurationError, match=f"longer than {MAX_VALUE_LENGTH}"):
        _render("{{ code }}{{ (1..100000000000) | join: ',' }}")


def test_a_value_grown_by_filters_is_stopped() -> None:
    source = "{{ code }}{{ 'xxxxxxxxxx' " + "| replace: 'x', 'xxxxxxxxxx' " * 6 + "}}"
    with pytest.raises(ConfigurationError, match=f"longer than {MAX_VALUE_LENGTH}"):
        _render(source)


def test_a_five_megabyte_template_is_refused_before_parsing() -> None:
    source = "{{ code }}" + "x" * (5 * 1024 * 1024)
    assert check(source) == (
        f"the template is {len(source)} characters, over the limit of {MAX_SOURCE_LENGTH}"
    )
    with pytest.raises(ConfigurationError, match="over the limit of"):
        _render(source)


def test_message_over_the_text_cap_is_refused() -> None:
    source = "{{ code }}{% for i in (1..90) %}twenty characters...{% endfor %}"
    assert f"over the limit of {MAX_TEXT_LENGTH}" in (check(source) or "")
    with pytest.raises(ConfigurationError, match=r"the message is 1806 characters"):
        _render(source)
    assert len(_render("{{ code }} " + "y" * (MAX_TEXT_LENGTH - 7))) == MAX_TEXT_LENGTH


def test_voice_templates_are_checked_with_the_spelled_code() -> None:
    # 12-character codes spell to 34 characters: a voice template near the cap fails first
    source = "{{ code }}" + "v" * (MAX_TEXT_LENGTH - 20)
    assert check(source, "sms") is None
    assert f"over the limit of {MAX_TEXT_LENGTH}" in (check(source, "voice") or "")


def test_text_cap_is_the_requests_own() -> None:
    field = PhoneMessageRequest.model_fields["text"]
    assert any(getattr(m, "max_length", None) == MAX_TEXT_LENGTH for m in field.metadata)


def test_errors_are_one_line_without_the_template_text() -> None:
    source = "{{ code }}\n" + "padding " * 100 + "{{ code | nosuchfilter }}"
    with pytest.raises(ConfigurationError) as info:
        _render(source)
    assert "\n" not in str(info.value)
    assert "padding" not in str(info.value)
    assert "unknown filter 'nosuchfilter' at 2:" in str(info.value)


def test_an_ordinary_multilingual_template_is_accepted() -> None:
    branches = "".join(
        f"{{% elsif locale == '{lang}' %}}{{{{ code }}}} : {{{{ tenant.friendly_name }}}}."
        for lang in ("fr", "de", "es", "it", "pt", "nl", "pl", "sv", "ja", "zh")
    )
    source = "{% if locale == 'en' %}{{ code }} is your code." + branches + "{% endif %}"
    assert check(source) is None
    assert _render(source) == "123456 is your code."


def test_errors_that_only_rendering_shows_are_left_to_send_time() -> None:
    source = "{{ code }}{{ 1 | divided_by: 0 }}"
    assert check(source) is None  # the pipeline rejects the message with template_error
    with pytest.raises(ConfigurationError, match="divide by 0"):
        _render(source)
