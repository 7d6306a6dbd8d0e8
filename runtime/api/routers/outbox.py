"""``GET /api/v2/phone/outbox``: what the outbox default sender holds for the token's tenant,
and how much of its evaluation cap is used (this project's own endpoint; scope
``read:phone_messages``).

The outbox holds whole message texts, codes included. The operator's ``phone-actions
outbox`` prints them (the operator owns the machine and the database anyway); this endpoint
is reachable with a token, which is handed to back ends and browsers, so the codes never
leave through it. Codes may hold letters (``A7K9Q2``, even ``abcd``), so a pattern alone
cannot find them: the outbox keeps each message's code beside its text (migration 0009) and
that code reads as bullets wherever the text holds it, also spelled out with separators
(``A 7 K 9``) and in either case. On top of that, for rows stored before the code was kept,
every run of four or more digits (also split by spaces, dots or hyphens, as ``123 456``) and
every word of 4 to 12 letters and digits holding a digit reads as bullets. A recipient keeps
only its last four digits. Enough to recognise a message, not to use its code or learn whom it
was for.
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
_CODE_LIKE = re.compile(r"(?<![0-9A-Za-z])(?=[A-Za-z]*\d)[0-9A-Za-z]{4,12}(?![0-9A-Za-z])")
_SPACER = r"[^0-9A-Za-z]{0,3}"
_m = outbox_messages.c
_u = default_sender_usage.c


def _bullets(found: re.Match[str]) -> str:
    return BULLET * len(found.group())


def mask_text(text: str, code: str | None = None) -> str:
    """``text`` with ``code`` (in either case, its characters also apart by up to three
    others: ``1 2 3 4``, ``A-7-K``), every run of 4 or more digits (split by up to two spaces,
    dots or hyphens) and every 4-12 character word of letters and digits holding a digit
    replaced by as many bullets as they had places."""
    if code:
        spelled = _SPACER.join(re.escape(ch) for ch in code)
        text = re.sub(spelled, _bullets, text, flags=re.IGNORECASE)
    return _CODE_LIKE.sub(_bullets, _DIGIT_RUN.sub(_bullets, text))


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
        select(_m.id, _m.recipient, _m.channel, _m.text, _m.code, _m.created_at)
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
            "text": mask_text(r.text, r.code),
            "created_at": iso(r.created_at),
        }
        for r in rows
    ]
    return messages, total, int(used or 0)


@router.get(
    "/outbox",
    summary="What the outbox default sender holds (codes masked) and the cap used",
    description="The tenant's messages held by the outbox, newest first, with the code in "
    "`text` (and every run of 4 or more digits, and every word of 4 to 12 letters and digits "
    "holding a digit) and all but the last 4 digits of `recipient` masked. `cap` is "
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
