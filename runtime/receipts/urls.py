"""Where a provider reports a message's delivery status: one URL per delivery, which names the
tenant (whose credentials check the signature) and the delivery it is about."""

from __future__ import annotations

from urllib.parse import quote

__all__ = ["RECEIPTS_PATH", "callback_url"]

RECEIPTS_PATH = "/api/v2/receipts"


def callback_url(public_base_url: str | None, provider: str, tenant: str, delivery_id: str) -> str:
    """``{public_base_url}/api/v2/receipts/{provider}/{tenant}/{delivery_id}``, or "" when the
    operator set no public base URL (then no receipt is asked for)."""
    if not public_base_url:
        return ""
    base = public_base_url.rstrip("/")
    return f"{base}{RECEIPTS_PATH}/{provider}/{_part(tenant)}/{_part(delivery_id)}"


def _part(value: str) -> str:
    return quote(value, safe="")
