"""The plugin contract: fresh managers, throwaway plugins, entry points, broken plugins."""

from __future__ import annotations

import json
import logging
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from runtime import PluginError, hookimpl
from runtime.cli import app
from runtime.plugins import DEFAULT_PLUGINS, collect_providers, get_plugin_manager
from runtime.providers import ProviderRegistry
from runtime.settings import Settings
from tests.conftest import PipelineFactory, make_settings
from tests.fake_providers import ProvidersPlugin, ScriptedProvider
from tests.test_delivery import request, tenant


def install_distribution(site: Path, name: str, module_source: str) -> None:
    """Lay out an installed distribution (dist-info with an entry point) in ``site``."""
    module = name.replace("-", "_")
    (site / f"{module}.py").write_text(textwrap.dedent(module_source))
    dist_info = site / f"{module}-1.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text(f"[phone_actions]\n{name} = {module}\n")


GOOD_PLUGIN = """
    from pydantic import BaseModel
    from runtime import Receipt, hookimpl

    class Empty(BaseModel):
        pass

    class AcmeSms:
        name = "acme-sms"
        channels = frozenset({"sms"})
        config_model = Empty
        credentials_model = Empty
        sent = []

        async def send(self, message, config, credentials):
            AcmeSms.sent.append(message.recipient)
            return Receipt(provider=self.name, message_id="acme-1")

    @hookimpl
    def register_providers(register):
        register(AcmeSms())
"""


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "site"
    path.mkdir()
    monkeypatch.syspath_prepend(str(path))
    return path


def test_fresh_managers_share_nothing() -> None:
    first, second = (
        get_plugin_manager(load_entrypoints=False),
        get_plugin_manager(load_entrypoints=False),
    )
    first.register(ProvidersPlugin(ScriptedProvider("extra")), name="extra")
    assert first.get_plugin("extra") is not None
    assert second.get_plugin("extra") is None
    assert set(DEFAULT_PLUGINS) <= {name for name, _ in second.list_name_plugin()}


def test_throwaway_plugin_class_registers_a_provider(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    provider = ScriptedProvider("throwaway")
    pm = get_plugin_manager(plugins=[ProvidersPlugin(provider)], load_entrypoints=False)
    registry = collect_providers(pm, settings)
    assert registry.get("throwaway") is provider
    assert {"outbox", "throwaway"} <= {p.name for p in registry}


def test_configure_is_historic(tmp_path: Path) -> None:
    seen: list[Settings] = []

    class Late:
        @hookimpl
        def configure(self, settings: Settings) -> None:
            seen.append(settings)

    settings = make_settings(tmp_path)
    pm = get_plugin_manager(settings=settings, load_entrypoints=False)
    pm.register(Late())
    assert seen == [settings]


def test_same_provider_name_twice_names_both_plugins(tmp_path: Path) -> None:
    def manager() -> Any:
        pm = get_plugin_manager(load_entrypoints=False)
        pm.register(ProvidersPlugin(first), name="first")
        pm.register(
            ProvidersPlugin(ScriptedProvider("dup"), ScriptedProvider("other")), name="second"
        )
        return pm

    first = ScriptedProvider("dup")
    pm = manager()
    registry = collect_providers(pm, make_settings(tmp_path))
    assert registry.get("dup") is first
    assert "other" not in registry  # the broken plugin is skipped whole
    assert "registered twice (by first and by second)" in pm.load_errors["second"]

    with pytest.raises(PluginError, match=r"plugin 'second'.*registered twice"):
        collect_providers(manager(), make_settings(tmp_path), strict=True)


class RaisingWithBeforeSend:
    """Its ``register_providers`` raises; its ``before_send`` would veto every message."""

    @hookimpl
    def register_providers(self, register: Any) -> None:
        raise RuntimeError("no config")

    @hookimpl
    def before_send(self, message: Any) -> str:
        return "vetoed by a plugin that was skipped"


def test_a_raising_register_providers_is_skipped_or_fatal(tmp_path: Path) -> None:
    pm = get_plugin_manager(plugins=[], load_entrypoints=False)
    pm.register(RaisingWithBeforeSend(), name="raising")
    registry = collect_providers(pm, make_settings(tmp_path))
    assert "outbox" in registry
    assert "RuntimeError: no config" in pm.load_errors["raising"]
    strict = get_plugin_manager(plugins=[], load_entrypoints=False)
    strict.register(RaisingWithBeforeSend(), name="raising")
    with pytest.raises(PluginError, match="raising"):
        collect_providers(strict, make_settings(tmp_path), strict=True)


async def test_a_plugin_whose_register_providers_raises_is_skipped_whole(
    make_pipeline: PipelineFactory,
) -> None:
    """Not half a plugin: its before_send does not run either, and it is not listed as loaded."""
    broken = RaisingWithBeforeSend()
    pipeline = make_pipeline(tenant("outbox"), plugins=(broken,))
    pm = pipeline.plugin_manager
    assert not pm.is_registered(broken)
    [(name, error)] = pm.load_errors.items()
    assert error == "register_providers failed: RuntimeError: no config"
    report = await pipeline.deliver(request())
    assert report.status == "stored", report  # its before_send went with it: no veto
    assert name not in {plugin_name for plugin_name, _ in pm.list_name_plugin()}


def test_misspelt_hook_fails_loudly() -> None:
    class Typo:
        @hookimpl
        def after_sned(self, report: Any) -> None:  # misspelt on purpose
            pass

    with pytest.raises(PluginError, match="after_sned"):
        get_plugin_manager(plugins=[Typo()], load_entrypoints=False)


def test_registry_rejects_an_object_that_is_not_a_provider() -> None:
    with pytest.raises(TypeError, match="lacks"):
        ProviderRegistry().register(object())  # type: ignore[arg-type]


async def test_third_party_plugin_found_through_its_entry_point_delivers(
    site: Path, make_pipeline: PipelineFactory, tmp_path: Path
) -> None:
    install_distribution(site, "acme-sms-plugin", GOOD_PLUGIN)
    pm = get_plugin_manager(settings=make_settings(tmp_path))
    assert pm.get_plugin("acme-sms-plugin") is not None
    assert "acme-sms" in collect_providers(pm, make_settings(tmp_path))

    from runtime.delivery import Pipeline
    from runtime.tenants import TomlTenantDirectory

    pipeline = Pipeline.from_settings(
        make_settings(tmp_path),
        tenants=TomlTenantDirectory.from_mapping({"tenants": tenant("acme-sms")}),
    )
    try:
        report = await pipeline.deliver(request())
    finally:
        await pipeline.aclose()
    assert (report.status, report.delivered_by) == ("delivered", "acme-sms")


def test_broken_plugin_is_skipped_with_a_warning(
    site: Path, caplog: pytest.LogCaptureFixture
) -> None:
    install_distribution(site, "broken-plugin", "raise ImportError('missing dependency foo')\n")
    install_distribution(site, "acme-sms-plugin", GOOD_PLUGIN)
    with caplog.at_level(logging.WARNING, logger="runtime.plugins"):
        pm = get_plugin_manager()
    assert pm.get_plugin("broken-plugin") is None
    assert pm.get_plugin("acme-sms-plugin") is not None
    assert "missing dependency foo" in pm.load_errors["broken-plugin"]
    assert "skipped plugin 'broken-plugin'" in caplog.text


def test_plugin_with_unknown_hook_is_skipped_not_half_registered(site: Path) -> None:
    source = "from runtime import hookimpl\n@hookimpl\ndef before_sendd(message):\n    pass\n"
    install_distribution(site, "typo-plugin", source)
    pm = get_plugin_manager()
    assert pm.get_plugin("typo-plugin") is None
    assert "before_sendd" in pm.load_errors["typo-plugin"]


def test_broken_plugin_is_fatal_in_strict_mode(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_distribution(site, "broken-plugin", "raise ImportError('missing dependency foo')\n")
    with pytest.raises(PluginError, match="broken-plugin"):
        get_plugin_manager(strict=True)
    monkeypatch.setenv("PHONE_ACTIONS_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="missing dependency foo"):
        get_plugin_manager(settings=Settings(_env_file=None))


HALF_PLUGIN = """
    from runtime import hookimpl

    @hookimpl
    def register_providers(register):
        raise RuntimeError("no ACME_URL")

    @hookimpl
    def before_send(message):
        return "vetoed"
"""
CONFIGURE_PLUGIN = """
    from runtime import hookimpl

    @hookimpl
    def configure(settings):
        raise RuntimeError("no API key")
"""


def plugin_rows(site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """``phone-actions plugins --json``'s rows of the installed (not built-in) plugins."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PHONE_ACTIONS_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(app, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    return [row for row in json.loads(result.stdout) if not row["name"].startswith("plugins.")]


def test_plugins_lists_a_plugin_whose_register_providers_raises_once_as_skipped(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_distribution(site, "half-plugin", HALF_PLUGIN)
    assert plugin_rows(site, tmp_path, monkeypatch) == [
        {
            "name": "half-plugin",
            "hooks": [],
            "providers": [],
            "error": "skipped: register_providers failed: RuntimeError: no ACME_URL",
        }
    ]


def test_an_installed_plugin_whose_configure_raises_is_skipped_or_fatal_in_one_line(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_distribution(site, "configure-plugin", CONFIGURE_PLUGIN)
    [row] = plugin_rows(site, tmp_path, monkeypatch)
    assert row["error"] == "skipped: configure failed: RuntimeError: no API key"
    monkeypatch.setenv("PHONE_ACTIONS_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match=r"'configure-plugin'.*configure failed: RuntimeError"):
        get_plugin_manager(settings=Settings(_env_file=None))


def test_a_given_plugin_whose_configure_raises_stops_the_start_naming_it(tmp_path: Path) -> None:
    class Raising:
        @hookimpl
        def configure(self, settings: Settings) -> None:
            raise RuntimeError("no API key")

    with pytest.raises(PluginError, match=r"configure failed: RuntimeError: no API key"):
        get_plugin_manager(
            settings=make_settings(tmp_path), plugins=[Raising()], load_entrypoints=False
        )


# -- register_commands ----------------------------------------------------------------------

HELLO_PLUGIN = """
    import typer
    from runtime import hookimpl

    @hookimpl
    def register_commands(cli):
        @cli.command("acme-hello", short_help="Say hello.")
        def hello(name: str = typer.Option("world", "--name")):
            typer.echo(f"hello {name}")
"""


@pytest.fixture
def fresh_plugin_commands() -> Iterator[None]:
    """The CLI loads the plugins' commands once per process: forget them around a test."""
    from runtime.cli_plugins import plugin_commands

    plugin_commands.cache_clear()
    yield
    plugin_commands.cache_clear()


def test_an_installed_plugin_adds_a_command(site: Path, fresh_plugin_commands: None) -> None:
    from typer.testing import CliRunner

    from runtime.cli import app

    install_distribution(site, "acme-hello", HELLO_PLUGIN)
    runner = CliRunner()
    result = runner.invoke(app, ["acme-hello", "--name", "Ada"])
    assert (result.exit_code, result.output) == (0, "hello Ada\n")
    assert "acme-hello" not in runner.invoke(app, ["--help"]).output  # --help loads no plugin
    again = runner.invoke(app, ["nosuch"])  # a name nobody adds: click's own error
    assert again.exit_code == 2
    assert "No such command 'nosuch'" in again.output


def test_a_plugin_command_whose_name_is_taken_fails_in_one_line(
    monkeypatch: pytest.MonkeyPatch, fresh_plugin_commands: None
) -> None:
    from typer.testing import CliRunner

    from runtime import plugins as plugin_module
    from runtime.cli import app

    class Taken:
        @hookimpl
        def register_commands(self, cli: Any) -> None:
            cli.command("outbox")(lambda: None)

    real = plugin_module.get_plugin_manager

    def with_taken(**_: Any) -> Any:
        return real(plugins=[Taken()], load_entrypoints=False)

    monkeypatch.setattr(plugin_module, "get_plugin_manager", with_taken)
    result = CliRunner().invoke(app, ["outbox"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "adds the command 'outbox', which is taken" in lines[0]
    assert "Taken" in lines[0] or "plugin" in lines[0]


def test_builtin_plugins_add_outbox_and_plivo_answers(fresh_plugin_commands: None) -> None:
    from runtime.cli import app
    from runtime.cli_plugins import with_plugin_commands

    group = with_plugin_commands(app)
    assert "outbox" in group.commands
    assert "plivo-answers" in group.commands["providers"].commands  # type: ignore[attr-defined]
    assert {"try"} <= set(group.commands["providers"].commands)  # type: ignore[attr-defined]


# -- what a provider declares ------------------------------------------------------------------


def test_every_builtin_provider_declares_what_the_pipeline_reads(tmp_path: Path) -> None:
    """reaches_phones, enforces_timeout, accepts_observer: declared, booleans, and the values
    the pipeline's behaviour rests on (stored vs delivered, its own timer, recordings)."""
    from runtime.providers import accepts_observer, enforces_timeout, reaches_phones

    settings = make_settings(tmp_path)
    registry = collect_providers(get_plugin_manager(settings=settings), settings)
    declared = {
        p.name: (p.reaches_phones, p.enforces_timeout, p.accepts_observer) for p in registry
    }
    for name, values in declared.items():
        assert all(type(v) is bool for v in values), name
    assert declared["outbox"] == (False, False, False)
    assert declared["twilio"] == (True, True, True)
    assert declared["plivo"] == (True, False, True)
    assert declared["vonage"] == (True, True, True)  # an HttpProvider
    assert declared["custom"] == (True, False, True)
    helpers = {
        p.name: (reaches_phones(p), enforces_timeout(p), accepts_observer(p)) for p in registry
    }
    assert helpers == declared


def test_a_provider_that_declares_nothing_gets_the_defaults() -> None:
    from runtime.providers import accepts_observer, enforces_timeout, reaches_phones

    class Old:
        name = "old"

    old: Any = Old()
    assert (reaches_phones(old), enforces_timeout(old), accepts_observer(old)) == (
        True,
        False,
        False,
    )
