"""Recorded Auth0 phone trigger events (``tests/events``), shared by every test that replays them.

Valid events sit directly in :data:`EVENTS_DIR` (``spm_*.json`` for ``send-phone-message``,
``cpp_*.json`` for ``custom-phone-provider``); deliberately broken ones are under ``invalid/``.
See ``tests/events/README.md`` for what each file is for.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["EVENTS_DIR", "event_files", "load_event"]

EVENTS_DIR = Path(__file__).resolve().parent.parent / "events"


def load_event(name: str) -> dict[str, Any]:
    """A fresh copy of one recorded event, by file name with or without ``.json``.

    ``name`` may include a sub-folder (``"invalid/spm_missing_code"``). Each call returns a new
    dict, so a test may change it freely.
    """
    path = EVENTS_DIR / (name if name.endswith(".json") else f"{name}.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise TypeError(f"{path.name} holds a JSON {type(data).__name__}, not an event object")
    return data


def event_files(pattern: str = "*.json") -> list[Path]:
    """Event files in :data:`EVENTS_DIR` matching ``pattern``, sorted by name.

    The default lists the valid events only; ``"invalid/*.json"`` lists the broken ones,
    ``"spm_*.json"`` / ``"cpp_*.json"`` one trigger.
    """
    return sorted(p for p in EVENTS_DIR.glob(pattern) if p.is_file())
