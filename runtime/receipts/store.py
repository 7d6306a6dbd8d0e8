"""Receipts already recorded (``delivery_receipts``): providers call again when they are not
sure they were heard, and a receipt must be logged once. Blocking calls: run them on the
store executor."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, insert
from sqlalchemy.exc import IntegrityError

from runtime.store.db import DATABASE_ERRORS, unavailable, write_transaction
from runtime.store.schema import delivery_receipts

__all__ = ["Receipt", "ReceiptStore"]


@dataclass(frozen=True)
class Receipt:
    """A final status a provider reported for one delivery."""

    tenant: str
    delivery_id: str
    provider: str
    channel: str
    status: str  # delivered | undelivered
    carrier_status: str
    error_code: str | None
    message_id: str | None


class ReceiptStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def record(self, receipt: Receipt) -> bool:
        """Keep ``receipt``; False when this delivery, provider and status were recorded
        before (a repeated callback: nothing new to log)."""
        row = {
            "tenant": receipt.tenant,
            "delivery_id": receipt.delivery_id,
            "provider": receipt.provider,
            "status": receipt.status,
            "channel": receipt.channel,
            "message_id": (receipt.message_id or "")[:128] or None,
            "carrier_status": receipt.carrier_status[:32],
            "error_code": (receipt.error_code or "")[:32] or None,
            "received_at": datetime.now(UTC),
        }
        try:
            with write_transaction(self._engine) as conn:
                conn.execute(insert(delivery_receipts).values(row))
        except IntegrityError:
            return False
        except DATABASE_ERRORS as exc:
            raise unavailable(self._engine, "recording a receipt", exc) from None
        return True
