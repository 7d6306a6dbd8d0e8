"""Actions, their immutable versions and their sealed secrets.

An action is a draft (PATCH changes it, nothing runs it) and a list of versions; deploying
copies the draft into a new immutable version and makes it the deployed one, which bound
triggers run at once. Rollback deploys a new version identical to an old one. Secret values
are sealed (AES-GCM, bound to tenant, action and name) and only :meth:`secret_values` opens
them, for execution.
"""

from __future__ import annotations

import builtins
import re
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Engine, and_, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from runtime.errors import ConflictError, InvalidInputError, LimitExceededError, NotFoundError
from runtime.store.crypto import Keyring
from runtime.store.db import write_transaction
from runtime.store.schema import action_secrets, action_versions, actions, trigger_bindings
from runtime.store.service.common import bump, dumps, iso, loads, now, text_field
from runtime.store.service.limits import (
    MAX_ACTIONS,
    MAX_CODE_BYTES,
    MAX_DEPENDENCIES,
    MAX_SECRET_NAME,
    MAX_SECRET_VALUE,
    MAX_SECRETS,
    MAX_VERSIONS,
    TRIGGERS,
)
from runtime.store.service.rows import ActionRow, VersionRow

__all__ = ["DEFAULT_RUNTIME", "ActionRepository", "secret_context"]

DEFAULT_RUNTIME = "python3.11"
RUNTIMES = (DEFAULT_RUNTIME,)
_UPDATABLE = {"name", "supported_triggers", "code", "runtime", "dependencies", "secrets"}


def secret_context(tenant: str, action_id: str, name: str) -> str:
    """Where a secret is sealed: a value copied into another row does not open."""
    return f"action-secret:{tenant}:{action_id}:{name}"


class ActionRepository:
    def __init__(self, engine: Engine, keyring: Keyring) -> None:
        self._engine = engine
        self._keyring = keyring

    # -- reading --------------------------------------------------------------------------

    def get(self, tenant: str, id: str) -> ActionRow:
        with self._engine.connect() as conn:
            return self.load_in(conn, tenant, id)

    def list(
        self,
        tenant: str,
        *,
        trigger_id: str | None = None,
        name: str | None = None,
        deployed: bool | None = None,
        page: int = 0,
        per_page: int = 50,
    ) -> tuple[builtins.list[ActionRow], int]:
        """One page of the tenant's actions (by creation), and how many match in all."""
        page, per_page = _paging(page, per_page)
        with self._engine.connect() as conn:
            query = select(actions.c.id, actions.c.supported_triggers).where(
                actions.c.tenant == tenant
            )
            if name is not None:
                query = query.where(actions.c.name == name)
            if deployed is not None:
                query = query.where(
                    actions.c.deployed_version_id.is_not(None)
                    if deployed
                    else actions.c.deployed_version_id.is_(None)
                )
            rows = conn.execute(query.order_by(actions.c.created_at, actions.c.id)).all()
            ids = [
                r.id
                for r in rows
                if trigger_id is None
                or trigger_id in [t.get("id") for t in loads(r.supported_triggers, [])]
            ]
            chosen = ids[page * per_page : (page + 1) * per_page]
            return [self.load_in(conn, tenant, i) for i in chosen], len(ids)

    def versions(
        self, tenant: str, id: str, *, page: int = 0, per_page: int = 50
    ) -> tuple[builtins.list[VersionRow], int]:
        """The action's versions, newest first."""
        page, per_page = _paging(page, per_page)
        with self._engine.connect() as conn:
            self._action(conn, tenant, id)
            rows = conn.execute(
                select(action_versions)
                .where(action_versions.c.action_id == id, action_versions.c.tenant == tenant)
                .order_by(action_versions.c.number.desc())
            ).all()
        chosen = rows[page * per_page : (page + 1) * per_page]
        return [_version(r._mapping) for r in chosen], len(rows)

    def version(self, tenant: str, id: str, version_id: str) -> VersionRow:
        with self._engine.connect() as conn:
            return self._version(conn, tenant, id, version_id)

    def secret_values(self, tenant: str, id: str) -> dict[str, str]:
        """The action's secrets, opened: for running it, never for the API."""
        with self._engine.connect() as conn:
            self._action(conn, tenant, id)
            rows = conn.execute(
                select(action_secrets.c.name, action_secrets.c.value_sealed).where(
                    action_secrets.c.action_id == id, action_secrets.c.tenant == tenant
                )
            ).all()
        return {
            r.name: self._keyring.open(r.value_sealed, secret_context(tenant, id, r.name)).decode()
            for r in rows
        }

    # -- changing -------------------------------------------------------------------------

    def create(
        self,
        tenant: str,
        *,
        name: str,
        supported_triggers: Any,
        code: str,
        runtime: str = DEFAULT_RUNTIME,
        dependencies: Any = (),
        secrets: Any = (),
    ) -> ActionRow:
        draft = {
            "name": _name(name),
            "supported_triggers": _triggers(supported_triggers),
            "code": _code(code),
            "runtime": _runtime(runtime),
            "dependencies": _dependencies(dependencies),
        }
        given = _secrets(secrets)
        id = str(uuid.uuid4())
        try:
            return self._create(tenant, id, draft, given)
        except IntegrityError:  # PostgreSQL: a concurrent create took the name first
            raise ConflictError(f"an action named {draft['name']!r} already exists") from None

    def _create(
        self,
        tenant: str,
        id: str,
        draft: dict[str, Any],
        given: builtins.list[tuple[str, str | None]],
    ) -> ActionRow:
        moment = now()
        with write_transaction(self._engine) as conn:
            bump(conn, tenant)  # first: locks the tenant's row, so the count below is exact
            count = conn.execute(
                select(func.count()).select_from(actions).where(actions.c.tenant == tenant)
            ).scalar_one()
            if count >= MAX_ACTIONS:
                raise LimitExceededError(
                    f"a tenant has at most {MAX_ACTIONS} actions", field="actions"
                )
            self._unique_name(conn, tenant, draft["name"], None)
            conn.execute(
                insert(actions).values(
                    id=id,
                    tenant=tenant,
                    name=draft["name"],
                    supported_triggers=dumps(draft["supported_triggers"]),
                    code=draft["code"],
                    runtime=draft["runtime"],
                    dependencies=dumps(draft["dependencies"]),
                    status="built",
                    deployed_version_id=None,
                    created_at=moment,
                    updated_at=moment,
                )
            )
            self._write_secrets(conn, tenant, id, given)
            return self.load_in(conn, tenant, id)

    def update(self, tenant: str, id: str, **fields: Any) -> ActionRow:
        """Change the draft; ``secrets`` replaces the set (an entry without ``value`` keeps
        its stored value). Nothing runs the change until it is deployed, but for the secrets:
        the deployed version reads the stored ones."""
        unknown = sorted(set(fields) - _UPDATABLE)
        if unknown:
            raise InvalidInputError("unknown field", field=unknown[0])
        values: dict[str, Any] = {}
        if "name" in fields:
            values["name"] = _name(fields["name"])
        if "supported_triggers" in fields:
            values["supported_triggers"] = dumps(_triggers(fields["supported_triggers"]))
        if "code" in fields:
            values["code"] = _code(fields["code"])
        if "runtime" in fields:
            values["runtime"] = _runtime(fields["runtime"])
        if "dependencies" in fields:
            values["dependencies"] = dumps(_dependencies(fields["dependencies"]))
        given = _secrets(fields["secrets"], keep=True) if "secrets" in fields else None
        with write_transaction(self._engine) as conn:
            bump(conn, tenant)
            self._action(conn, tenant, id)
            if "name" in values:
                self._unique_name(conn, tenant, values["name"], id)
            if values or given is not None:  # a change of the secrets alone is a change too
                conn.execute(
                    update(actions).where(actions.c.id == id).values(**values, updated_at=now())
                )
            if given is not None:
                self._write_secrets(conn, tenant, id, given)
            return self.load_in(conn, tenant, id)

    def delete(self, tenant: str, id: str, *, force: bool = False) -> None:
        """Delete the action, its versions and secrets; a bound action only with ``force``
        (its bindings go with it)."""
        with write_transaction(self._engine) as conn:
            bump(conn, tenant)
            self._action(conn, tenant, id)
            bound = and_(trigger_bindings.c.tenant == tenant, trigger_bindings.c.action_id == id)
            if not force and conn.execute(select(trigger_bindings.c.id).where(bound)).first():
                raise ConflictError(
                    "the action is bound to a trigger; remove the binding or delete with force=true"
                )
            conn.execute(delete(trigger_bindings).where(bound))
            conn.execute(delete(action_secrets).where(action_secrets.c.action_id == id))
            conn.execute(delete(action_versions).where(action_versions.c.action_id == id))
            conn.execute(delete(actions).where(actions.c.id == id))

    def deploy(self, tenant: str, id: str) -> VersionRow:
        """A new immutable version from the draft, deployed at once."""
        with write_transaction(self._engine) as conn:
            bump(conn, tenant)
            row = self._action(conn, tenant, id)
            return self._deploy(
                conn,
                tenant,
                id,
                code=row.code,
                runtime=row.runtime,
                supported_triggers=row.supported_triggers,
                dependencies=row.dependencies,
            )

    def rollback(self, tenant: str, id: str, version_id: str) -> VersionRow:
        """A new deployed version identical to ``version_id``; the draft becomes it too."""
        with write_transaction(self._engine) as conn:
            bump(conn, tenant)
            self._action(conn, tenant, id)
            old = self._version(conn, tenant, id, version_id)
            conn.execute(
                update(actions)
                .where(actions.c.id == id)
                .values(
                    code=old.code,
                    runtime=old.runtime,
                    supported_triggers=dumps(old.supported_triggers),
                    dependencies=dumps(old.dependencies),
                    updated_at=now(),
                )
            )
            return self._deploy(
                conn,
                tenant,
                id,
                code=old.code,
                runtime=old.runtime,
                supported_triggers=dumps(old.supported_triggers),
                dependencies=dumps(old.dependencies),
            )

    # -- inside a transaction -------------------------------------------------------------

    def _deploy(
        self,
        conn: Connection,
        tenant: str,
        id: str,
        *,
        code: str,
        runtime: str,
        supported_triggers: str,
        dependencies: str,
    ) -> VersionRow:
        number = conn.execute(
            select(func.coalesce(func.max(action_versions.c.number), 0)).where(
                action_versions.c.action_id == id
            )
        ).scalar_one()
        version_id = str(uuid.uuid4())
        moment = now()
        conn.execute(
            update(action_versions)
            .where(action_versions.c.action_id == id, action_versions.c.deployed.is_(True))
            .values(deployed=False, updated_at=moment)
        )
        conn.execute(
            insert(action_versions).values(
                id=version_id,
                action_id=id,
                tenant=tenant,
                number=int(number) + 1,
                code=code,
                runtime=runtime,
                supported_triggers=supported_triggers,
                dependencies=dependencies,
                secrets=dumps(self._secret_names(conn, id)),
                deployed=True,
                status="built",
                built_at=moment,
                created_at=moment,
                updated_at=moment,
            )
        )
        conn.execute(
            update(actions)
            .where(actions.c.id == id)
            .values(deployed_version_id=version_id, status="built", updated_at=moment)
        )
        self._cap_versions(conn, id)
        return self._version(conn, tenant, id, version_id)

    def _cap_versions(self, conn: Connection, id: str) -> None:
        """Beyond :data:`MAX_VERSIONS`, delete the oldest versions not deployed."""
        rows = conn.execute(
            select(action_versions.c.id, action_versions.c.deployed)
            .where(action_versions.c.action_id == id)
            .order_by(action_versions.c.number)
        ).all()
        excess = len(rows) - MAX_VERSIONS
        doomed = [r.id for r in rows if not r.deployed][: max(0, excess)]
        if doomed:
            conn.execute(delete(action_versions).where(action_versions.c.id.in_(doomed)))

    def _write_secrets(
        self, conn: Connection, tenant: str, id: str, given: builtins.list[tuple[str, str | None]]
    ) -> None:
        """Replace the action's secrets by ``given``; a ``None`` value keeps the stored one
        (its ``updated_at`` too)."""
        kept = {
            r.name: r
            for r in conn.execute(
                select(action_secrets).where(action_secrets.c.action_id == id)
            ).all()
        }
        for name, value in given:
            if value is None and name not in kept:
                raise InvalidInputError(
                    f"secret {name!r} has no stored value: give one", field="secrets.value"
                )
        conn.execute(delete(action_secrets).where(action_secrets.c.action_id == id))
        moment = now()
        for name, value in given:
            old = kept.get(name)
            if value is None and old is not None:
                sealed, created, updated = old.value_sealed, old.created_at, old.updated_at
            else:
                assert value is not None
                sealed = self._keyring.seal(value.encode(), secret_context(tenant, id, name))
                created, updated = (old.created_at if old else moment), moment
            conn.execute(
                insert(action_secrets).values(
                    action_id=id,
                    name=name,
                    tenant=tenant,
                    value_sealed=sealed,
                    created_at=created,
                    updated_at=updated,
                )
            )

    def _secret_names(self, conn: Connection, id: str) -> builtins.list[dict[str, Any]]:
        rows = conn.execute(
            select(action_secrets.c.name, action_secrets.c.updated_at)
            .where(action_secrets.c.action_id == id)
            .order_by(action_secrets.c.name)
        ).all()
        return [{"name": r.name, "updated_at": iso(r.updated_at)} for r in rows]

    def _unique_name(self, conn: Connection, tenant: str, name: str, own: str | None) -> None:
        found = conn.execute(
            select(actions.c.id).where(actions.c.tenant == tenant, actions.c.name == name)
        ).first()
        if found is not None and found.id != own:
            raise ConflictError(f"an action named {name!r} already exists")

    def _action(self, conn: Connection, tenant: str, id: str) -> Any:
        row = conn.execute(
            select(actions).where(actions.c.id == id, actions.c.tenant == tenant)
        ).first()
        if row is None:  # another tenant's action is not found either
            raise NotFoundError(f"no action {id!r}")
        return row

    def _version(self, conn: Connection, tenant: str, id: str, version_id: str) -> VersionRow:
        row = conn.execute(
            select(action_versions).where(
                action_versions.c.id == version_id,
                action_versions.c.action_id == id,
                action_versions.c.tenant == tenant,
            )
        ).first()
        if row is None:
            raise NotFoundError(f"no version {version_id!r} of action {id!r}")
        return _version(row._mapping)

    def load_in(self, conn: Connection, tenant: str, id: str) -> ActionRow:
        row = self._action(conn, tenant, id)
        deployed = (
            self._version(conn, tenant, id, row.deployed_version_id)
            if row.deployed_version_id
            else None
        )
        secrets = self._secret_names(conn, id)
        triggers = loads(row.supported_triggers, [])
        dependencies = loads(row.dependencies, [])
        return ActionRow(
            id=row.id,
            tenant=row.tenant,
            name=row.name,
            supported_triggers=triggers,
            code=row.code,
            runtime=row.runtime,
            dependencies=dependencies,
            secrets=secrets,
            status=row.status,
            deployed_version=deployed,
            created_at=row.created_at,
            updated_at=row.updated_at,
            # secrets are not part of it: the deployed version reads the stored ones, so a
            # change of them is live without a deploy (docs/service.md, Actions API)
            all_changes_deployed=deployed is not None
            and (deployed.code, deployed.runtime, deployed.supported_triggers)
            == (row.code, row.runtime, triggers)
            and deployed.dependencies == dependencies,
        )


# -- validation: one error naming the field -----------------------------------------------


def _paging(page: int, per_page: int) -> tuple[int, int]:
    if page < 0:
        raise InvalidInputError("must be 0 or more", field="page")
    if not 1 <= per_page <= 100:
        raise InvalidInputError("must be 1 to 100", field="per_page")
    return page, per_page


def _name(value: object) -> str:
    return text_field(value, "name", maximum=255).strip() or _blank("name")


def _blank(field: str) -> str:
    raise InvalidInputError("must not be blank", field=field)


def _code(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidInputError("must be a string", field="code")
    size = len(value.encode("utf-8"))
    if size > MAX_CODE_BYTES:
        raise LimitExceededError(
            f"{size} bytes; the limit is {MAX_CODE_BYTES} bytes (100 kB)", field="code"
        )
    return value


def _runtime(value: object) -> str:
    if value not in RUNTIMES:
        raise InvalidInputError(f"must be one of {', '.join(RUNTIMES)}", field="runtime")
    return str(value)


def _triggers(value: object) -> list[dict[str, Any]]:
    if not isinstance(value, list | tuple) or len(value) != 1:
        raise InvalidInputError(
            "must list exactly one trigger (an action targets a single trigger)",
            field="supported_triggers",
        )
    [item] = value
    if not isinstance(item, Mapping) or set(item) - {"id", "version"}:
        raise InvalidInputError("must be {id, version}", field="supported_triggers.0")
    if item.get("id") not in TRIGGERS:
        raise InvalidInputError(
            f"must be one of {', '.join(TRIGGERS)}", field="supported_triggers.0.id"
        )
    version = item.get("version", "v1" if item["id"] == "custom-phone-provider" else "v2")
    if not isinstance(version, str) or not 1 <= len(version) <= 16:
        raise InvalidInputError("must be a short string", field="supported_triggers.0.version")
    return [{"id": item["id"], "version": version}]


def _dependencies(value: object) -> list[dict[str, Any]]:
    if not isinstance(value, list | tuple):
        raise InvalidInputError("must be a list", field="dependencies")
    if len(value) > MAX_DEPENDENCIES:
        raise LimitExceededError(
            f"at most {MAX_DEPENDENCIES} dependencies, not {len(value)}", field="dependencies"
        )
    out = []
    for number, item in enumerate(value):
        field = f"dependencies.{number}"
        if not isinstance(item, Mapping) or set(item) - {"name", "version", "registry_url"}:
            raise InvalidInputError("must be {name, version, registry_url}", field=field)
        out.append(
            {
                key: text_field(item[key], f"{field}.{key}", maximum=255)
                for key in ("name", "version", "registry_url")
                if key in item
            }
        )
        if "name" not in item:
            raise InvalidInputError("is required", field=f"{field}.name")
    return out


def _secrets(value: object, *, keep: bool = False) -> list[tuple[str, str | None]]:
    """``[{name, value}]`` checked against Auth0's limits; ``keep`` allows a missing value."""
    if not isinstance(value, list | tuple):
        raise InvalidInputError("must be a list of {name, value}", field="secrets")
    if len(value) > MAX_SECRETS:
        raise LimitExceededError(
            f"at most {MAX_SECRETS} secrets, not {len(value)}", field="secrets"
        )
    out: list[tuple[str, str | None]] = []
    seen: set[str] = set()
    for number, item in enumerate(value):
        field = f"secrets.{number}"
        if not isinstance(item, Mapping) or set(item) - {"name", "value"}:
            raise InvalidInputError("must be {name, value}", field=field)
        name = item.get("name")
        if not isinstance(name, str):
            raise InvalidInputError("must be a string", field=f"{field}.name")
        if len(name) > MAX_SECRET_NAME:
            raise LimitExceededError(
                f"{len(name)} characters; the limit is {MAX_SECRET_NAME}", field=f"{field}.name"
            )
        if not _secret_name().fullmatch(name):
            raise InvalidInputError(
                "must be letters, digits and '_', not starting with a digit",
                field=f"{field}.name",
            )
        if name in seen:
            raise InvalidInputError(f"{name!r} given twice", field=f"{field}.name")
        seen.add(name)
        secret = item.get("value")
        if secret is None and keep:
            out.append((name, None))
            continue
        if not isinstance(secret, str):
            raise InvalidInputError("must be a string", field=f"{field}.value")
        if len(secret) > MAX_SECRET_VALUE:
            raise LimitExceededError(
                f"{len(secret)} characters; the limit is {MAX_SECRET_VALUE}",
                field=f"{field}.value",
            )
        out.append((name, secret))
    return out


def _secret_name() -> re.Pattern[str]:
    """The sandbox's rule for a secret's name (one rule: the API, the tenants file and
    ``test-action`` accept the same names). Imported here, not with the module: the store
    does not load the sandbox for the commands that never run an action."""
    from runtime.sandbox.host.runner import SECRET_NAME

    return SECRET_NAME


def _version(m: Any) -> VersionRow:
    return VersionRow(
        id=m["id"],
        action_id=m["action_id"],
        tenant=m["tenant"],
        number=int(m["number"]),
        code=m["code"],
        runtime=m["runtime"],
        supported_triggers=loads(m["supported_triggers"], []),
        dependencies=loads(m["dependencies"], []),
        secrets=loads(m["secrets"], []),
        deployed=bool(m["deployed"]),
        status=m["status"],
        built_at=m["built_at"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
    )
