"""Message texts: Liquid templates, the built-in defaults and their fast path."""

from __future__ import annotations

import pytest

from runtime import ConfigurationError
from runtime.templates import DEFAULT_TEMPLATES, _render_liquid, render, spell_code


@pytest.mark.parametrize(("channel", "purpose"), sorted(DEFAULT_TEMPLATES))
def test_default_fast_path_equals_liquid(channel: str, purpose: str) -> None:
    spoken = spell_code("908172") if channel == "voice" else "908172"
    expected = _render_liquid(
        DEFAULT_TEMPLATES[(channel, purpose)],
        channel,
        purpose,
        spoken,
        "fr",
        "acme",
        "Acme & Co",  # type: ignore[arg-type]
    )
    fast = render(
        None,
        channel=channel,
        purpose=purpose,
        code="908172",
        locale="fr",  # type: ignore[arg-type]
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
