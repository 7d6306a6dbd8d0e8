"""``GET /api/v2/phone/outbox``: what the outbox default sender holds for the token's tenant,
and how much of its evaluation cap is used (this project's own endpoint; scope
``read:phone_messages``).

The outbox holds whole message texts, codes included. The operator's ``phone-actions
outbox`` prints them (the operator owns the machine and the database anyway); this endpoint
is reachable with a token, which is handed to back ends and browsers, so the codes never
leave through it: every run of four or more digits in a text (also split by spaces, dots or
hyphens, as ``123 456``) reads as bullets, and a recipient keeps only its last four digits.
Enough to recognise a message, not to use its code or learn whom it was for.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy import Engine, func, select

from runtime.api.auth import Principal, require
from runtime.api.deps import ServicesDep
from runtime.store.db import DATABASE_ERRORS, unavailable
from runtime.store.schema import default_sender_usage, outbox_messages
from runtime.store.service.common import iso

__all__ = ["mask_recipient", "mask_text", "router"]

router = APIRouter(prefix="/api/v2/phone", tags=["phone messages"])

Reader = Annotated[Principal, Depends(require("read:phone_messages"))]

BULLET = "\u2022"
_DIGIT_RUN = re.compile(r"\d(?:[ .\-]{0,2}\d){3,}")
_m = outbox_messages.c
_u = default_sender_usage.c


def mask_text(text: str) -> str:
    """``text`` with every run of 4 or more digits (separators of up to two spaces, dots or
    hyphens between them allowed) replaced by as many bullets as it had digits' places."""
    return _DIGIT_RUN.sub(lambda found: BULLET * len(found.group()), text)


def mask_recipient(recipient: str) -> str:
    """Bullets for every digit but the last four (``+14155552671`` → ``+•••••••2671``)."""
    digits = sum(ch.isdigit() for ch in recipient)
    out, seen = [], 0
    for ch in recipient:
        if ch.isdigit():
            seen += 1
            out.append(ch if seen > digits - 4 else BULLET)
        else:
            out.append(ch)
    return "".join(out)


def _held(
    engine: Engine, tenant: str, page: int, per_page: int, totals: bool
) -> tuple[list[dict[str, Any]], int | None, int]:
    """One page of the tenant's messages (newest first), their total when asked, and the
    tenant's used default-sender allowance; blocking."""
    mine = _m.tenant == tenant
    query = (
        select(_m.id, _m.recipient, _m.channel, _m.text, _m.created_at)
        .where(mine)
        .order_by(_m.seq.desc())
        .limit(per_page)
        .offset(page * per_page)
    )
    try:
        with engine.connect() as conn:
            rows = conn.execute(query).all()
            total = conn.execute(select(func.count()).where(mine)).scalar_one() if totals else None
            used = conn.execute(select(_u.used).where(_u.tenant == tenant)).scalar()
    except DATABASE_ERRORS as exc:
        raise unavailable(engine, "listing the outbox", exc) from None
    messages = [
        {
            "id": r.id,
            "recipient": mask_recipient(r.recipient),
            "channel": r.channel,
            "text": mask_text(r.text),
            "created_at": iso(r.created_at),
        }
        for r in rows
    ]
    return messages, total, int(used or 0)


@router.get(
    "/outbox",
    summary="What the outbox default sender holds (codes masked) and the cap used",
    description="The tenant's messages held by the outbox, newest first, with every run of 4 "
    "or more digits in `text` and all but the last 4 digits of `recipient` masked. `cap` is "
    "the tenant's lifetime allowance at the default sender and `used` how much of it is taken. "
    "`page`/`per_page` page as the logs API does; `include_totals` adds `start`, `limit`, "
    "`length` and `total`.",
)
async def list_outbox(
    principal: Reader,
    svc: ServicesDep,
    page: Annotated[int, Query(ge=0, le=10_000)] = 0,
    per_page: Annotated[int, Query(ge=1, le=100)] = 50,
    include_totals: bool = False,
) -> dict[str, Any]:
    messages, total, used = await svc.call(
        _held, svc.engine, principal.tenant, page, per_page, include_totals
    )
    answer: dict[str, Any] = {
        "messages": messages,
        "cap": svc.settings.default_sender_cap,
        "used": used,
    }
    if include_totals:
        answer.update(start=page * per_page, limit=per_page, length=len(messages), total=total)
    return answer
