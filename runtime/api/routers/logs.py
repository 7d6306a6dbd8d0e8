"""``/api/v2/logs``: the tenant's stored log events, searched with Auth0's query syntax.

``q`` is Lucene syntax over ``type``, ``user_id``, ``user_name``, ``client_id``, ``ip``,
``log_id`` and ``date`` (:mod:`runtime.logs.query`); ``page``/``per_page`` page through the
first 1,000 matches, newest first by default (``sort=date:1`` for oldest first), as Auth0
does; ``from``/``take`` walk the whole log from a ``log_id`` onwards, oldest first (Auth0's
checkpoint paging). Scope ``read:logs``. Events reach the database from the JSON Lines file a
moment after their report returned (docs/operations.md, "The stored log").

A query that cannot be used (``q``'s syntax, ``q`` with ``from``/``take``, paging past the
first 1,000) is 400 ``invalid_query_string``, one line naming the parameter (docs/service.md,
"Errors").
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from runtime.api.auth import Principal, require
from runtime.api.deps import Services, ServicesDep
from runtime.api.errors import ApiError
from runtime.errors import InvalidInputError, NotFoundError
from runtime.logs.query import condition
from runtime.logs.stored import LogRepository, LogRow

router = APIRouter(prefix="/api/v2/logs", tags=["logs"])

Reader = Annotated[Principal, Depends(require("read:logs"))]
PAGED_LIMIT = 1000  # Auth0: only the first 1,000 entries are reachable by page
_JSON = "application/json"


def _repository(svc: Services) -> LogRepository:
    return LogRepository(svc.engine)


def _bad_query(message: str, field: str) -> ApiError:
    """400 ``invalid_query_string``: the query string, not a body, is what is wrong."""
    return ApiError(400, f"{field}: {message}", "invalid_query_string")


def _array(rows: list[LogRow]) -> bytes:
    return b"[" + b",".join(row.event.encode() for row in rows) + b"]"


@router.get("", summary="Search the tenant's log events (Auth0's query syntax)")
async def search_logs(
    principal: Reader,
    svc: ServicesDep,
    q: Annotated[
        str | None, Query(description="e.g. type:gd_send_sms AND date:[2026-01-01 TO *]")
    ] = None,
    page: Annotated[int, Query(ge=0)] = 0,
    per_page: Annotated[int, Query(ge=1, le=100)] = 50,
    sort: Annotated[str, Query(pattern=r"^date:-?1$")] = "date:-1",
    include_totals: bool = False,
    from_: Annotated[str | None, Query(alias="from", max_length=64)] = None,
    take: Annotated[int | None, Query(ge=1, le=100)] = None,
) -> Response:
    repository = _repository(svc)
    if from_ is not None or take is not None:
        if q is not None:
            raise _bad_query("cannot be combined with from/take", "q")
        checkpointed = await svc.call(repository.after, principal.tenant, from_, take or 50)
        if checkpointed is None:
            raise _bad_query(
                f"no event has this log_id (older than log_retention_days, "
                f"{svc.settings.log_retention_days:g}, or mistyped)",
                "from",
            )
        return Response(_array(checkpointed), media_type=_JSON)
    if (page + 1) * per_page > PAGED_LIMIT:
        raise _bad_query(
            f"only the first {PAGED_LIMIT} entries can be paged (page * per_page); "
            "use from and take beyond",
            "page",
        )
    try:
        where = condition(q)
    except InvalidInputError as exc:  # its message already names q
        raise ApiError(400, str(exc), "invalid_query_string") from None
    rows, total = await svc.call(
        lambda: repository.search(
            principal.tenant,
            where,
            page=page,
            per_page=per_page,
            newest_first=sort == "date:-1",
            totals=include_totals,
        )
    )
    if not include_totals:
        return Response(_array(rows), media_type=_JSON)
    head = (
        f'{{"start":{page * per_page},"limit":{per_page},"length":{len(rows)},'
        f'"total":{total},"logs":'
    )
    return Response(head.encode() + _array(rows) + b"}", media_type=_JSON)


@router.get("/{id}", summary="One log event by its log_id")
async def get_log(id: str, principal: Reader, svc: ServicesDep) -> Response:
    row = await svc.call(_repository(svc).get, principal.tenant, id)
    if row is None:
        raise NotFoundError(f"no log event {id!r}")
    return Response(row.event.encode(), media_type=_JSON)
