"""Auth0's log streams (``/api/v2/log-streams``), type ``http``: the rows, their validation,
and the fenced updates their delivery job makes (:mod:`runtime.logs.stream_delivery`).

``httpAuthorization`` is write-only (sealed at rest, never answered), like the providers'
credentials. Each stream gets a signing secret (``signing_secret``, answered on creation and on
``rotate_signing_secret``) for the HMAC header of its batches (:mod:`runtime.signing`). A new
stream starts at the end of the stored log (Auth0 streams what happens after creation), or
where its ``startFrom`` says: a date (the first event stored that is dated then or later) or a
``log_id`` (the events stored after it, as ``GET /api/v2/logs?from=`` pages). ``isPriority``
is kept and answered; every stream is delivered alike. Blocking calls: run them on the store
executor.
"""

from __future__ import annotations

import json
import secrets
import string
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, delete, func, or_, select, update

from runtime.errors import (
    UNKNOWN_PROPERTY,
    InvalidInputError,
    LimitExceededError,
    NotFoundError,
)
from runtime.logs.categories import CATEGORIES
from runtime.outbound import OutboundRules
from runtime.signing import new_secret
from runtime.store.crypto import Keyring
from runtime.store.db import (
    DATABASE_ERRORS,
    describe,
    serialized,
    unavailable,
    write_transaction,
)
from runtime.store.schema import jobs, log_events, log_streams

__all__ = ["FORMATS", "MAX_STREAMS", "LogStreamRepository", "StreamState"]

FORMATS = ("JSONLINES", "JSONARRAY", "JSONOBJECT")  # JSONOBJECT: one event per request
MAX_STREAMS = 10  # per tenant: each costs a job and a poll of the log
_MAX_HEADERS = 10
_STATUSES = ("active", "paused")  # what a PATCH may set; "suspended" is set by delivery
_FORBIDDEN_HEADERS = {"content-length", "host", "transfer-encoding", "x-phone-actions-signature"}
_FUTURE_SLACK = timedelta(minutes=5)  # a client's clock a little ahead is still "now"
_PRIORITY = "_isPriority"  # kept in the sink's JSON: the table has no column for it
_s = log_streams.c
_e = log_events.c
_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True)
class StreamState:
    """What one delivery run needs of its stream."""

    id: str
    tenant: str
    endpoint: str
    content_type: str
    content_format: str
    headers: dict[str, str]
    secret: str
    categories: list[str]
    cursor: int
    failures: int
    failing_since: datetime | None


def _now() -> datetime:
    return datetime.now(UTC)


def _utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


class LogStreamRepository:
    """The ``log_streams`` table. Another tenant's stream is :class:`NotFoundError`."""

    def __init__(self, engine: Engine, keyring: Keyring, *, allow_http_hosts: list[str]) -> None:
        """``allow_http_hosts``: the operator's ``outbound_allow_hosts`` (local fakes)."""
        self._engine = engine
        self._keys = keyring
        self._rules = OutboundRules(allow_http_hosts)
        self.database = describe(engine)

    # -- the API ------------------------------------------------------------------------------

    def create(self, tenant: str, body: dict[str, Any]) -> dict[str, Any]:
        allowed = {"name", "type", "sink", "filters", "status", "isPriority", "startFrom"}
        _no_unknown(body, allowed, "")
        if "type" not in body:
            raise InvalidInputError("missing (it is required: 'http')", field="type")
        if body.get("type") != "http":
            raise InvalidInputError("only 'http' is supported", field="type")
        sink, authorization = self._sink(body.get("sink"), None)
        sink[_PRIORITY] = _priority(body.get("isPriority", False))
        start_from = _start_from(body.get("startFrom"))
        filters = _filters(body.get("filters", []))
        status = body.get("status", "active")
        if status not in _STATUSES:
            raise InvalidInputError(f"must be one of {', '.join(_STATUSES)}", field="status")
        name = body.get("name", "")
        if not isinstance(name, str) or len(name) > 255:
            raise InvalidInputError("must be a string of at most 255 characters", field="name")
        stream_id = "lst_" + "".join(secrets.choice(_ALPHABET) for _ in range(16))
        secret = new_secret()
        now = _now()
        with self._transaction("creating a log stream") as conn:
            serialized(conn, f"log_streams:{tenant}")  # the count below holds until commit
            count = conn.execute(
                select(func.count()).select_from(log_streams).where(_s.tenant == tenant)
            ).scalar_one()
            if count >= MAX_STREAMS:
                raise LimitExceededError(
                    f"a tenant has at most {MAX_STREAMS} log streams", field="log_streams"
                )
            start = _start(conn, tenant, start_from)
            conn.execute(
                log_streams.insert().values(
                    id=stream_id,
                    tenant=tenant,
                    name=name or stream_id,
                    type="http",
                    status=status,
                    sink=json.dumps(sink),
                    authorization_sealed=self._seal(stream_id, authorization),
                    secret_sealed=self._keys.seal(secret.encode(), _context(stream_id, "secret")),
                    filters=json.dumps(filters),
                    cursor=start,
                    job_id=None,
                    failures=0,
                    failing_since=None,
                    last_error=None,
                    delivered=0,
                    created_at=now,
                    updated_at=now,
                )
            )
            shown = self._get(conn, tenant, stream_id)
        return {**shown, "signing_secret": secret}

    def list_streams(self, tenant: str) -> list[dict[str, Any]]:
        with self._transaction("reading log streams", write=False) as conn:
            rows = conn.execute(
                select(log_streams).where(_s.tenant == tenant).order_by(_s.created_at, _s.id)
            ).all()
            return [_shown(row) for row in rows]

    def get(self, tenant: str, stream_id: str) -> dict[str, Any]:
        with self._transaction("reading a log stream", write=False) as conn:
            return self._get(conn, tenant, stream_id)

    def update(self, tenant: str, stream_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Change name, status (active resumes a paused or suspended stream where it
        stopped), sink, filters or isPriority; ``rotate_signing_secret: true`` answers a new
        secret."""
        allowed = {"name", "status", "sink", "filters", "isPriority", "rotate_signing_secret"}
        _no_unknown(body, allowed, "")
        values: dict[str, Any] = {"updated_at": _now()}
        secret = None
        with self._transaction("changing a log stream") as conn:
            row = conn.execute(
                select(log_streams).where(_s.tenant == tenant, _s.id == stream_id)
            ).first()
            if row is None:
                raise NotFoundError(f"no log stream {stream_id!r}")
            if "name" in body:
                name = body["name"]
                if not isinstance(name, str) or not 1 <= len(name) <= 255:
                    raise InvalidInputError("must be 1 to 255 characters", field="name")
                values["name"] = name
            if "status" in body:
                if body["status"] not in _STATUSES:
                    raise InvalidInputError(
                        f"must be one of {', '.join(_STATUSES)}", field="status"
                    )
                values["status"] = body["status"]
                if body["status"] == "active" and row.status != "active":
                    # a resume: a fresh failure window, and a new job (the old one may still
                    # be finishing its last run: the sweep gives the stream its successor)
                    values.update(failures=0, failing_since=None, job_id=None)
            sink = json.loads(row.sink)
            if "sink" in body:
                old = self._open(stream_id, row.authorization_sealed)
                sink, authorization = self._sink(body["sink"], sink | {"_": old})
                values["authorization_sealed"] = self._seal(stream_id, authorization)
            if "isPriority" in body:
                sink[_PRIORITY] = _priority(body["isPriority"])
            if "sink" in body or "isPriority" in body:
                values["sink"] = json.dumps(sink)
            if "filters" in body:
                values["filters"] = json.dumps(_filters(body["filters"]))
            rotate = body.get("rotate_signing_secret", False)
            if not isinstance(rotate, bool):  # "yes" must not look like a rotation done
                raise InvalidInputError("must be true or false", field="rotate_signing_secret")
            if rotate:
                secret = new_secret()
                values["secret_sealed"] = self._keys.seal(
                    secret.encode(), _context(stream_id, "secret")
                )
            conn.execute(update(log_streams).where(_s.id == stream_id).values(values))
            shown = self._get(conn, tenant, stream_id)
        return shown if secret is None else {**shown, "signing_secret": secret}

    def delete(self, tenant: str, stream_id: str) -> None:
        with self._transaction("deleting a log stream") as conn:
            done = conn.execute(delete(log_streams).where(_s.tenant == tenant, _s.id == stream_id))
            if done.rowcount != 1:
                raise NotFoundError(f"no log stream {stream_id!r}")

    # -- the delivery job ---------------------------------------------------------------------

    def state(self, conn: Connection, stream_id: str, job_id: str) -> StreamState | None:
        """The stream as its job ``job_id`` delivers it; None when the stream is gone, not
        active, or served by another job (this one is then finished)."""
        row = conn.execute(select(log_streams).where(_s.id == stream_id)).first()
        if row is None or row.status != "active" or row.job_id != job_id:
            return None
        sink = json.loads(row.sink)
        headers = {h["header"]: h["value"] for h in sink.get("httpCustomHeaders", [])}
        authorization = self._open(stream_id, row.authorization_sealed)
        if authorization:
            headers["Authorization"] = authorization
        secret = self._keys.open(row.secret_sealed, _context(stream_id, "secret")).decode()
        return StreamState(
            id=row.id,
            tenant=row.tenant,
            endpoint=sink["httpEndpoint"],
            content_type=sink.get("httpContentType") or "application/json",
            content_format=sink.get("httpContentFormat") or "JSONARRAY",
            headers=headers,
            secret=secret,
            categories=[f["name"] for f in json.loads(row.filters)],
            cursor=int(row.cursor),
            failures=int(row.failures),
            failing_since=_utc(row.failing_since),
        )

    def advance(self, stream: StreamState, job_id: str, cursor: int, delivered: int) -> bool:
        """Move the cursor after a batch the sink accepted; false when another job moved it
        (then this job stops)."""
        with self._transaction("advancing a log stream") as conn:
            done = conn.execute(
                update(log_streams)
                .where(_s.id == stream.id, _s.job_id == job_id, _s.cursor == stream.cursor)
                .values(
                    cursor=cursor,
                    delivered=_s.delivered + delivered,
                    failures=0,
                    failing_since=None,
                    last_error=None,
                    updated_at=_now(),
                )
            )
            return bool(done.rowcount == 1)

    def failed(self, stream: StreamState, job_id: str, error: str, suspend_after: float) -> bool:
        """Record a failed batch; true when the stream has failed for longer than
        ``suspend_after`` seconds and is now suspended."""
        now = _now()
        since = stream.failing_since or now
        suspended = now - since > timedelta(seconds=suspend_after)
        with self._transaction("recording a log stream failure") as conn:
            conn.execute(
                update(log_streams)
                .where(_s.id == stream.id, _s.job_id == job_id)
                .values(
                    failures=_s.failures + 1,
                    failing_since=since,
                    last_error=error[:1024],
                    status="suspended" if suspended else "active",
                    updated_at=now,
                )
            )
        return suspended

    def without_job(self) -> list[tuple[str, str, str | None]]:
        """Active streams whose job is missing or finished: ``(id, tenant, job_id)``."""
        unfinished = select(jobs.c.id).where(jobs.c.state.in_(("queued", "running")))
        query = select(_s.id, _s.tenant, _s.job_id).where(
            _s.status == "active", or_(_s.job_id.is_(None), _s.job_id.not_in(unfinished))
        )
        with self._transaction("finding log streams to deliver", write=False) as conn:
            return [(r[0], r[1], r[2]) for r in conn.execute(query)]

    def assign(self, stream_id: str, old_job: str | None, new_job: str) -> bool:
        """Make ``new_job`` the stream's one job, if it still has ``old_job``."""
        match = _s.job_id.is_(None) if old_job is None else _s.job_id == old_job
        with self._transaction("assigning a log stream's job") as conn:
            done = conn.execute(
                update(log_streams).where(and_(_s.id == stream_id, match)).values(job_id=new_job)
            )
            return bool(done.rowcount == 1)

    def lag(self, tenant: str) -> list[tuple[str, int]]:
        """Events stored but not yet delivered, per active stream of ``tenant``."""
        newest = select(func.coalesce(func.max(log_events.c.seq), 0)).where(
            log_events.c.tenant == tenant
        )
        with self._transaction("reading log stream lag", write=False) as conn:
            top = int(conn.execute(newest).scalar_one())
            rows = conn.execute(select(_s.id, _s.cursor).where(_s.tenant == tenant)).all()
        return [(r[0], max(0, top - int(r[1]))) for r in rows]

    def transaction(self, what: str) -> Any:
        return self._transaction(what, write=False)

    # -- helpers ------------------------------------------------------------------------------

    def _get(self, conn: Connection, tenant: str, stream_id: str) -> dict[str, Any]:
        row = conn.execute(
            select(log_streams).where(_s.tenant == tenant, _s.id == stream_id)
        ).first()
        if row is None:
            raise NotFoundError(f"no log stream {stream_id!r}")
        return _shown(row)

    def _sink(self, value: Any, old: dict[str, Any] | None) -> tuple[dict[str, Any], str | None]:
        """The stored sink (without the authorization) and the authorization, validated."""
        if not isinstance(value, dict):
            raise InvalidInputError("must be an object", field="sink")
        allowed = {
            "httpEndpoint",
            "httpContentType",
            "httpContentFormat",
            "httpAuthorization",
            "httpCustomHeaders",
        }
        _no_unknown(value, allowed, "sink.")
        merged = {**(old or {}), **value}
        authorization = merged.pop("httpAuthorization", None)
        if "httpAuthorization" not in value and old is not None:
            authorization = old.get("_")
        merged.pop("_", None)
        endpoint = merged.get("httpEndpoint")
        if endpoint is None:
            raise InvalidInputError("missing (it is required)", field="sink.httpEndpoint")
        if not isinstance(endpoint, str) or len(endpoint) > 2048:
            raise InvalidInputError(
                "must be a URL of at most 2048 characters", field="sink.httpEndpoint"
            )
        self._rules.check(endpoint, "sink.httpEndpoint")  # no private address (SSRF)
        content_type = merged.setdefault("httpContentType", "application/json")
        if not isinstance(content_type, str) or not 1 <= len(content_type) <= 255:
            raise InvalidInputError("must be 1 to 255 characters", field="sink.httpContentType")
        content_format = merged.setdefault("httpContentFormat", "JSONLINES")
        if content_format not in FORMATS:
            raise InvalidInputError(
                f"must be one of {', '.join(FORMATS)}", field="sink.httpContentFormat"
            )
        if authorization is not None and (
            not isinstance(authorization, str) or len(authorization) > 4096
        ):
            raise InvalidInputError(
                "must be a string of at most 4096 characters", field="sink.httpAuthorization"
            )
        headers = merged.setdefault("httpCustomHeaders", [])
        if not isinstance(headers, list) or len(headers) > _MAX_HEADERS:
            raise InvalidInputError(
                f"must be a list of at most {_MAX_HEADERS} headers", field="sink.httpCustomHeaders"
            )
        for index, header in enumerate(headers):
            where = f"sink.httpCustomHeaders[{index}]"
            if (
                not isinstance(header, dict)
                or set(header) != {"header", "value"}
                or not all(isinstance(v, str) and v and "\n" not in v for v in header.values())
            ):
                raise InvalidInputError(
                    "must be {header, value}, two non-empty strings", field=where
                )
            if header["header"].lower() in _FORBIDDEN_HEADERS:
                raise InvalidInputError(f"{header['header']!r} cannot be set", field=where)
        return merged, authorization

    def _seal(self, stream_id: str, authorization: str | None) -> str | None:
        if authorization is None:
            return None
        return self._keys.seal(authorization.encode(), _context(stream_id, "authorization"))

    def _open(self, stream_id: str, sealed: str | None) -> str | None:
        if sealed is None:
            return None
        return self._keys.open(sealed, _context(stream_id, "authorization")).decode()

    @contextmanager
    def _transaction(self, what: str, *, write: bool = True) -> Iterator[Connection]:
        try:
            with write_transaction(self._engine) if write else self._engine.begin() as conn:
                yield conn
        except DATABASE_ERRORS as exc:
            raise unavailable(self._engine, what, exc) from None


def _shown(row: Any) -> dict[str, Any]:
    """A stream as the API answers it (Auth0's fields, then this project's delivery state)."""
    sink = json.loads(row.sink)
    priority = bool(sink.pop(_PRIORITY, False))
    return {
        "id": row.id,
        "name": row.name,
        "type": row.type,
        "status": row.status,
        "isPriority": priority,
        "sink": sink,
        "filters": json.loads(row.filters),
        "delivery": {
            "delivered": int(row.delivered),
            "failures": int(row.failures),
            "failing_since": None
            if row.failing_since is None
            else _utc(row.failing_since).isoformat(),  # type: ignore[union-attr]
            "last_error": row.last_error,
        },
    }


def _priority(value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidInputError("must be true or false", field="isPriority")
    return value


def _start_from(value: Any) -> datetime | str | None:
    """``startFrom`` as a moment (an ISO 8601 date or date-time, UTC unless it says) or a
    ``log_id``; None when not given."""
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= 64:
        raise InvalidInputError(
            "must be an ISO 8601 date (2026-01-31T12:00:00Z) or a log_id", field="startFrom"
        )
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value  # not a date: a log_id
    moment = moment.astimezone(UTC) if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    if moment > _now() + _FUTURE_SLACK:
        raise InvalidInputError(
            "is in the future; omit it to stream what is stored from now on", field="startFrom"
        )
    return moment


def _start(conn: Connection, tenant: str, start_from: datetime | str | None) -> int:
    """The cursor (the ``seq`` before the first event to send) ``start_from`` gives: the end
    of the log without it; before the first event stored dated at or after a moment (the end
    when none is); at a ``log_id``'s event, so that the ones stored after it are sent."""
    tenants = _e.tenant == tenant
    if isinstance(start_from, str):
        found = conn.execute(select(_e.seq).where(tenants, _e.log_id == start_from)).first()
        if found is None:
            raise InvalidInputError(
                "no event has this log_id (older than log_retention_days, or mistyped)",
                field="startFrom",
            )
        return int(found[0])
    last = int(conn.execute(select(func.max(_e.seq)).where(tenants)).scalar_one() or 0)
    if start_from is None:
        return last
    first = conn.execute(select(func.min(_e.seq)).where(tenants, _e.date >= start_from))
    seq = first.scalar_one()
    return last if seq is None else int(seq) - 1


def _filters(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list) or len(value) > len(CATEGORIES):
        raise InvalidInputError("must be a list of {type: category, name}", field="filters")
    out = []
    for index, item in enumerate(value):
        if not isinstance(item, dict) or item.get("type") != "category":
            raise InvalidInputError("must be {type: 'category', name}", field=f"filters[{index}]")
        if item.get("name") not in CATEGORIES:
            raise InvalidInputError(
                f"unknown category {item.get('name')!r} (known: {', '.join(CATEGORIES)})",
                field=f"filters[{index}].name",
            )
        out.append({"type": "category", "name": str(item["name"])})
    return out


def _no_unknown(body: Any, allowed: set[str], prefix: str) -> None:
    if not isinstance(body, dict):
        raise InvalidInputError("the body must be a JSON object")
    for key in body:
        if key not in allowed:
            raise InvalidInputError(UNKNOWN_PROPERTY, field=f"{prefix}{key}")


def _context(stream_id: str, what: str) -> str:
    return f"log_streams.{what}:{stream_id}"
