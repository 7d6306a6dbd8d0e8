"""The default sender: an outbox that stores each message locally instead of sending it.

Like Auth0's evaluation sender it carries SMS only and has a lifetime cap per tenant (100 by
default, ``PHONE_ACTIONS_OUTBOX_CAP``), so a tenant notices it must configure a real provider.
The outbox is a SQLite file in the data directory; ``phone-actions outbox`` lists it.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
    select,
)

from runtime import hookimpl
from runtime.errors import ProviderError
from runtime.events import Channel
from runtime.providers import PhoneMessage, Receipt
from runtime.settings import Settings
from runtime.store import create_engine_for

__all__ = ["OutboxMessage", "OutboxProvider", "register_providers"]

_metadata = MetaData()
outbox_messages = Table(
    "outbox_messages",
    _metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(32), nullable=False, unique=True),
    Column("tenant", String(64), nullable=False, index=True),
    Column("recipient", String(20), nullable=False),
    Column("channel", String(8), nullable=False),
    Column("text", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


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


class OutboxProvider:
    """Stores SMS in ``path``; refuses voice and refuses past ``cap`` messages per tenant."""

    name = "outbox"
    channels: frozenset[Channel] = frozenset({"sms"})
    config_model = OutboxConfig
    credentials_model = OutboxCredentials

    def __init__(self, path: Path, cap: int = 100) -> None:
        self.path = path
        self.cap = cap
        self._engine: Engine | None = None
        self._lock = threading.Lock()

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = create_engine_for(f"sqlite:///{self.path}", _metadata)
        return self._engine

    async def send(self, message: PhoneMessage, config: Any, credentials: Any) -> Receipt:
        if message.channel not in self.channels:
            raise ProviderError(
                "channel_not_supported",
                f"the outbox default sender does not support {message.channel}",
                retryable=False,
                handed_off=False,
            )
        message_id = await asyncio.to_thread(self._store, message)
        return Receipt(provider=self.name, message_id=message_id, status="stored")

    def _store(self, message: PhoneMessage) -> str:
        message_id = uuid.uuid4().hex
        with self._lock, self.engine.begin() as conn:
            held = conn.execute(
                select(func.count()).where(outbox_messages.c.tenant == message.tenant)
            ).scalar_one()
            if held >= self.cap:
                raise ProviderError(
                    "outbox_cap_reached",
                    f"the outbox default sender has reached its lifetime cap of {self.cap} "
                    f"messages for tenant {message.tenant!r}; configure a provider for it",
                    retryable=False,
                    handed_off=False,
                )
            conn.execute(
                insert(outbox_messages).values(
                    id=message_id,
                    tenant=message.tenant,
                    recipient=message.recipient,
                    channel=message.channel,
                    text=message.text,
                    created_at=datetime.now(UTC),
                )
            )
        return message_id

    def messages(self, tenant: str | None = None, last: int | None = None) -> list[OutboxMessage]:
        """Stored messages, oldest first; ``last`` keeps only the newest N."""
        if not self.path.exists():
            return []
        query = select(outbox_messages).order_by(outbox_messages.c.seq.desc())
        if tenant is not None:
            query = query.where(outbox_messages.c.tenant == tenant)
        if last is not None:
            query = query.limit(last)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            OutboxMessage(r.id, r.tenant, r.recipient, r.channel, r.text, _utc(r.created_at))
            for r in reversed(rows)
        ]

    async def aclose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


def _utc(moment: datetime) -> datetime:
    """SQLite drops the time zone on the way back; every stored time is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@hookimpl
def register_providers(register: Any, settings: Settings) -> None:
    register(OutboxProvider(settings.data_dir / "outbox.sqlite3", settings.outbox_cap))
