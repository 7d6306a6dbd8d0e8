"""``/api/v2/receipts/{provider}/{tenant}/{delivery_id}``: providers report delivery status.

No bearer token here: the provider's own signature is the proof (runtime/receipts/signatures.py),
checked with the credentials of the tenant named in the URL, or of the default sender when it is
the same provider. A callback without a valid signature is 403 and changes nothing. A final
status (delivered, undelivered) is recorded once per delivery, provider and status and logged as
``receipt_delivered`` / ``receipt_undelivered``; an intermediate one (queued, sent, buffered)
is acknowledged and ignored. Providers retry on anything but 2xx, so a database that fails is
503 (the provider calls again later).

Plivo is checked by its ``X-Plivo-Signature-V3``. Infobip and Sinch sign nothing this service
can check: their URL ends with a per-delivery token (runtime/receipts/tokens.py), and a wrong
or missing one is 403. Telesign's URL carries the token too, and its ``Authorization: TSA``
signature is checked as well.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Mapping
from functools import partial
from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi import APIRouter, Depends, Request, Response

from runtime import metrics
from runtime.api.deps import ServicesDep
from runtime.api.errors import ApiError
from runtime.errors import ConfigurationError, StoreUnavailableError, UnknownTenantError
from runtime.logs.events import event_lines
from runtime.receipts import (
    RECEIPTS_PATH,
    Receipt,
    ReceiptStore,
    receipt_event,
    twilio_signature_valid,
    vonage_signature_valid,
)
from runtime.receipts.reports import (
    Report,
    infobip_reports,
    plivo_report,
    sinch_report,
    telesign_report,
)
from runtime.receipts.signatures import plivo_signature_valid, telesign_signature_valid
from runtime.receipts.tokens import ReceiptTokens
from runtime.receipts.urls import callback_url


async def _ids_fit(tenant: str, delivery_id: str) -> None:
    """No tenant or delivery has an id over 64 characters: 404 before anything else (a 4xx,
    so that the provider stops calling), never a database error."""
    if len(tenant) > _ID_CHARS or len(delivery_id) > _ID_CHARS:
        raise ApiError(404, "no such delivery", "inexistent_delivery")


router = APIRouter(prefix=RECEIPTS_PATH, tags=["delivery receipts"])
_FITS = [Depends(_ids_fit)]  # every route's (the app adds routes, not routers)
log = logging.getLogger("runtime.api.receipts")

_MAX_FIELDS = 64  # a receipt has about twenty fields: more is not a provider's
_ID_CHARS = 64  # the longest tenant id and delivery id (the receipts table's columns)
_TWILIO_SMS = {"delivered": "delivered", "undelivered": "undelivered", "failed": "undelivered"}
_TWILIO_CALL = {
    "completed": "delivered",
    "busy": "undelivered",
    "no-answer": "undelivered",
    "failed": "undelivered",
    "canceled": "undelivered",
}
_VONAGE_SMS = {
    "delivered": "delivered",
    "expired": "undelivered",
    "failed": "undelivered",
    "rejected": "undelivered",
}


@router.post(
    dependencies=_FITS,
    path="/twilio/{tenant}/{delivery_id}",
    summary="Twilio's StatusCallback (signed)",
)
async def twilio_receipt(
    tenant: str, delivery_id: str, request: Request, svc: ServicesDep
) -> Response:
    _receipts_on(svc)
    fields = _form(await request.body())
    url = callback_url(svc.settings.public_base_url, "twilio", tenant, delivery_id)
    if request.url.query:
        url += f"?{request.url.query}"
    signature = request.headers.get("x-twilio-signature")
    tokens = [c.get("auth_token", "") for c in await _credentials(svc, tenant, "twilio")]
    if not any(twilio_signature_valid(token, url, fields, signature) for token in tokens):
        raise _refused("twilio", "bad_signature" if signature else "unsigned")
    if "CallStatus" in fields:
        carrier, channel, final = fields["CallStatus"], "voice", _TWILIO_CALL
        message_id = fields.get("CallSid")
    else:
        carrier = fields.get("MessageStatus") or fields.get("SmsStatus") or ""
        channel, final, message_id = "sms", _TWILIO_SMS, fields.get("MessageSid")
    status = final.get(carrier)
    if status is not None:
        receipt = Receipt(
            tenant=tenant,
            delivery_id=delivery_id,
            provider="twilio",
            channel=channel,
            status=status,
            carrier_status=carrier,
            error_code=fields.get("ErrorCode") if status == "undelivered" else None,
            message_id=message_id,
        )
        await _record(svc, receipt, fields.get("To"))
    return Response(status_code=204)


# Vonage calls with GET or POST (the account's choice): one route a method, so that each has
# its own operationId in the OpenAPI document (one route of two methods repeats it)
@router.get(
    dependencies=_FITS,
    path="/vonage/{tenant}/{delivery_id}",
    summary="Vonage's SMS delivery receipt (signed, GET)",
)
@router.post(
    dependencies=_FITS,
    path="/vonage/{tenant}/{delivery_id}",
    summary="Vonage's SMS delivery receipt (signed, POST)",
)
async def vonage_receipt(
    tenant: str, delivery_id: str, request: Request, svc: ServicesDep
) -> Response:
    _receipts_on(svc)
    fields = dict(request.query_params)
    if request.method == "POST":
        body = await request.body()
        if request.headers.get("content-type", "").startswith("application/json"):
            fields.update(_json_fields(body))
        else:
            fields.update(_form(body))
    secrets = [c.get("signature_secret", "") for c in await _credentials(svc, tenant, "vonage")]
    if not any(vonage_signature_valid(fields, secret) for secret in secrets):
        raise _refused("vonage", "bad_signature" if fields.get("sig") else "unsigned")
    carrier = fields.get("status", "")
    status = _VONAGE_SMS.get(carrier)
    if status is not None:
        error = fields.get("err-code")
        receipt = Receipt(
            tenant=tenant,
            delivery_id=delivery_id,
            provider="vonage",
            channel="sms",
            status=status,
            carrier_status=carrier,
            error_code=error if status == "undelivered" and error not in (None, "0") else None,
            message_id=fields.get("messageId"),
        )
        await _record(svc, receipt, fields.get("msisdn"))
    return Response(status_code=204)


@router.post(
    dependencies=_FITS,
    path="/plivo/{tenant}/{delivery_id}",
    summary="Plivo's message status (signed, V3)",
)
async def plivo_receipt(
    tenant: str, delivery_id: str, request: Request, svc: ServicesDep
) -> Response:
    _receipts_on(svc)
    fields = _form(await request.body())
    url = callback_url(svc.settings.public_base_url, "plivo", tenant, delivery_id)
    if request.url.query:
        url += f"?{request.url.query}"
    nonce = request.headers.get("x-plivo-signature-v3-nonce")
    signature = request.headers.get("x-plivo-signature-v3")
    tokens = [c.get("auth_token", "") for c in await _credentials(svc, tenant, "plivo")]
    if not any(plivo_signature_valid(t, url, fields, nonce, signature) for t in tokens):
        raise _refused("plivo", "bad_signature" if signature else "unsigned")
    await _record_report(svc, tenant, delivery_id, "plivo", "sms", plivo_report(fields))
    return Response(status_code=204)


@router.post(
    dependencies=_FITS,
    path="/infobip/{tenant}/{delivery_id}/{token}",
    summary="Infobip's delivery report (per-delivery token)",
)
async def infobip_receipt(
    tenant: str, delivery_id: str, token: str, request: Request, svc: ServicesDep
) -> Response:
    _receipts_on(svc)
    _token_valid(svc, "infobip", tenant, delivery_id, token)
    body = _json(await request.body())
    channel = "voice" if _is_voice(body) else "sms"
    for report in infobip_reports(body):
        await _record_report(svc, tenant, delivery_id, "infobip", channel, report)
    return Response(status_code=204)


@router.post(
    dependencies=_FITS,
    path="/sinch/{tenant}/{delivery_id}/{token}",
    summary="Sinch's delivery report (per-delivery token)",
)
async def sinch_receipt(
    tenant: str, delivery_id: str, token: str, request: Request, svc: ServicesDep
) -> Response:
    _receipts_on(svc)
    _token_valid(svc, "sinch", tenant, delivery_id, token)
    report = sinch_report(_json(await request.body()))
    await _record_report(svc, tenant, delivery_id, "sinch", "sms", report)
    return Response(status_code=204)


@router.post(
    dependencies=_FITS,
    path="/telesign/{tenant}/{delivery_id}/{token}",
    summary="Telesign's transaction callback (token and TSA signature)",
)
async def telesign_receipt(
    tenant: str, delivery_id: str, token: str, request: Request, svc: ServicesDep
) -> Response:
    _receipts_on(svc)
    _token_valid(svc, "telesign", tenant, delivery_id, token)
    body = await request.body()
    authorization = request.headers.get("authorization")
    accounts = await _credentials(svc, tenant, "telesign")
    if not any(
        telesign_signature_valid(
            c.get("customer_id", ""), c.get("api_key", ""), body, authorization
        )
        for c in accounts
    ):
        raise _refused("telesign", "bad_signature" if authorization else "unsigned")
    report = telesign_report(_json(body))
    await _record_report(svc, tenant, delivery_id, "telesign", "sms", report)
    return Response(status_code=204)


def _token_valid(
    svc: ServicesDep, provider: str, tenant: str, delivery_id: str, token: str
) -> None:
    """403 unless ``token`` is the one this service put in the delivery's callback URL."""
    if not ReceiptTokens(svc.keyring).valid(provider, tenant, delivery_id, token):
        raise _refused(provider, "bad_token")


def _is_voice(body: Any) -> bool:
    """Infobip's voice reports carry call details (``voiceCall``); SMS ones do not."""
    results = body.get("results") if isinstance(body, dict) else None
    first = results[0] if isinstance(results, list) and results else None
    return isinstance(first, dict) and "voiceCall" in first


async def _record_report(
    svc: ServicesDep, tenant: str, delivery_id: str, provider: str, channel: str, report: Report
) -> None:
    """Record and log ``report`` when it is final; an intermediate one changes nothing."""
    if report.status is None:
        return
    receipt = Receipt(
        tenant=tenant,
        delivery_id=delivery_id,
        provider=provider,
        channel=channel,
        status=report.status,
        carrier_status=report.carrier_status,
        error_code=report.error_code,
        message_id=report.message_id,
    )
    await _record(svc, receipt, report.recipient)


async def _credentials(svc: ServicesDep, tenant: str, provider: str) -> list[dict[str, str]]:
    """The credentials that may have signed a callback of ``provider`` about ``tenant``: the
    tenant's own when it uses ``provider``, and the default sender's when it is ``provider``."""
    found: list[dict[str, str]] = []
    try:
        config = await svc.pipeline.tenant(tenant)
    except (UnknownTenantError, ConfigurationError):
        raise _refused(provider, "unknown_tenant") from None
    if config.provider == provider:
        try:
            found.append(dict(svc.pipeline.tenants.credentials(config)))
        except Exception:  # credentials not readable: only the default sender's can match
            log.warning("receipt for %r: its %s credentials are unreadable", tenant, provider)
    default = svc.pipeline.default_sender
    if default.name == provider:
        found.append(_plain(default.credentials.model_dump()))
    return found


def _plain(values: Mapping[str, Any]) -> dict[str, str]:
    """Credential values as strings (SecretStr opened)."""
    out = {}
    for name, value in values.items():
        secret = getattr(value, "get_secret_value", None)
        out[name] = str(secret() if secret is not None else value or "")
    return out


async def _record(svc: ServicesDep, receipt: Receipt, recipient: str | None) -> None:
    """Record a final status once, then log it (the log line is written before the answer).
    A status the database records after the route answered 503 (it committed late) is logged
    all the same: the provider's retry then finds it recorded, and logs nothing again."""
    store = ReceiptStore(svc.engine)
    late = partial(_recorded_late, svc, receipt, recipient)
    try:
        new = await svc.submit(store.record, receipt, late=late)
    except StoreUnavailableError as exc:
        raise ApiError(503, f"the receipt was not recorded: {exc}", "store_unavailable") from None
    if new:  # a caller that leaves now does not lose the event
        await asyncio.shield(_in_background(_account(svc, receipt, recipient)))


_accounting: set[asyncio.Task[None]] = set()  # receipts' events being written


def _in_background(work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    task = asyncio.get_running_loop().create_task(work)
    _accounting.add(task)
    task.add_done_callback(_accounting.discard)
    task.add_done_callback(_said_if_failed)
    return task


def _said_if_failed(task: asyncio.Task[None]) -> None:
    """A receipt's event that could not be written is said, not lost as a task exception."""
    if not task.cancelled() and task.exception() is not None:
        exc = task.exception()
        log.error("a receipt's event was not written: %s: %s", type(exc).__name__, exc)


def _recorded_late(svc: ServicesDep, receipt: Receipt, recipient: str | None, new: bool) -> None:
    """The database recorded the status after the route stopped waiting: log it now."""
    if new:
        _in_background(_account(svc, receipt, recipient))


async def _account(svc: ServicesDep, receipt: Receipt, recipient: str | None) -> None:
    """The receipt's metric and its log event (``receipt_delivered``, ...)."""
    metrics.observe_receipt(receipt.tenant, receipt.provider, receipt.status)
    sink = svc.pipeline.log_sink
    if sink is not None:
        event = receipt_event(
            tenant=receipt.tenant,
            delivery_id=receipt.delivery_id,
            provider=receipt.provider,
            channel=receipt.channel,
            status=receipt.status,
            carrier_status=receipt.carrier_status,
            error_code=receipt.error_code,
            message_id=receipt.message_id,
            recipient=recipient,
        )
        await sink.write_lines(event_lines([event], []))


def _receipts_on(svc: ServicesDep) -> None:
    """Receipts are asked for only when public_base_url is set; else none is expected."""
    if not svc.settings.public_base_url:
        raise ApiError(404, "delivery receipts are off: public_base_url is not set", "not_found")


def _refused(provider: str, reason: str) -> ApiError:
    metrics.observe_receipt_refused(provider, reason)
    return ApiError(403, f"{provider} receipt refused: {reason.replace('_', ' ')}", reason)


def _form(body: bytes) -> dict[str, str]:
    """A form body's fields (the last of a repeated name); 400 when it is not one."""
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True, max_num_fields=_MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, "receipt body: not a form of at most 64 fields", "bad_body") from None
    return dict(pairs)


def _json(body: bytes) -> Any:
    """A JSON body of at most 64 KiB (a report is well under 2 KiB); 400 otherwise."""
    if len(body) > 65_536:
        raise ApiError(400, "receipt body: larger than 64 KiB", "bad_body")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ApiError(400, "receipt body: not JSON", "bad_body") from None


def _json_fields(body: bytes) -> dict[str, str]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ApiError(400, "receipt body: not JSON", "bad_body") from None
    if not isinstance(data, dict) or len(data) > _MAX_FIELDS:
        raise ApiError(400, "receipt body: not an object of at most 64 fields", "bad_body")
    return {str(k): "" if v is None else str(v) for k, v in data.items()}
