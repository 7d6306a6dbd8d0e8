"""``/api/v2/logs``: the tenant's stored log events, searched with Auth0's query syntax.

Two modes, as Auth0's ``get_logs``. By search: ``q`` is Lucene syntax over ``type``,
``user_id``, ``user_name``, ``client_id``, ``ip``, ``log_id`` and ``date``
(:mod:`runtime.logs.query`); ``page``/``per_page`` page through the first 1,000 matches;
``sort=field:1|-1`` orders by one of those fields (newest first by default); ``fields`` with
``include_fields`` keeps or drops fields of each event. By checkpoint: ``from``/``take`` walk
the whole log from a ``log_id`` onwards, oldest first, every other parameter ignored (Auth0:
"Any parameter other than from and take will be ignored"), and the answer's ``Link`` header
holds the ``next`` request to make. Scope ``read:logs``. Events reach the database from the
JSON Lines file a moment after their report returned (docs/operations.md, "The stored log").

A search parameter that cannot be used (``q``'s syntax, paging past the first 1,000, a field
that cannot be sorted) is 400 ``invalid_query_string``, one line naming the parameter
(docs/service.md, "Errors").
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from runtime.api.auth import Principal, require
from runtime.api.deps import Services, ServicesDep
from runtime.api.errors import ApiError
from runtime.errors import InvalidInputError, NotFoundError
from runtime.logs.query import condition
from runtime.logs.stored import SORTABLE, LogRepository, LogRow

router = APIRouter(prefix="/api/v2/logs", tags=["logs"])

Reader = Annotated[Principal, Depends(require("read:logs"))]
PAGED_LIMIT = 1000  # Auth0: only the first 1,000 entries are reachable by page
DEFAULT_TAKE = 50
_JSON = "application/json"


class SearchQuery(BaseModel):
    """The search mode's parameters. Read, and refused when wrong, only without ``from`` and
    ``take``: with them Auth0 ignores every other parameter, so a checkpoint reader's stray
    ``per_page=500`` must not fail its walk."""

    model_config = ConfigDict(extra="ignore")

    q: str | None = Field(None, description="e.g. type:gd_send_sms AND date:[2026-01-01 TO *]")
    page: int = Field(0, ge=0, description="Zero-based page (within the first 1,000 entries).")
    per_page: int = Field(50, ge=1, le=100)
    sort: str = Field(
        "date:-1",
        max_length=64,
        description=f"field:1 (ascending) or field:-1; field one of {', '.join(SORTABLE)}.",
    )
    include_totals: bool = False
    fields: str | None = Field(
        None,
        max_length=1000,
        description="Comma-separated fields to include (or exclude, include_fields=false).",
    )
    include_fields: bool = True


def _search_parameters() -> list[dict[str, Any]]:
    """:class:`SearchQuery` as OpenAPI query parameters (the route reads them itself)."""
    schema = SearchQuery.model_json_schema()["properties"]
    return [
        {
            "name": name,
            "in": "query",
            "required": False,
            "schema": {k: v for k, v in field.items() if k != "description"},
            **({"description": field["description"]} if "description" in field else {}),
        }
        for name, field in schema.items()
    ]


def _repository(svc: Services) -> LogRepository:
    return LogRepository(svc.engine)


def _bad_query(message: str, field: str) -> ApiError:
    """400 ``invalid_query_string``: the query string, not a body, is what is wrong."""
    return ApiError(400, f"{field}: {message}", "invalid_query_string")


def _array(rows: list[LogRow], keep: tuple[frozenset[str], bool] | None = None) -> bytes:
    events = [row.event.encode() if keep is None else _project(row.event, *keep) for row in rows]
    return b"[" + b",".join(events) + b"]"


def _project(event: str, names: frozenset[str], include: bool) -> bytes:
    """One event with only ``names`` (``include``) or without them."""
    data = orjson.loads(event)
    return orjson.dumps({k: v for k, v in data.items() if (k in names) == include})


def _search_query(request: Request) -> SearchQuery:
    """The search parameters of the query string, refused as FastAPI refuses its own."""
    try:
        return SearchQuery.model_validate(dict(request.query_params))
    except ValidationError as exc:
        errors = [{**e, "loc": ("query", *e["loc"])} for e in exc.errors()]
        raise RequestValidationError(errors) from None


def _sort(value: str) -> tuple[str, bool]:
    """``field:1``/``field:-1`` as (field, descending)."""
    field, _, order = value.partition(":")
    if order not in ("1", "-1"):
        raise _bad_query("must be field:1 (ascending) or field:-1 (descending)", "sort")
    if field not in SORTABLE:
        sortable = ", ".join(SORTABLE)
        raise _bad_query(f"cannot sort by {field!r} here (sortable: {sortable})", "sort")
    return field, order == "-1"


def _fields(search: SearchQuery) -> tuple[frozenset[str], bool] | None:
    """What ``fields``/``include_fields`` keep of each event; None for everything."""
    names = frozenset(n.strip() for n in (search.fields or "").split(",") if n.strip())
    return (names, search.include_fields) if names else None


def _next_link(request: Request, svc: Services, rows: list[LogRow], take: int) -> str:
    """The ``Link`` header of a checkpoint page: the request to make next, from the last
    event answered; the same request when none was (Auth0's rule)."""
    query = urlencode({"from": rows[-1].log_id, "take": take}) if rows else request.url.query
    base = svc.settings.public_base_url  # behind a proxy, the address readers know
    if base:
        url = f"{base.rstrip('/')}{router.prefix}" + (f"?{query}" if query else "")
    else:
        url = str(request.url.replace(query=query))
    return f'<{url}>; rel="next"'


@router.get(
    "",
    summary="Search the tenant's log events (Auth0's query syntax), or walk it from a log_id",
    openapi_extra={"parameters": _search_parameters()},
)
async def search_logs(
    request: Request,
    principal: Reader,
    svc: ServicesDep,
    from_: Annotated[
        str | None,
        Query(alias="from", max_length=64, description="Checkpoint: the events after this one."),
    ] = None,
    take: Annotated[
        int | None, Query(ge=1, le=100, description="Checkpoint: how many (default 50).")
    ] = None,
) -> Response:
    repository = _repository(svc)
    if from_ is not None or take is not None:
        count = take or DEFAULT_TAKE
        checkpointed = await svc.call(repository.after, principal.tenant, from_, count)
        if checkpointed is None:
            raise _bad_query(
                f"no event has this log_id (older than log_retention_days, "
                f"{svc.settings.log_retention_days:g}, or mistyped)",
                "from",
            )
        link = _next_link(request, svc, checkpointed, count)
        return Response(_array(checkpointed), media_type=_JSON, headers={"Link": link})
    search = _search_query(request)
    page, per_page = search.page, search.per_page
    if (page + 1) * per_page > PAGED_LIMIT:
        raise _bad_query(
            f"only the first {PAGED_LIMIT} entries can be paged (page * per_page); "
            "use from and take beyond",
            "page",
        )
    sort, descending = _sort(search.sort)
    keep = _fields(search)
    try:
        where = condition(search.q)
    except InvalidInputError as exc:  # its message already names q
        raise ApiError(400, str(exc), "invalid_query_string") from None
    rows, total = await svc.call(
        lambda: repository.search(
            principal.tenant,
            where,
            page=page,
            per_page=per_page,
            sort=sort,
            descending=descending,
            totals=search.include_totals,
        )
    )
    if not search.include_totals:
        return Response(_array(rows, keep), media_type=_JSON)
    head = (
        f'{{"start":{page * per_page},"limit":{per_page},"length":{len(rows)},'
        f'"total":{total},"logs":'
    )
    return Response(head.encode() + _array(rows, keep) + b"}", media_type=_JSON)


@router.get("/{id}", summary="One log event by its log_id")
async def get_log(id: str, principal: Reader, svc: ServicesDep) -> Response:
    row = await svc.call(_repository(svc).get, principal.tenant, id)
    if row is None:
        raise NotFoundError(f"no log event {id!r}")
    return Response(row.event.encode(), media_type=_JSON)
