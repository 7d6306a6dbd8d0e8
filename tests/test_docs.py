"""The documentation stays true to the code.

Each test reads names from the code (hooks, CLI commands and options, settings, tenant fields,
report reasons, error codes) and fails when one of them is missing from the page that must
document it. Code blocks in the docs must parse, tenant examples must validate, and relative
links must resolve.
"""

from __future__ import annotations

import ast
import inspect
import json
import re
import tomllib
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any, get_args

import pluggy
import pytest
from pydantic import BaseModel

from plugins.custom_action import _FAILURES, ActionSecrets
from runtime import hookspecs, logs, metrics
from runtime.cli import EXIT_NOT_DELIVERED, SCHEMAS, app
from runtime.cli_plugins import with_plugin_commands
from runtime.console import EXIT_BAD_INPUT
from runtime.events import Attempt, DeliveryReport
from runtime.plugins import collect_providers, get_plugin_manager
from runtime.sandbox.shared.contract import Outcome, SandboxLimits
from runtime.settings import Settings
from runtime.tenants import FallbackPolicy, TenantConfig, TomlTenantDirectory

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
PAGES = [README, *sorted(DOCS.rglob("*.md"))]


def read(relative: str) -> str:
    return (ROOT / relative).read_text(encoding="utf-8")


def headings(text: str) -> list[str]:
    return re.findall(r"^#{1,6} +(.+?) *$", text, flags=re.MULTILINE)


def missing(names: Iterable[object], text: str, *, quoted: bool = True) -> list[str]:
    """The names (as strings) that do not appear in ``text`` (in backticks when ``quoted``)."""
    return sorted(str(name) for name in names if (f"`{name}`" if quoted else str(name)) not in text)


def module_tree(relative: str) -> ast.Module:
    return ast.parse(read(relative), filename=relative)


def call_name(node: ast.Call) -> str | None:
    func = node.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def string_value(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def first_string_arguments(relative: str, functions: set[str]) -> set[str]:
    """The string literals passed first to calls of ``functions`` in one module."""
    found = set()
    for node in ast.walk(module_tree(relative)):
        if isinstance(node, ast.Call) and call_name(node) in functions and node.args:
            value = string_value(node.args[0])
            if value is not None:
                found.add(value)
    return found


# -- hooks ---------------------------------------------------------------------------------


def hook_names() -> set[str]:
    marker = f"{hookspecs.PROJECT_NAME}_spec"
    marked = {
        name
        for name, obj in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(obj, marker)
    }
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    registered = {name for name in vars(pm.hook) if not name.startswith("_")}
    assert marked == registered, "hookspec module and plugin manager disagree"
    return marked


def test_every_hook_has_a_heading_in_hooks_md() -> None:
    names = hook_names()
    assert names, "no hook specifications found"
    titles = headings(read("docs/hooks.md"))
    undocumented = sorted(
        name for name in names if not any(re.search(rf"\b{name}\b", t) for t in titles)
    )
    assert not undocumented, f"hooks without a heading in docs/hooks.md: {undocumented}"


def test_hooks_md_shows_each_hook_signature() -> None:
    text = read("docs/hooks.md")
    for name in hook_names():
        parameters = ", ".join(inspect.signature(getattr(hookspecs, name)).parameters)
        assert f"def {name}(" in text, f"docs/hooks.md lacks the signature of {name}"
        assert all(p in text for p in parameters.split(", ")), (name, parameters)
        options = getattr(getattr(hookspecs, name), f"{hookspecs.PROJECT_NAME}_spec")
        shown = [f"{o}=True" for o in ("historic", "firstresult") if options.get(o)]
        decorator = f"@hookspec({', '.join(shown)})" if shown else "@hookspec\n"
        assert f"{decorator}def {name}(" in text.replace(")\ndef", ")def"), (name, decorator)


# -- CLI -----------------------------------------------------------------------------------


def cli_commands() -> dict[str, Any]:
    """The commands registered on the Typer app, by name (click-style command objects)."""
    return dict(with_plugin_commands(app).commands)  # plugins add some (register_commands)


def test_every_cli_command_has_a_heading_in_cli_md() -> None:
    commands = cli_commands()
    assert {"send", "test-action", "doctor"} <= set(commands), "commands registered elsewhere?"
    titles = headings(read("docs/cli.md"))
    undocumented = sorted(name for name in commands if f"`{name}`" not in titles)
    assert not undocumented, f"commands without a heading in docs/cli.md: {undocumented}"


@pytest.mark.parametrize("command", sorted(cli_commands()))
def test_every_cli_option_and_argument_is_in_cli_md(command: str) -> None:
    text = read("docs/cli.md")
    params = cli_commands()[command].params
    options = [
        opt for p in params if p.param_type_name == "option" for opt in (*p.opts, *p.secondary_opts)
    ]
    arguments = [p.name.upper() for p in params if p.param_type_name == "argument"]
    assert not missing(options, text), f"{command}: options missing from docs/cli.md"
    assert not missing(arguments, text), f"{command}: arguments missing from docs/cli.md"


def test_cli_md_documents_exit_codes_and_schema_names() -> None:
    text = read("docs/cli.md")
    for code in (0, EXIT_NOT_DELIVERED, EXIT_BAD_INPUT):
        assert re.search(rf"^\| {code} \|", text, flags=re.MULTILINE), f"exit code {code}"
    assert not missing(SCHEMAS, text), "schema names missing from docs/cli.md"


# -- configuration -------------------------------------------------------------------------


def env_var(field: str) -> str:
    return f"{Settings.model_config.get('env_prefix', '')}{field}".upper()


def test_every_setting_and_its_env_var_is_in_configuration_md() -> None:
    text = read("docs/configuration.md")
    fields = Settings.model_fields
    assert fields
    assert not missing(fields, text), "settings missing from docs/configuration.md"
    assert not missing(map(env_var, fields), text), "env vars missing from docs/configuration.md"


@pytest.mark.parametrize("field", sorted(Settings.model_fields))
def test_each_setting_default_is_in_its_row(field: str) -> None:
    default = Settings.model_fields[field].get_default(call_default_factory=True)
    if default is None:
        return
    shown = str(default).lower() if isinstance(default, bool) else str(default)
    rows = [
        line
        for line in read("docs/configuration.md").splitlines()
        if line.startswith(f"| `{field}` |")
    ]
    assert rows, f"no table row for the setting {field}"
    assert f"`{shown}`" in rows[0], f"{field}: default {shown!r} not in {rows[0]!r}"


def test_every_tenant_field_is_in_configuration_md() -> None:
    text = read("docs/configuration.md")
    fields = TenantConfig.model_fields
    assert fields
    assert not missing(fields, text), "tenant fields missing from docs/configuration.md"
    policies = get_args(FallbackPolicy)
    assert not missing(policies, text), "fallback policies missing from docs/configuration.md"


def test_every_template_default_and_variable_is_in_configuration_md() -> None:
    from runtime.templates import DEFAULT_TEMPLATES

    text = read("docs/configuration.md")
    assert not missing(DEFAULT_TEMPLATES.values(), text), "default templates changed"
    source = read("runtime/templates.py")
    variables = {"code", "message_type", "purpose", "locale", "tenant.friendly_name", "tenant.id"}
    variables |= {"tenant.friendlyName"}
    assert all(v in source for v in variables)
    assert not missing(variables, text), "template variables missing"


# -- README --------------------------------------------------------------------------------


def test_readme_has_the_two_commands_and_the_bench_placeholder() -> None:
    text = README.read_text(encoding="utf-8")
    assert "make run" in text
    assert "make test" in text
    assert "<!-- bench:pipeline -->" in text
    assert "<!-- bench:sandbox -->" in text


# -- delivery ------------------------------------------------------------------------------


DELIVERY_MODULES = sorted(
    str(path.relative_to(ROOT)) for path in (ROOT / "runtime" / "delivery").glob("*.py")
)


def pipeline_reasons() -> set[str]:
    """Every ``reason`` literal in runtime/delivery/; fails on a reason it cannot read."""
    reasons: set[str] = set()
    unreadable: list[str] = []

    def take(node: ast.expr, where: ast.stmt | ast.expr) -> None:
        value = string_value(node)
        if value is not None:
            reasons.add(value)
        elif isinstance(node, ast.Constant) and node.value is None:
            pass
        elif isinstance(node, ast.Name) and node.id == "reason":
            pass  # the refusal returned by _fallback_refusal, read below
        else:
            unreadable.append(f"line {where.lineno}: {ast.unparse(node)}")

    nodes = [n for module in DELIVERY_MODULES for n in ast.walk(module_tree(module))]
    for node in nodes:
        if isinstance(node, ast.Call) and call_name(node) == "rejected" and len(node.args) > 1:
            take(node.args[1], node)
        if isinstance(node, ast.Call) and call_name(node) == "report":
            for keyword in node.keywords:
                if keyword.arg == "reason":
                    take(keyword.value, node)
        if isinstance(node, ast.Dict):  # model_copy(update={"reason": ...})
            for key, value in zip(node.keys, node.values, strict=True):
                if key is not None and string_value(key) == "reason":
                    take(value, node)
        if isinstance(node, ast.FunctionDef) and node.name == "_fallback_refusal":
            for ret in ast.walk(node):
                if isinstance(ret, ast.Return) and isinstance(ret.value, ast.Tuple):
                    take(ret.value.elts[0], ret)
                elif isinstance(ret, ast.Return):
                    unreadable.append(f"line {ret.lineno}: {ast.unparse(ret)}")
    assert not unreadable, f"reasons this test cannot read (use string literals): {unreadable}"
    return reasons


def test_every_reason_the_pipeline_returns_is_in_delivery_md() -> None:
    reasons = pipeline_reasons()
    assert {"unknown_tenant", "handed_off", "fallback_failed"} <= reasons, reasons
    text = read("docs/delivery.md")
    assert not missing(reasons, text), "reasons missing from docs/delivery.md"


def test_every_attempt_error_code_of_the_pipeline_is_in_delivery_md() -> None:
    codes: set[str] = set()
    for module in DELIVERY_MODULES:
        codes |= first_string_arguments(module, {"ProviderError"})
    for node in ast.walk(module_tree("runtime/delivery/attempt.py")):
        if isinstance(node, ast.FunctionDef) and node.name == "as_provider_error":
            for dictionary in ast.walk(node):
                if isinstance(dictionary, ast.Dict):
                    codes |= {v for v in map(string_value, dictionary.values) if v}
    assert {"timeout", "provider_crashed", "missing_credentials"} <= codes, codes
    assert not missing(codes, read("docs/delivery.md")), "error codes missing from delivery.md"


def test_report_fields_statuses_and_log_events_are_in_delivery_md() -> None:
    text = read("docs/delivery.md")
    report_fields = {*DeliveryReport.model_fields, *DeliveryReport.model_computed_fields}
    assert not missing(report_fields, text), "DeliveryReport fields missing"
    assert not missing(Attempt.model_fields, text), "Attempt fields missing"
    statuses = get_args(DeliveryReport.model_fields["status"].annotation)
    assert statuses
    assert not missing(statuses, text), "statuses missing"
    descriptions = logs._DESCRIPTIONS
    assert not missing(descriptions, text), "log event types missing"
    assert not missing(descriptions.values(), text, quoted=False), "log descriptions missing"


# -- providers -----------------------------------------------------------------------------


def test_twilio_md_documents_settings_credentials_and_error_codes() -> None:
    from plugins.twilio import TwilioConfig, TwilioCredentials
    from plugins.twilio.errors import ERRORS

    text = read("docs/providers/twilio.md")
    assert not missing(TwilioConfig.model_fields, text), "Twilio settings missing"
    assert not missing(TwilioCredentials.model_fields, text), "Twilio credentials missing"
    assert not missing(ERRORS.permanent | ERRORS.retryable, text), "Twilio error codes missing"
    functions = {"ProviderError", "_not_sent", "_maybe_sent"}
    codes = set()
    for module in sorted((ROOT / "plugins" / "twilio").glob("*.py")):
        codes |= first_string_arguments(str(module.relative_to(ROOT)), functions)
    assert "connection_error" in codes, codes
    assert not missing(codes, text), "Twilio plugin error codes missing"


def test_outbox_md_documents_its_error_codes() -> None:
    codes = first_string_arguments("plugins/outbox.py", {"ProviderError"})
    assert "outbox_cap_reached" in codes
    assert not missing(codes, read("docs/providers/outbox.md")), "outbox error codes missing"


@cache
def builtin_providers() -> dict[str, str]:
    """Every provider the built-in plugins register, with the plugin that registers it."""
    settings = Settings()
    registry = collect_providers(
        get_plugin_manager(settings=settings, load_entrypoints=False), settings
    )
    return {provider.name: registry.owner(provider.name) for provider in registry}


def provider_page(owner: str) -> Path:
    """The page of a built-in plugin's providers: ``plugins.twilio`` -> docs/providers/twilio.md."""
    return DOCS / "providers" / f"{owner.rpartition('.')[2]}.md"


def test_every_builtin_provider_has_a_page_in_docs_providers() -> None:
    providers = builtin_providers()
    assert {"outbox", "twilio", "phone-message-hook", "custom"} <= set(providers), providers
    index = read("docs/index.md")
    problems = []
    for name, owner in sorted(providers.items()):
        page = provider_page(owner)
        where = page.relative_to(ROOT)
        if not page.exists():
            problems.append(f"{name} ({owner}): no {where}")
            continue
        intro = page.read_text("utf-8").split("\n## ", 1)[0]
        if f"`{name}`" not in intro:
            problems.append(f"{name}: not named (in backticks) before the first section of {where}")
        if f"]({page.relative_to(DOCS)})" not in index:
            problems.append(f"{name}: docs/index.md does not link {where}")
    assert not problems, problems


def custom_action_errors() -> dict[str, bool]:
    """Every error code plugins/custom_action.py can raise, with whether it is retryable.

    Codes come from ``_FAILURES`` and from the ``ProviderError`` calls of the module; the one
    f-string code, ``notification_{action}``, is expanded with the ``api.notification``
    members that runtime/sandbox/guest/api_stub.py defines. Any other computed code fails here.
    """
    codes = {code: retryable for code, retryable in _FAILURES.values()}
    actions = first_string_arguments("runtime/sandbox/guest/api_stub.py", {"outcome"})
    assert actions == {"drop", "retry"}, actions
    unreadable = []
    for node in ast.walk(module_tree("plugins/custom_action.py")):
        if not (isinstance(node, ast.Call) and call_name(node) == "ProviderError" and node.args):
            continue
        first = node.args[0]
        retryable = next(k.value for k in node.keywords if k.arg == "retryable")

        def is_retryable(action: str | None = None, expr: ast.expr = retryable) -> bool:
            code = compile(ast.Expression(expr), "<retryable>", "eval")
            return bool(eval(code, {"__builtins__": {}}, {"action": action}))

        literal = string_value(first)
        if literal is not None:
            codes[literal] = is_retryable()
        elif (
            isinstance(first, ast.JoinedStr)
            and len(first.values) == 2
            and string_value(first.values[0]) == "notification_"
        ):
            codes |= {f"notification_{a}": is_retryable(a) for a in actions}
        elif not (isinstance(first, ast.Name) and first.id == "code"):  # code: from _FAILURES
            unreadable.append(f"line {node.lineno}: {ast.unparse(first)}")
    assert not unreadable, f"error codes this test cannot read: {unreadable}"
    return codes


def table_cell(text: str, key: str, column: str) -> str | None:
    """The ``column`` cell of the first table row whose first cell is ``key``, or None."""
    lines = text.splitlines()
    for number, line in enumerate(lines):
        if not line.startswith(f"| {key} |"):
            continue
        start = number
        while start > 0 and lines[start - 1].startswith("|"):
            start -= 1
        header = [cell.strip() for cell in lines[start].strip("|").split("|")]
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if column in header and len(cells) == len(header):
            return cells[header.index(column)]
        return None
    return None


def test_custom_action_md_lists_every_error_code_with_its_retryable_flag() -> None:
    codes = custom_action_errors()
    assert {"action_not_found", "action_compile_error", "notification_drop"} <= set(codes)
    text = read("docs/providers/custom_action.md")
    assert not missing(codes, text), "custom-action error codes missing"
    wrong = []
    for code, retryable in sorted(codes.items()):
        want = "yes" if retryable else "no"
        shown = table_cell(text, f"`{code}`", "retryable")
        if shown != want:
            wrong.append(f"{code}: the retryable column says {shown!r}, the code says {want!r}")
    assert not wrong, wrong


def test_custom_action_md_maps_each_failing_outcome_to_its_code() -> None:
    text = read("docs/providers/custom_action.md")
    for outcome, (code, _) in _FAILURES.items():
        rows = [line for line in text.splitlines() if line.startswith(f"| `{code}` |")]
        assert rows, f"no table row for {code} in docs/providers/custom_action.md"
        assert f"`{outcome}`" in rows[0], f"the {code} row must name the outcome {outcome}"


def test_sandbox_md_documents_every_outcome() -> None:
    outcomes = get_args(Outcome)
    assert "ok" in outcomes
    assert set(_FAILURES) <= set(outcomes) - {"ok"}
    text = read("docs/sandbox.md")
    assert not missing(outcomes, text), "outcomes missing from docs/sandbox.md"


@pytest.mark.parametrize("field", sorted(SandboxLimits.model_fields))
def test_each_sandbox_limit_is_in_sandbox_md_with_its_default(field: str) -> None:
    default = SandboxLimits.model_fields[field].get_default(call_default_factory=True)
    rows = [
        line for line in read("docs/sandbox.md").splitlines() if line.startswith(f"| `{field}` |")
    ]
    assert rows, f"no table row for the sandbox limit {field} in docs/sandbox.md"
    assert f"`{default}`" in rows[0], f"{field}: default {default!r} not in {rows[0]!r}"


def exposed_metrics() -> set[str]:
    """The names ``/metrics`` shows, as a scrape config or an alert rule spells them (a
    counter with ``_total``), the sandbox's counts included."""
    metrics.watch_sandbox(lambda: {"outcomes": {"ok": 1}})
    try:
        families = list(metrics.REGISTRY.collect())
    finally:
        metrics.watch_sandbox(None)
    return {f"{f.name}_total" if f.type == "counter" else f.name for f in families}


def test_the_metrics_table_in_operations_md_is_what_metrics_serves() -> None:
    text = read("docs/operations.md")
    section = text[text.index("## Metrics") : text.index("### Alert rules")]
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.MULTILINE))
    assert documented == exposed_metrics()


# -- code blocks and links -----------------------------------------------------------------

FENCE = re.compile(r"^```(\w*)\n(.*?)^```", flags=re.MULTILINE | re.DOTALL)


def code_blocks(language: str) -> list[tuple[str, str]]:
    return [
        (f"{page.relative_to(ROOT)} block {number}", body)
        for page in PAGES
        for number, (lang, body) in enumerate(FENCE.findall(page.read_text("utf-8")), 1)
        if lang == language
    ]


def provider_models() -> dict[str, tuple[type[BaseModel], type[BaseModel]]]:
    """Every built-in provider's settings and credentials models, by provider name."""
    settings = Settings(_env_file=None)
    registry = collect_providers(
        get_plugin_manager(settings=settings, load_entrypoints=False), settings
    )
    return {p.name: (p.config_model, p.credentials_model) for p in registry}


def test_python_blocks_parse() -> None:
    blocks = code_blocks("python")
    assert blocks
    for where, body in blocks:
        try:
            ast.parse(body)
        except SyntaxError as exc:
            pytest.fail(f"{where}: {exc}")


def test_json_blocks_parse() -> None:
    for where, body in code_blocks("json"):
        try:
            json.loads(body)
        except json.JSONDecodeError as exc:
            pytest.fail(f"{where}: {exc}")


def test_toml_blocks_parse_and_tenant_examples_validate() -> None:
    blocks = code_blocks("toml")
    assert blocks
    models = provider_models()
    for where, body in blocks:
        try:
            data: dict[str, Any] = tomllib.loads(body)
        except tomllib.TOMLDecodeError as exc:
            pytest.fail(f"{where}: {exc}")
        if "tenants" not in data:
            continue
        tenants = TomlTenantDirectory.from_mapping(data, source=where)
        for tenant_id in tenants.ids():
            tenant = tenants.get(tenant_id)
            if tenant.provider not in models:
                continue
            config_model, credentials_model = models[tenant.provider]
            config_model.model_validate(tenant.provider_settings)
            if builtin_providers().get(tenant.provider) == "plugins.custom_action":
                # the keys of credentials_env are the names of the action's secrets
                ActionSecrets.model_validate(dict.fromkeys(tenant.credentials_env, "value"))
            elif "provider" in data["tenants"][tenant_id]:  # not a fragment
                unknown = set(tenant.credentials_env) - set(credentials_model.model_fields)
                assert not unknown, f"{where}: {tenant.provider} has no credentials {unknown}"


def test_example_tenants_file_validates() -> None:
    TomlTenantDirectory.from_file(DOCS / "examples" / "tenants.toml")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = heading.strip().lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def test_relative_links_and_anchors_resolve() -> None:
    broken = []
    for page in PAGES:
        text = page.read_text("utf-8")
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            path_part, _, anchor = target.partition("#")
            destination = (page.parent / path_part).resolve() if path_part else page
            if not destination.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
            elif anchor and destination.is_file() and destination.suffix == ".md":
                anchors = {slug(h) for h in headings(destination.read_text("utf-8"))}
                if anchor not in anchors:
                    broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, broken


# -- lists of commands, plugins and providers (generated from the code, or checked against it)


def cli_group_names() -> tuple[list[str], list[str]]:
    """The top-level commands and the ``providers`` subcommands, as the CLI registers them."""
    group = with_plugin_commands(app)  # plugins add some (register_commands)
    commands = list(group.commands)
    providers = list(group.commands["providers"].commands)  # type: ignore[attr-defined]
    return commands, providers


def console_block(text: str, command: str) -> list[str]:
    """The lines a ``$ command`` block of a page shows after the command, right-stripped."""
    start = text.index(f"$ {command}\n") + len(f"$ {command}\n")
    end = text.index("```", start)
    return [line.rstrip() for line in text[start:end].rstrip("\n").splitlines()]


def test_cli_md_shows_the_real_top_level_help() -> None:
    """The command list at the top of cli.md is ``phone-actions --help`` at 80 columns."""
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, ["--help"], prog_name="phone-actions", env={"COLUMNS": "80"})
    shown = [line.rstrip() for line in result.output.rstrip("\n").splitlines()]
    assert console_block(read("docs/cli.md"), "phone-actions --help") == shown


def test_cli_md_plugins_example_is_the_real_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every built-in plugin, as ``phone-actions plugins`` prints them at 80 columns."""
    from typer.testing import CliRunner

    monkeypatch.setenv("PHONE_ACTIONS_TENANTS_FILE", str(ROOT / "docs/examples/tenants.toml"))
    monkeypatch.setenv("PHONE_ACTIONS_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(app, ["plugins"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    shown = [line.rstrip() for line in result.output.rstrip("\n").splitlines()]
    assert console_block(read("docs/cli.md"), "phone-actions plugins") == shown


def test_readme_and_index_name_every_command() -> None:
    commands, subcommands = cli_group_names()
    readme = README.read_text(encoding="utf-8")
    [bullet] = [part for part in readme.split("\n- ") if part.startswith("the CLI:")]
    listed = re.findall(r"`([a-z-]+)`", bullet)
    assert sorted(listed) == sorted({*commands, *subcommands}), "README's list of commands"
    [row] = [line for line in read("docs/index.md").splitlines() if "[cli.md](cli.md)" in line]
    assert not missing(commands, row), "docs/index.md: commands missing from the cli.md row"


def test_readme_names_every_builtin_provider_and_no_other() -> None:
    providers = set(builtin_providers())
    readme = README.read_text(encoding="utf-8")
    start = readme.index("the built-in ones are")
    sentence = readme[start : readme.index("([docs/sandbox.md]", start)]
    named = set(re.findall(r"`([a-z-]+)`", sentence))
    assert named == providers, f"README: missing {providers - named}, stale {named - providers}"
    assert not missing(providers, read("docs/providers.md")), "docs/providers.md"


def test_every_builtin_plugin_named_in_the_docs_exists() -> None:
    from runtime.plugins import DEFAULT_PLUGINS

    stale = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for name in re.findall(r"(?<![\w.])plugins\.([a-z_]+)\b", text):  # not runtime.plugins
            if f"plugins.{name}" not in DEFAULT_PLUGINS:
                stale.append(f"{page.relative_to(ROOT)}: plugins.{name}")
    assert not stale, f"plugins named in the docs that do not exist: {sorted(set(stale))}"
