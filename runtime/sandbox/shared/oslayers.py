"""Which operating-system layers the sandbox asks for, and how their state is reported.

The zygote decides once, at start, which layers this host supports (:data:`LAYERS`) and says
so in its hello; the pool logs one warning per missing layer and ``phone-actions doctor``
prints them all. A missing layer degrades the sandbox, it does not stop it (only seccomp can be
required, with ``sandbox_require_seccomp``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Final, Protocol

__all__ = ["LAYERS", "Layer", "OsIsolation", "isolation_from_settings", "layers_from_hello"]

LAYERS: Final = (
    "mount namespace",
    "network namespace",
    "per-tenant uid",
    "cgroup memory",
    "cgroup pids",
    "seccomp",
    "rlimits",
)
"""Every OS layer, in the order doctor prints them."""


@dataclass(frozen=True)
class OsIsolation:
    """The operator's choices (``sandbox_*`` settings); the host may still lack a layer."""

    namespaces: bool = True
    uid_base: int = 100_000
    uid_count: int = 65_536
    cgroup_dir: str = "auto"
    worker_pids: int = 8

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> OsIsolation:
        return cls(**{key: raw[key] for key in cls.__dataclass_fields__ if key in raw})


@dataclass(frozen=True)
class Layer:
    """One layer's state on this host, with a sentence saying what it does or why it is off."""

    name: str
    active: bool
    detail: str


class _SandboxSettings(Protocol):
    @property
    def sandbox_namespaces(self) -> bool: ...
    @property
    def sandbox_uid_base(self) -> int: ...
    @property
    def sandbox_uid_count(self) -> int: ...
    @property
    def sandbox_cgroup_dir(self) -> str: ...


def isolation_from_settings(settings: _SandboxSettings) -> OsIsolation:
    """The :class:`OsIsolation` that :class:`runtime.settings.Settings` asks for."""
    return OsIsolation(
        namespaces=settings.sandbox_namespaces,
        uid_base=settings.sandbox_uid_base,
        uid_count=settings.sandbox_uid_count,
        cgroup_dir=settings.sandbox_cgroup_dir,
    )


def layers_from_hello(hello: dict[str, Any]) -> list[Layer]:
    """The zygote's report as :class:`Layer` rows, every name of :data:`LAYERS` present."""
    raw = hello.get("layers")
    reported = raw if isinstance(raw, dict) else {}
    rows = []
    for name in LAYERS:
        entry = reported.get(name)
        if isinstance(entry, list) and len(entry) == 2:
            rows.append(Layer(name, entry[0] is True, str(entry[1])))
        else:
            rows.append(Layer(name, False, "not reported by the zygote"))
    return rows
