"""docs/providers.md and each provider's page stay true to the registered providers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from runtime.plugins import collect_providers, get_plugin_manager
from runtime.providers import Provider, ProviderRegistry
from runtime.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = {"custom": "custom_action", "phone-message-hook": "custom_action"}


def registry() -> ProviderRegistry:
    settings = Settings(_env_file=None)
    pm = get_plugin_manager(settings=settings, load_entrypoints=False)
    return collect_providers(pm, settings)


PROVIDERS = list(registry())


def section(text: str, name: str) -> str:
    match = re.search(rf"^## `{re.escape(name)}`\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"docs/providers.md has no section ## `{name}`"
    return match.group(1)


def test_every_integrated_provider_is_built_in() -> None:
    names = {p.name for p in PROVIDERS}
    assert {"twilio", "vonage", "infobip", "telesign", "esendex", "mitto", "clicksend"} <= names
    assert {"sinch", "plivo", "messagebird", "clickatell", "sns"} <= names


@pytest.mark.parametrize("provider", PROVIDERS, ids=lambda p: p.name)
def test_providers_md_has_a_true_section(provider: Provider) -> None:
    text = (DOCS / "providers.md").read_text("utf-8")
    body = section(text, provider.name)
    channels = re.search(r"\*\*channels\*\*: ([a-z, ]+)", body)
    assert channels
    assert channels.group(1).strip() == ", ".join(sorted(provider.channels))
    for label, model in (
        ("settings", provider.config_model),
        ("credentials", provider.credentials_model),
    ):
        line = re.search(rf"\*\*{label}\*\*: (.*)", body)
        assert line, f"{provider.name}: no {label} line"
        for field, info in model.model_fields.items():
            named = f"`{field}`"
            assert named in line.group(1), f"{provider.name}: {label} lacks {named}"
            said_required = f"{named} (required)" in line.group(1)
            assert said_required == info.is_required(), f"{provider.name}: {named} required?"
    assert "**errors**" in body
    page = PAGES.get(provider.name, provider.name)
    assert f"(providers/{page}.md)" in body
    assert f"| `{provider.name}` |" in text, "missing from the summary table"


@pytest.mark.parametrize("provider", PROVIDERS, ids=lambda p: p.name)
def test_each_page_lists_every_setting_and_credential(provider: Provider) -> None:
    page = DOCS / "providers" / f"{PAGES.get(provider.name, provider.name)}.md"
    text = page.read_text("utf-8")
    for model in (provider.config_model, provider.credentials_model):
        missing = [f for f in model.model_fields if f"`{f}`" not in text]
        assert not missing, f"{page.name} does not mention {missing}"
