"""Receipts already recorded (``delivery_receipts``): providers call again when they are not
sure they were heard, and a receipt must be logged once. Blocking calls: run them on the
store executor."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.exc import IntegrityError

from runtime.store.db import DATABASE_ERRORS, serialized, unavailable, write_transaction
from runtime.store.schema import delivery_receipts

__all__ = ["Receipt", "ReceiptStore"]

_r = delivery_receipts.c


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
        """Keep ``receipt``; False when this delivery has a final status from this provider
        already (a repeated callback, or a later one that contradicts it: the first final
        status stands, and nothing new is logged)."""
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
                serialized(conn, f"receipt:{receipt.tenant}:{receipt.delivery_id}")
                earlier = conn.execute(
                    select(_r.status).where(
                        _r.tenant == receipt.tenant,
                        _r.delivery_id == receipt.delivery_id,
                        _r.provider == receipt.provider,
                    )
                ).first()
                if earlier is not None:
                    return False
                conn.execute(insert(delivery_receipts).values(row))
        except IntegrityError:
            return False
        except DATABASE_ERRORS as exc:
            raise unavailable(self._engine, "recording a receipt", exc) from None
        return True

    def purge(self, older_than_days: float) -> int:
        """Delete receipts received more than ``older_than_days`` ago (the log's retention: a
        provider calls again within hours, and the events they made are gone by then)."""
        cutoff = datetime.now(UTC) - timedelta(days=older_than_days)
        try:
            with write_transaction(self._engine) as conn:
                done = conn.execute(delete(delivery_receipts).where(_r.received_at < cutoff))
        except DATABASE_ERRORS as exc:
            raise unavailable(self._engine, "purging old receipts", exc) from None
        return int(done.rowcount)
