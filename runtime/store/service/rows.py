"""What the repositories return: frozen rows whose ``to_api()`` is Auth0's JSON shape.

No row ever holds a secret's or a credential's value: secrets appear as ``{name, updated_at}``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from runtime.store.service.common import iso

__all__ = ["ActionRow", "BindingRow", "TenantRow", "VersionRow"]


@dataclass(frozen=True)
class TenantRow:
    id: str
    friendly_name: str | None
    settings: dict[str, Any]  # delivery policy; never a credential (those are sealed apart)
    version: int
    created_at: datetime
    updated_at: datetime

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "friendly_name": self.friendly_name,
            "version": self.version,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }


@dataclass(frozen=True)
class VersionRow:
    """One immutable deployed version of an action."""

    id: str
    action_id: str
    tenant: str
    number: int
    code: str
    runtime: str
    supported_triggers: list[dict[str, Any]]
    dependencies: list[dict[str, Any]]
    secrets: list[dict[str, Any]]  # names and updated_at
    deployed: bool
    status: str
    built_at: datetime | None
    created_at: datetime
    updated_at: datetime

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "action_id": self.action_id,
            "number": self.number,
            "code": self.code,
            "runtime": self.runtime,
            "supported_triggers": self.supported_triggers,
            "dependencies": self.dependencies,
            "secrets": self.secrets,
            "deployed": self.deployed,
            "status": self.status,
            "errors": [],
            "built_at": iso(self.built_at),
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }


@dataclass(frozen=True)
class ActionRow:
    """An action's draft (what PATCH changes) and the version deployed, if any."""

    id: str
    tenant: str
    name: str
    supported_triggers: list[dict[str, Any]]
    code: str
    runtime: str
    dependencies: list[dict[str, Any]]
    secrets: list[dict[str, Any]]  # names and updated_at
    status: str
    deployed_version: VersionRow | None
    created_at: datetime
    updated_at: datetime
    all_changes_deployed: bool = field(default=False)

    @property
    def trigger_ids(self) -> list[str]:
        return [str(t.get("id")) for t in self.supported_triggers]

    def to_api(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "supported_triggers": self.supported_triggers,
            "code": self.code,
            "dependencies": self.dependencies,
            "runtime": self.runtime,
            "secrets": self.secrets,
            "status": self.status,
            "all_changes_deployed": self.all_changes_deployed,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }
        if self.deployed_version is not None:
            body["deployed_version"] = self.deployed_version.to_api()
        return body


@dataclass(frozen=True)
class BindingRow:
    """One action bound to a trigger, at ``position`` (execution order)."""

    id: str
    tenant: str
    trigger_id: str
    position: int
    display_name: str
    action: ActionRow
    created_at: datetime
    updated_at: datetime

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "trigger_id": self.trigger_id,
            "display_name": self.display_name,
            "action": self.action.to_api(),
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }
