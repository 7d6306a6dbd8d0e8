"""The ``.env`` file, for credentials as well as settings.

pydantic-settings reads ``PHONE_ACTIONS_*`` settings from the environment and from the
``.env`` file that :class:`runtime.settings.Settings` names. Credentials (the variables a
tenant's ``credentials_env`` names, and ``providers try``'s ``<PROVIDER>_<CREDENTIAL>``) are
read from the same two places, so an operator who keeps secrets in ``.env`` finds them there
for both. The process environment wins over the file, as it does for settings.
"""

from __future__ import annotations

import difflib
import errno
import os
import re
from collections import ChainMap
from collections.abc import Iterator, Mapping
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dotenv.parser import Binding

__all__ = [
    "check_env_file",
    "credentials_environ",
    "env_file_line",
    "env_file_values",
    "misspelt_setting",
]

# The project's other PHONE_ACTIONS_ variables, no settings: the ``actions`` commands' (read
# from the environment) and the test suite's. A shell (``set -a; . ./.env``) or compose that
# exports the file may carry them, so they are no typo there.
_NOT_SETTINGS = (
    *("API_URL", "API_TOKEN", "CLI_CONFIG"),
    *("REQUIRE_SERVICES", "CHROMIUM", "CONSOLE_SCREENSHOTS", "SPECS_DIR"),
)
_NOT_SETTINGS_PREFIXES = ("TEST_",)
TYPO_CUTOFF = 0.8
"""How close (difflib's ratio) a ``PHONE_ACTIONS_`` name of ``.env`` must be to a setting's to
be refused as its misspelling (``DATABSE_URL``: 0.96); farther names are taken for
credentials."""

_NEWLINE = re.compile(r"\r\n|\n|\r")
_NAME_START = re.compile(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)[^\S\r\n]*(=?)[^\S\r\n]*(.?)")


def _env_files() -> Iterator[tuple[Path, str]]:
    """The ``.env`` files settings read that exist (relative to the current folder, as
    pydantic-settings resolves them), each with its encoding; later files win. One that is
    there but is no file (a folder Docker made for a missing bind mount, a dangling link)
    raises :class:`OSError`, which :func:`runtime.settings.load_settings` names."""
    from runtime.settings import Settings

    configured = Settings.model_config.get("env_file")
    encoding = Settings.model_config.get("env_file_encoding") or "utf-8"
    if configured is None:
        return
    files = [configured] if isinstance(configured, str | PathLike) else list(configured)
    for name in files:
        path = Path(name).expanduser()
        if path.is_file():
            yield path, encoding
        elif path.is_dir():
            raise IsADirectoryError(errno.EISDIR, "is a folder, not a file", str(path))
        elif path.is_symlink():
            raise FileNotFoundError(errno.ENOENT, "is a link to nothing", str(path))


def env_file_values() -> dict[str, str]:
    """The variables of the ``.env`` file(s) settings read; a missing file is no variables."""
    from dotenv import dotenv_values

    values: dict[str, str] = {}
    try:
        files = list(_env_files())
    except OSError:  # load_settings names it, in one line
        files = []
    for path, encoding in files:  # later files win, as in pydantic-settings
        try:
            loaded = dotenv_values(path, encoding=encoding)
        except (UnicodeDecodeError, OSError):  # load_settings names it, in one line
            continue
        values.update({key: value for key, value in loaded.items() if value is not None})
    return values


def _bindings() -> Iterator[tuple[str, Binding]]:
    """Each statement of the ``.env`` file(s), with ``<file> line <n>``; a file that is not
    text or cannot be read raises (:func:`runtime.settings.load_settings` names it)."""
    from dotenv.parser import parse_stream

    for path, encoding in _env_files():
        with path.open(encoding=encoding) as stream:
            bindings = list(parse_stream(stream))
        for binding in bindings:
            # python-dotenv counts from the blank lines before the statement: skip them
            text = binding.original.string
            blank = text[: len(text) - len(text.lstrip())]
            yield f"{path} line {binding.original.line + len(_NEWLINE.findall(blank))}", binding


def _unparsable(first_line: str) -> str:
    """Why python-dotenv could not parse a statement, in the operator's words (never the value:
    it may be a secret)."""
    match = _NAME_START.match(first_line)
    if match is None:
        return "cannot be parsed (want NAME=value)"
    name, equals, quote = match.groups()
    if not equals:
        return f"{name}: cannot be parsed (no = after the name)"
    if quote in ("'", '"'):
        reason = "a quote that is not closed, or text after the closing quote"
        return f"{name}: cannot be parsed ({reason})"
    return f"{name}: cannot be parsed (want NAME=value)"


def misspelt_setting(variable: str) -> str | None:
    """The setting's variable ``variable`` (any case) probably misspells, or None: a
    ``PHONE_ACTIONS_`` name that is no setting nor one of the project's other variables, and
    close to a setting's name (:data:`TYPO_CUTOFF`). A name close to no setting may well be a
    credential a tenant's ``credentials_env`` names (``PHONE_ACTIONS_ACME_SID``)."""
    from runtime.settings import Settings

    prefix = str(Settings.model_config.get("env_prefix") or "").upper()
    if not variable.upper().startswith(prefix):
        return None
    name = variable.upper().removeprefix(prefix)
    names = [field.upper() for field in Settings.model_fields]
    if name in names or name in _NOT_SETTINGS or name.startswith(_NOT_SETTINGS_PREFIXES):
        return None
    # on the names without the prefix: with it, every name would be close
    close = difflib.get_close_matches(name, names, n=1, cutoff=TYPO_CUTOFF)
    return f"{prefix}{close[0]}" if close else None


def check_env_file() -> None:
    """Refuse the ``.env`` file's first bad line, naming the file and the line: one that
    python-dotenv cannot parse or a name without ``=`` (it would skip them, losing a setting
    or a secret), or a ``PHONE_ACTIONS_`` name that is a setting's misspelling
    (pydantic-settings would ignore it), with that setting's name. Other variables are
    credentials and stay accepted; so do prefixed variables of the process environment,
    which are not the file's business."""
    from runtime.errors import ConfigurationError

    for where, binding in _bindings():
        if binding.error:
            first_line = next(iter(binding.original.string.lstrip().splitlines()), "")
            raise ConfigurationError(f"invalid settings: {where}: {_unparsable(first_line)}")
        key = binding.key
        if key is not None and binding.value is None:  # a name alone: its value is lost
            raise ConfigurationError(
                f"invalid settings: {where}: {key}: cannot be parsed (no = after the name)"
            )
        meant = misspelt_setting(key) if key is not None else None
        if meant is not None:
            raise ConfigurationError(
                f"invalid settings: {where}: {key} is not a setting (did you mean {meant}?)"
            )


def env_file_line(variable: str) -> str | None:
    """``<file> line <n>`` of the statement that sets ``variable`` (any case, as settings are
    read; the last one wins), or None when no ``.env`` file sets it."""
    found = None
    for where, binding in _bindings():
        if binding.key is not None and binding.key.upper() == variable.upper():
            found = where
    return found


def credentials_environ() -> Mapping[str, str]:
    """``os.environ`` over the ``.env`` values: a variable set in the process wins. The file
    is read now; the process environment is looked up live."""
    return ChainMap(os.environ, env_file_values())
