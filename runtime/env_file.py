"""The ``.env`` file, for credentials as well as settings.

pydantic-settings reads ``PHONE_ACTIONS_*`` settings from the environment and from the
``.env`` file that :class:`runtime.settings.Settings` names. Credentials (the variables a
tenant's ``credentials_env`` names, and ``providers try``'s ``<PROVIDER>_<CREDENTIAL>``) are
read from the same two places, so an operator who keeps secrets in ``.env`` finds them there
for both. The process environment wins over the file, as it does for settings.
"""

from __future__ import annotations

import os
from collections import ChainMap
from collections.abc import Mapping
from os import PathLike
from pathlib import Path

__all__ = ["credentials_environ", "env_file_values"]


def env_file_values() -> dict[str, str]:
    """The variables of the ``.env`` file(s) settings read (relative to the current folder,
    as pydantic-settings resolves them); a missing file is no variables."""
    from dotenv import dotenv_values

    from runtime.settings import Settings

    configured = Settings.model_config.get("env_file")
    encoding = Settings.model_config.get("env_file_encoding")
    if configured is None:
        return {}
    files = [configured] if isinstance(configured, str | PathLike) else list(configured)
    values: dict[str, str] = {}
    for name in files:  # later files win, as in pydantic-settings
        path = Path(name).expanduser()
        if path.is_file():
            try:
                loaded = dotenv_values(path, encoding=encoding or "utf-8")
            except (UnicodeDecodeError, OSError):  # load_settings names it, in one line
                continue
            values.update({key: value for key, value in loaded.items() if value is not None})
    return values


def credentials_environ() -> Mapping[str, str]:
    """``os.environ`` over the ``.env`` values: a variable set in the process wins. The file
    is read now; the process environment is looked up live."""
    return ChainMap(os.environ, env_file_values())
