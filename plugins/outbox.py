"""The default sender: an outbox that stores each message locally instead of sending it.

Like Auth0's evaluation sender it carries SMS only and has a lifetime cap per tenant (100 by
default, ``PHONE_ACTIONS_OUTBOX_CAP``), so a tenant notices it must configure a real provider.
``phone-actions outbox`` lists what it holds.

Its table lives in the runtime database (``PHONE_ACTIONS_DATABASE_URL``, SQLite in the data
folder by default), made by the runtime's one Alembic migration chain, rather than in a file
of its own: one chain is one lock and one version table to keep, and when nodes share
PostgreSQL they share the outbox, so its cap holds for the deployment, not per node.

The cap is exact: the count and the insert run in one write transaction (SQLite ``BEGIN
IMMEDIATE`` takes the write lock before counting; PostgreSQL takes a per-tenant advisory lock
first). The store call runs on a :class:`~runtime.store.StoreExecutor` of its own, with the
attempt's budget as its deadline: a locked or lost database fails the attempt (not handed
off), it never blocks the event loop.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from pydantic import BaseModel, ConfigDict
from sqlalchemy import Engine, bindparam, func, insert, select, text
from sqlalchemy.engine import make_url

from runtime import hookimpl
from runtime.errors import ProviderError, StoreUnavailableError
from runtime.events import Channel
from runtime.provider_kit.base import ProviderBase
from runtime.providers import PhoneMessage, Receipt
from runtime.settings import Settings
from runtime.store import StoreExecutor, create_engine_for, migrate
from runtime.store.db import (
    DATABASE_ERRORS,
    DEFAULT_TIMEOUT,
    sqlite_file,
    unavailable,
    write_transaction,
)
from runtime.store.schema import outbox_messages
from runtime.wording import count

__all__ = [
    "OutboxMessage",
    "OutboxProvider",
    "outbox_command",
    "register_commands",
    "register_providers",
]

_m = outbox_messages.c
_COUNT = select(func.count()).where(_m.tenant == bindparam("w_tenant"))
_INSERT = insert(outbox_messages)
# Two-key advisory lock: the outbox's namespace, then the tenant. Held to the commit.
_TENANT_LOCK = text("SELECT pg_advisory_xact_lock(1869968504, hashtext(:tenant))")


class OutboxConfig(BaseModel):
    """The outbox has no settings."""

    model_config = ConfigDict(extra="forbid")


class OutboxCredentials(BaseModel):
    """The outbox needs no credentials."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class OutboxMessage:
    id: str
    tenant: str
    recipient: str
    channel: str
    text: str
    created_at: datetime


class OutboxProvider(ProviderBase):
    """Stores SMS in the database at ``database_url``; refuses voice and refuses past ``cap``
    messages per tenant. ``timeout`` bounds each wait on the database, seconds."""

    name = "outbox"
    channels: frozenset[Channel] = frozenset({"sms"})
    config_model = OutboxConfig
    credentials_model = OutboxCredentials
    reaches_phones = False  # it stores messages: the pipeline reports them "stored"
    enforces_timeout = False  # the pipeline's own timer bounds the attempt

    def __init__(
        self, database_url: str, cap: int = 100, *, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self.database_url = database_url
        self.cap = cap
        self.timeout = timeout
        self._engine: Engine | None = None
        self._opening = threading.Lock()
        self._executor = StoreExecutor(max_workers=2)

    @property
    def engine(self) -> Engine:
        """The database, migrated to the newest schema on first use."""
        with self._opening:  # two store threads must not open (and leak) two engines
            if self._engine is None:
                engine = create_engine_for(self.database_url, timeout=self.timeout)
                migrate(engine)
                self._engine = engine
            return self._engine

    @property
    def database(self) -> str:
        """Where the messages are (password masked), for messages and listings."""
        return make_url(self.database_url).render_as_string(hide_password=True)

    async def send(self, message: PhoneMessage, config: Any, credentials: Any) -> Receipt:
        if message.channel not in self.channels:
            raise ProviderError(
                "channel_not_supported",
                f"the outbox default sender does not support {message.channel}",
                retryable=False,
                handed_off=False,
            )
        try:
            message_id = await self._executor.run(self._store, message, timeout=message.timeout)
        except StoreUnavailableError as exc:
            # an insert that was running when its time ran out may still be stored: as a
            # message that may have reached the carrier, it is never stored a second time
            raise ProviderError(
                "store_unavailable", str(exc), retryable=True, handed_off=exc.running
            ) from None
        return Receipt(provider=self.name, message_id=message_id, status="stored")

    def _store(self, message: PhoneMessage) -> str:
        """Count and insert in one write transaction: the cap is exact across processes."""
        message_id = uuid.uuid4().hex
        engine = self.engine
        committing = False  # past the insert: an error now may come after the server committed
        try:
            with write_transaction(engine) as conn:
                if engine.dialect.name == "postgresql":
                    conn.execute(_TENANT_LOCK, {"tenant": message.tenant})
                held = conn.execute(_COUNT, {"w_tenant": message.tenant}).scalar_one()
                if held >= self.cap:
                    raise ProviderError(
                        "outbox_cap_reached",
                        "the outbox default sender has reached its lifetime cap of "
                        f"{count(self.cap, 'message')} for tenant {message.tenant!r}; "
                        "configure a provider for it",
                        retryable=False,
                        handed_off=False,
                    )
                conn.execute(
                    _INSERT,
                    {
                        "id": message_id,
                        "tenant": message.tenant,
                        "recipient": message.recipient,
                        "channel": message.channel,
                        "text": message.text,
                        "created_at": datetime.now(UTC),
                        "code": message.code,  # for the API's masking (it shows no code)
                    },
                )
                committing = True
        except DATABASE_ERRORS as exc:
            # an error from the commit may have lost only its answer: stored, maybe (handed off)
            raise unavailable(
                engine, "storing an outbox message", exc, committing=committing
            ) from None
        return message_id

    def messages(self, tenant: str | None = None, last: int | None = None) -> list[OutboxMessage]:
        """Stored messages, oldest first; ``last`` keeps only the newest N. A SQLite database
        that does not exist yet holds none (and is not created by listing)."""
        file = sqlite_file(self.database_url)
        if file is not None and not file.exists():
            return []
        query = select(outbox_messages).order_by(_m.seq.desc())
        if tenant is not None:
            query = query.where(_m.tenant == tenant)
        if last is not None:
            query = query.limit(last)
        engine = self.engine
        try:
            with engine.connect() as conn:
                rows = conn.execute(query).all()
        except DATABASE_ERRORS as exc:
            raise unavailable(engine, "listing the outbox", exc) from None
        return [
            OutboxMessage(r.id, r.tenant, r.recipient, r.channel, r.text, _utc(r.created_at))
            for r in reversed(rows)
        ]

    async def aclose(self) -> None:
        self._executor.shutdown(wait=False)
        if self._engine is not None:
            self._engine.dispose()


def _utc(moment: datetime) -> datetime:
    """SQLite drops the time zone on the way back; every stored time is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@hookimpl
def register_providers(register: Any, settings: Settings) -> None:
    register(
        OutboxProvider(
            settings.resolved_database_url, settings.outbox_cap, timeout=settings.store_timeout
        )
    )


@hookimpl
def register_commands(cli: typer.Typer) -> None:
    """``phone-actions outbox``: what the outbox holds."""
    cli.command("outbox", short_help="List the outbox's messages (they contain the codes).")(
        outbox_command
    )


def outbox_command(
    tenant: Annotated[
        str | None, typer.Option(metavar="ID", help="Only this tenant's messages.")
    ] = None,
    last: Annotated[
        int | None, typer.Option(min=1, metavar="N", help="Only the newest N messages.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """List the messages the outbox default sender holds (they contain the codes)."""
    from runtime.console import bad_input, settings_or_exit
    from runtime.errors import PhoneActionsError

    settings = settings_or_exit()
    store = OutboxProvider(settings.resolved_database_url, timeout=settings.store_timeout)
    try:
        messages = store.messages(tenant, last)
    except PhoneActionsError as exc:
        raise bad_input(str(exc)) from None
    if as_json:
        for m in messages:
            _print_json(
                {
                    "id": m.id,
                    "tenant": m.tenant,
                    "recipient": m.recipient,
                    "channel": m.channel,
                    "text": m.text,
                    "created_at": m.created_at,
                }
            )
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"outbox ({store.database})", title_justify="left")
    table.add_column("time", no_wrap=True)
    table.add_column("tenant", overflow="fold")
    table.add_column("recipient", no_wrap=True)
    table.add_column("channel", no_wrap=True)
    table.add_column("text", overflow="fold")
    for m in messages:
        table.add_row(
            m.created_at.isoformat(timespec="seconds"),
            escape(m.tenant),
            m.recipient,
            m.channel,
            escape(m.text),
        )
    Console().print(table)


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, separators=(",", ":"), default=str))
