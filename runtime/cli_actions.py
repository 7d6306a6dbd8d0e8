"""``phone-actions actions``: a tenant's actions through the Management API (not the database).

The API's URL and token come from ``PHONE_ACTIONS_API_URL`` and ``PHONE_ACTIONS_API_TOKEN``
(the environment, then ``.env``), else from the config file (``PHONE_ACTIONS_CLI_CONFIG``, default
``~/.config/phone-actions/cli.toml``: ``url = "..."``, ``token = "..."``); never from an
option, which other local users could read in the process list. An answer other than success
is one line ``error: <the API's message>`` and exit 1; bad local input (a missing setting, an
unreadable file) exit 2. httpx and Rich are imported inside the commands (``--help`` stays
fast).
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from runtime.console import bad_input

if TYPE_CHECKING:
    import httpx

__all__ = ["CONFIG_KEYS", "actions_app", "api_client", "load_cli_config"]

EXIT_API_ERROR = 1
DEFAULT_CONFIG = Path("~/.config/phone-actions/cli.toml")
TIMEOUT = 60.0  # seconds: a deploy compiles in the sandbox; a test runs the action (20 s max)
ACTIONS = "/api/v2/actions/actions"

actions_app = typer.Typer(
    help="A tenant's actions through the Management API: create, update, deploy, list, "
    "versions, rollback, test.",
    no_args_is_help=True,
)


class TriggerOption(StrEnum):
    send_phone_message = "send-phone-message"
    custom_phone_provider = "custom-phone-provider"


JsonOption = Annotated[bool, typer.Option("--json", help="Print the API's JSON answer.")]


# -- talking to the API -------------------------------------------------------------------


CONFIG_KEYS = ("url", "token")


def load_cli_config() -> tuple[str, str]:
    """The API's base URL and the token: environment first, then ``.env``, then the config
    file (read only when the environment leaves one unset; a key other than ``url`` and
    ``token`` is refused, naming it)."""
    import tomllib

    from runtime.env_file import credentials_environ

    environ = credentials_environ()  # the process environment, then .env
    url = environ.get("PHONE_ACTIONS_API_URL", "")
    url_source = "PHONE_ACTIONS_API_URL" if url else ""
    token = environ.get("PHONE_ACTIONS_API_TOKEN", "")
    configured = environ.get("PHONE_ACTIONS_CLI_CONFIG", "")
    path = Path(configured or DEFAULT_CONFIG).expanduser()
    # the file named in errors as the user named it: the setting's value, or the default
    where = f"PHONE_ACTIONS_CLI_CONFIG's file {configured}" if configured else str(DEFAULT_CONFIG)
    if not (url and token):
        if path.exists() and not path.is_file():  # a folder: never read as "no file"
            setting = "PHONE_ACTIONS_CLI_CONFIG" if configured else str(DEFAULT_CONFIG)
            reason = "is a folder" if path.is_dir() else "is not a regular file"
            raise bad_input(f"{setting}: {str(path)!r} {reason}: it must name the TOML file")
        if not path.is_file():
            where += ", which does not exist"
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise bad_input(f"{path}: {exc}") from None
        _check_config_keys(data, path)
        url_source = url_source or f"url in {path}"
        url = url or data.get("url", "")
        token = token or data.get("token", "")
    if not url:
        raise bad_input(
            "the API's URL is not set: set PHONE_ACTIONS_API_URL (e.g. http://127.0.0.1:8000) "
            f"or url in {where}"
        )
    problem = _url_problem(url)
    if problem:
        raise bad_input(f"{url_source}: {problem} (e.g. http://127.0.0.1:8000)")
    if not token:
        raise bad_input(
            "no API token (phone-actions token create prints one): set "
            f"PHONE_ACTIONS_API_TOKEN or token in {where}"
        )
    return url.rstrip("/"), token


def _check_config_keys(data: dict[str, Any], path: Path) -> None:
    """A misspelt key (``tokn``) would be ignored, and the error would then say the token is
    not set: refuse it, with the closest known key."""
    import difflib

    for key, value in data.items():
        if key not in CONFIG_KEYS:
            close = difflib.get_close_matches(key.lower(), CONFIG_KEYS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise bad_input(f"{path}: {key!r} is not a setting{hint}; the file takes url and token")
        if not isinstance(value, str):
            raise bad_input(f"{path}: {key} must be a string")


def _url_problem(url: str) -> str | None:
    """What makes ``url`` unusable as the API's base URL (never quoting it), or None."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return "is not a valid URL (check the host and the port)"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http:// or https:// URL with a host"
    return None


def api_client(url: str, token: str) -> httpx.Client:
    """The client every command uses (tests replace this function to reach an app in
    process)."""
    import httpx

    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT)


def _call(method: str, path: str, **kwargs: Any) -> Any:
    """The API's JSON answer, or one line ``error: ...`` and exit 1."""
    import httpx

    url, token = load_cli_config()
    try:
        with api_client(url, token) as client:
            response = client.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        _fail(f"cannot reach the API at {url}: {exc or type(exc).__name__}")
    if response.status_code >= 400:
        try:
            message = response.json().get("message")
        except (ValueError, AttributeError):
            message = None
        _fail(message or f"the API answered {response.status_code}")
    return response.json() if response.content else None


def _fail(message: str) -> NoReturn:
    from rich.markup import escape

    from runtime.console import error_console
    from runtime.masking import escape_controls

    error_console().print(f"[red]error:[/red] {escape(escape_controls(message))}")
    raise typer.Exit(EXIT_API_ERROR)


# -- local input --------------------------------------------------------------------------


def _read_code(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise bad_input(f"--code {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise bad_input(f"--code {path}: not UTF-8 text") from None


def _read_secrets(secret_file: Path | None, secret_env: list[str] | None) -> list[dict[str, str]]:
    from runtime.cli_sandbox import _secret_env, _secret_file

    values = _secret_file(secret_file) if secret_file is not None else {}
    values |= _secret_env(secret_env or [])
    return [{"name": name, "value": value} for name, value in values.items()]


def _print(data: Any, as_json: bool, text: str) -> None:
    if as_json:
        typer.echo(json.dumps(data, separators=(",", ":")))
    else:
        typer.echo(text)


def _shown(value: object) -> str:
    from rich.markup import escape

    from runtime.masking import escape_controls

    return escape(escape_controls(str(value)))


# -- commands -----------------------------------------------------------------------------

SecretFileOption = Annotated[
    Path | None,
    typer.Option(metavar="FILE", help="NAME=VALUE lines (dotenv syntax): the action's secrets."),
]
SecretEnvOption = Annotated[
    list[str] | None,
    typer.Option(metavar="NAME", help="Secret NAME is environment variable NAME's value."),
]


@actions_app.command("list")
def list_command(
    trigger: Annotated[
        TriggerOption | None, typer.Option(help="Only actions of this trigger.")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Only the action with this name.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List the tenant's actions."""
    params: dict[str, Any] = {"per_page": 100}
    if trigger is not None:
        params["triggerId"] = trigger.value
    if name is not None:
        params["actionName"] = name
    rows: list[dict[str, Any]] = []
    page = 0
    while True:  # every page: a tenant has at most 100 actions
        answer = _call("GET", ACTIONS, params={**params, "page": page})
        rows += answer["actions"]
        if len(rows) >= answer["total"] or not answer["actions"]:
            break
        page += 1
    if as_json:
        typer.echo(json.dumps(rows, separators=(",", ":")))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Actions")
    for column in ("name", "id", "trigger", "deployed", "all deployed", "updated"):
        table.add_column(column, overflow="fold")
    for row in rows:
        deployed = row.get("deployed_version")
        table.add_row(
            _shown(row["name"]),
            row["id"],
            ", ".join(t["id"] for t in row["supported_triggers"]),
            f"v{deployed['number']}" if deployed else "-",
            "yes" if row["all_changes_deployed"] else "no",
            row["updated_at"],
        )
    Console(highlight=False).print(table)


@actions_app.command("create")
def create_command(
    name: Annotated[str, typer.Argument(help="The action's name (unique in the tenant).")],
    code: Annotated[Path, typer.Option(metavar="FILE", help="The action's Python script.")],
    trigger: Annotated[
        TriggerOption, typer.Option(help="The trigger it runs for.")
    ] = TriggerOption.send_phone_message,
    secret_file: SecretFileOption = None,
    secret_env: SecretEnvOption = None,
    deploy: Annotated[bool, typer.Option("--deploy", help="Deploy it at once.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Create an action from a script (compiled by the service first)."""
    body = {
        "name": name,
        "supported_triggers": [{"id": trigger.value}],
        "code": _read_code(code),
        "secrets": _read_secrets(secret_file, secret_env),
        "deploy": deploy,
    }
    action = _call("POST", ACTIONS, json=body)
    state = f", deployed as v{action['deployed_version']['number']}" if deploy else ""
    _print(action, as_json, f"created {action['name']} ({action['id']}){state}")


@actions_app.command("update")
def update_command(
    action_id: Annotated[str, typer.Argument(metavar="ID", help="The action's id.")],
    name: Annotated[str | None, typer.Option(help="A new name.")] = None,
    code: Annotated[Path | None, typer.Option(metavar="FILE", help="A new script.")] = None,
    secret_file: SecretFileOption = None,
    secret_env: SecretEnvOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change an action (live only once deployed). Secrets given replace the set."""
    body: dict[str, Any] = {}
    if name is not None:
        body["name"] = name
    if code is not None:
        body["code"] = _read_code(code)
    if secret_file is not None or secret_env:
        body["secrets"] = _read_secrets(secret_file, secret_env)
    if not body:
        raise bad_input("nothing to change: give --name, --code, --secret-file or --secret-env")
    action = _call("PATCH", f"{ACTIONS}/{action_id}", json=body)
    _print(action, as_json, f"updated {action['name']} ({action['id']}); deploy to make it live")


@actions_app.command("deploy")
def deploy_command(
    action_id: Annotated[str, typer.Argument(metavar="ID", help="The action's id.")],
    as_json: JsonOption = False,
) -> None:
    """Deploy the action's current code as a new version."""
    version = _call("POST", f"{ACTIONS}/{action_id}/deploy")
    _print(version, as_json, f"deployed v{version['number']} ({version['id']})")


@actions_app.command("versions")
def versions_command(
    action_id: Annotated[str, typer.Argument(metavar="ID", help="The action's id.")],
    as_json: JsonOption = False,
) -> None:
    """List an action's versions, newest first."""
    rows: list[dict[str, Any]] = []
    page = 0
    while True:  # at most 50 versions are kept
        answer = _call(
            "GET", f"{ACTIONS}/{action_id}/versions", params={"page": page, "per_page": 100}
        )
        rows += answer["versions"]
        if len(rows) >= answer["total"] or not answer["versions"]:
            break
        page += 1
    if as_json:
        typer.echo(json.dumps(rows, separators=(",", ":")))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Versions")
    for column in ("number", "id", "deployed", "created"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            f"v{row['number']}", row["id"], "yes" if row["deployed"] else "", row["created_at"]
        )
    Console(highlight=False).print(table)


@actions_app.command("rollback")
def rollback_command(
    action_id: Annotated[str, typer.Argument(metavar="ID", help="The action's id.")],
    version_id: Annotated[
        str, typer.Argument(metavar="VERSION_ID", help="The version to deploy again.")
    ],
    as_json: JsonOption = False,
) -> None:
    """Deploy a copy of an earlier version (a new version number)."""
    version = _call("POST", f"{ACTIONS}/{action_id}/versions/{version_id}/deploy")
    _print(version, as_json, f"deployed v{version['number']} ({version['id']})")


@actions_app.command("test")
def run_test_command(
    action_id: Annotated[str, typer.Argument(metavar="ID", help="The action's id.")],
    event: Annotated[Path, typer.Option(metavar="FILE", help="Event JSON of either trigger.")],
    as_json: JsonOption = False,
) -> None:
    """Run the action's current code in the service's sandbox on an event; exit 1 unless it
    ends ok."""
    try:
        payload = json.loads(event.read_bytes())
    except OSError as exc:
        raise bad_input(f"--event {event}: {exc.strerror}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_input(f"--event {event}: not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise bad_input(f"--event {event}: an event must be a JSON object")
    answer = _call("POST", f"{ACTIONS}/{action_id}/test", json={"payload": payload})
    result = answer["payload"]
    if as_json:
        typer.echo(json.dumps(answer, separators=(",", ":")))
    else:
        _print_test(result)
    if result["outcome"] != "ok":
        raise typer.Exit(1)


def _print_test(result: dict[str, Any]) -> None:
    """The outcome and what the action did; its text escaped (no terminal control)."""
    from rich.console import Console

    console = Console(highlight=False)
    style = "green" if result["outcome"] == "ok" else "red"
    console.print(
        f"[{style}]{_shown(result['outcome'])}[/{style}] in "
        f"{result['stats']['duration_ms']:.1f} ms, handed off: {result['handed_off']}"
    )
    if result.get("error"):
        console.print(f"  error: {_shown(result['error'])}")
    for issue in result.get("errors", []):
        console.print(f"  line {issue['line']}: {_shown(issue['message'])}")
    for line in result.get("traceback", []):
        console.print(f"  {_shown(line)}")
    for call in result.get("http", []):
        console.print(f"  http {_shown(call['method'])} {_shown(call['url'])} -> {call['status']}")
    for line in result.get("logs", []):
        console.print(f"  log: {_shown(line)}")
    if result["outcome"] == "ok":
        console.print(f"  result: {_shown(json.dumps(result['result'], ensure_ascii=True))}")
