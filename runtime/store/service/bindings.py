"""Trigger bindings: which deployed actions a trigger runs, in order (Auth0's PATCH replaces
the whole list). A ref names an action by ``action_id`` or ``action_name``, or keeps an
existing binding by ``binding_id``."""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select

from runtime.errors import InvalidInputError, LimitExceededError, NotFoundError
from runtime.store.crypto import Keyring
from runtime.store.db import write_transaction
from runtime.store.schema import actions, trigger_bindings
from runtime.store.service.actions import ActionRepository
from runtime.store.service.common import bump, now
from runtime.store.service.limits import MAX_BINDINGS, TRIGGERS
from runtime.store.service.rows import BindingRow

__all__ = ["BindingRepository"]

_REF_TYPES = ("binding_id", "action_id", "action_name")


class BindingRepository:
    def __init__(self, engine: Engine, keyring: Keyring, actions: ActionRepository) -> None:
        self._engine = engine
        self._keyring = keyring
        self._actions = actions

    def list(self, tenant: str, trigger_id: str) -> list[BindingRow]:
        _trigger(trigger_id)
        with self._engine.connect() as conn:
            return self._list(conn, tenant, trigger_id)

    def replace(
        self, tenant: str, trigger_id: str, refs: builtins.list[dict[str, Any]]
    ) -> builtins.list[BindingRow]:
        """Bind exactly ``refs`` (Auth0's ``bindings[]`` items), in that order. Each names a
        deployed action of this tenant that supports ``trigger_id``."""
        _trigger(trigger_id)
        if not isinstance(refs, list):
            raise InvalidInputError("must be a list", field="bindings")
        if len(refs) > MAX_BINDINGS:
            raise LimitExceededError(
                f"a trigger has at most {MAX_BINDINGS} bindings, not {len(refs)}",
                field="bindings",
            )
        with write_transaction(self._engine) as conn:
            bump(conn, tenant)  # first: locks the tenant's row for this change
            existing = {
                r.id: r
                for r in conn.execute(
                    select(trigger_bindings).where(
                        trigger_bindings.c.tenant == tenant,
                        trigger_bindings.c.trigger_id == trigger_id,
                    )
                ).all()
            }
            chosen = [
                self._resolve(conn, tenant, trigger_id, number, item, existing)
                for number, item in enumerate(refs)
            ]
            conn.execute(
                delete(trigger_bindings).where(
                    trigger_bindings.c.tenant == tenant,
                    trigger_bindings.c.trigger_id == trigger_id,
                )
            )
            moment = now()
            for position, (binding_id, action_id, display_name, created) in enumerate(chosen):
                conn.execute(
                    insert(trigger_bindings).values(
                        id=binding_id,
                        tenant=tenant,
                        trigger_id=trigger_id,
                        position=position,
                        action_id=action_id,
                        display_name=display_name,
                        created_at=created or moment,
                        updated_at=moment,
                    )
                )
            return self._list(conn, tenant, trigger_id)

    def _resolve(
        self,
        conn: Connection,
        tenant: str,
        trigger_id: str,
        number: int,
        item: object,
        existing: dict[str, Any],
    ) -> tuple[str, str, str, Any]:
        field = f"bindings.{number}"
        if not isinstance(item, Mapping) or set(item) - {"ref", "display_name", "secrets"}:
            raise InvalidInputError("must be {ref, display_name}", field=field)
        ref = item.get("ref")
        if not isinstance(ref, Mapping) or set(ref) != {"type", "value"}:
            raise InvalidInputError("must be {type, value}", field=f"{field}.ref")
        kind, value = ref["type"], ref["value"]
        if kind not in _REF_TYPES:
            raise InvalidInputError(
                f"must be one of {', '.join(_REF_TYPES)}", field=f"{field}.ref.type"
            )
        if not isinstance(value, str) or not value:
            raise InvalidInputError("must be a non-empty string", field=f"{field}.ref.value")
        display = item.get("display_name")
        if display is not None and (not isinstance(display, str) or len(display) > 255):
            raise InvalidInputError(
                "must be a string of at most 255", field=f"{field}.display_name"
            )
        if kind == "binding_id":
            old = existing.get(value)
            if old is None:
                raise NotFoundError(f"{field}.ref.value: no binding {value!r} on {trigger_id}")
            return old.id, old.action_id, display or old.display_name, old.created_at
        column = actions.c.id if kind == "action_id" else actions.c.name
        row = conn.execute(
            select(actions).where(actions.c.tenant == tenant, column == value)
        ).first()
        if row is None:
            raise NotFoundError(f"{field}.ref.value: no action {value!r}")
        action = self._actions.load_in(conn, tenant, row.id)
        if trigger_id not in action.trigger_ids:
            raise InvalidInputError(
                f"action {action.name!r} does not support {trigger_id}", field=f"{field}.ref"
            )
        if action.deployed_version is None:
            raise InvalidInputError(
                f"action {action.name!r} is not deployed: deploy it first", field=f"{field}.ref"
            )
        return str(uuid.uuid4()), action.id, display or action.name, None

    def _list(self, conn: Connection, tenant: str, trigger_id: str) -> builtins.list[BindingRow]:
        rows = conn.execute(
            select(trigger_bindings)
            .where(trigger_bindings.c.tenant == tenant, trigger_bindings.c.trigger_id == trigger_id)
            .order_by(trigger_bindings.c.position)
        ).all()
        return [
            BindingRow(
                id=r.id,
                tenant=r.tenant,
                trigger_id=r.trigger_id,
                position=r.position,
                display_name=r.display_name,
                action=self._actions.load_in(conn, tenant, r.action_id),
                created_at=r.created_at,
                updated_at=r.updated_at,
            )
            for r in rows
        ]


def _trigger(trigger_id: str) -> None:
    if trigger_id not in TRIGGERS:
        raise NotFoundError(f"no trigger {trigger_id!r} (this runtime has {', '.join(TRIGGERS)})")
