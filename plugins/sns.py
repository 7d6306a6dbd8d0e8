"""Amazon SNS provider plugin: one-time codes by SMS with SNS ``Publish`` to a phone number.

SNS speaks the AWS Query protocol (PROVIDERS.md §4 "Amazon SNS"): ``POST {base_url}/`` with a
form body ``Action=Publish&Version=2010-03-31&PhoneNumber=<E.164>&Message=<text>`` and the
SMS attributes as ``MessageAttributes.entry.N.*``, signed with AWS Signature Version 4
(service ``sns``). It answers 200 with ``<PublishResponse>…<MessageId>`` or an
``<ErrorResponse><Error><Type/><Code/><Message/>`` whose ``Code`` classifies the failure.

Why not boto3's client: it is synchronous (a thread per in-flight send) and retries on its
own (a retry may deliver a second code). Here botocore only *signs* the request
(:class:`botocore.auth.SigV4Auth`); it is sent once, through the plugin's pooled aiohttp
session like every other provider. botocore comes with the optional ``aws`` extra and is
imported on first use: without it the provider still registers (so ``phone-actions
providers`` lists it) and every send fails with ``configuration_error``.

SNS has no voice; this provider sends SMS only.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote, urlencode
from xml.etree import ElementTree

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from runtime import hookimpl
from runtime.events import Channel
from runtime.http import HttpRequest, HttpResponse
from runtime.http_provider import (
    BaseUrl,
    HttpProvider,
    answered_error,
    configuration_error,
    refused,
)
from runtime.providers import PhoneMessage, Receipt

if TYPE_CHECKING:
    from runtime.providers import Provider
    from runtime.settings import Settings

__all__ = ["SnsConfig", "SnsCredentials", "SnsProvider", "register_providers"]

API_VERSION = "2010-03-31"
CONTENT_TYPE = "application/x-www-form-urlencoded; charset=utf-8"
MISSING_EXTRA = "Amazon SNS needs the aws extra: pip install 'phone-actions[aws]'"

PERMANENT_CODES = frozenset(
    {
        # Publish's own errors (botocore's SNS model).
        "InvalidParameter",  # e.g. a number SNS cannot send to, a sender ID it rejects
        "ParameterValueInvalid",
        "InvalidParameterValue",
        "ValidationException",
        "AuthorizationError",  # the key may not publish (IAM), or SMS is not enabled
        "InvalidSecurity",  # not signed with SigV4 / not over HTTPS
        "NotFound",
        "EndpointDisabled",
        "OptedOut",  # the recipient replied STOP
        # Errors of every AWS Query API: the credentials or the signature are wrong.
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "MissingAuthenticationToken",
        "AccessDenied",
        "ExpiredToken",
        "OptInRequired",
    }
)
"""Codes no retry fixes: SNS refused the message without taking it."""

THROTTLING_CODES = frozenset({"Throttling", "ThrottlingException", "Throttled"})
"""Rate limited: SNS refused the message before taking it (retryable, not handed off)."""

INTERNAL_CODES = frozenset({"InternalError", "InternalFailure", "ServiceUnavailable"})
"""Retryable; handed off or not by the HTTP status (a 500 may come after SNS took it)."""


class SnsConfig(BaseModel):
    """A tenant's public Amazon SNS settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    region: str = Field(
        pattern=r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$",
        description="AWS region that sends the SMS and signs the request (`eu-west-1`).",
    )
    base_url: BaseUrl | None = Field(
        default=None,
        description=(
            "SNS endpoint; unset: `https://sns.{region}.amazonaws.com` "
            "(tests: a local stub or moto server)."
        ),
    )
    sms_type: Literal["Transactional", "Promotional"] = Field(
        default="Transactional",
        description=(
            "`AWS.SNS.SMS.SMSType`: `Transactional` (routed for reliability, as codes need) "
            "or `Promotional` (cheaper)."
        ),
    )
    sender_id: str | None = Field(
        default=None,
        max_length=11,
        pattern=r"^[0-9]*[A-Za-z][A-Za-z0-9]*$",
        description=(
            "`AWS.SNS.SMS.SenderID`: alphanumeric sender ID (1-11 letters or digits, at least "
            "one letter), where the destination country supports one."
        ),
    )
    origination_number: str | None = Field(
        default=None,
        pattern=r"^\+[1-9]\d{1,14}$",
        description=(
            "`AWS.SNS.SMS.OriginationNumber`: an E.164 number of the account to send from."
        ),
    )

    @property
    def endpoint(self) -> str:
        """``base_url``, or the region's public SNS endpoint."""
        return self.base_url or f"https://sns.{self.region}.amazonaws.com"


class SnsCredentials(BaseModel):
    """A tenant's AWS credentials (write-only)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    access_key_id: str = Field(
        min_length=16,
        max_length=128,
        pattern=r"^\w+$",
        description="AWS access key ID (`AKIA…`, or `ASIA…` with a session token).",
    )
    secret_access_key: SecretStr = Field(min_length=1, description="AWS secret access key.")
    session_token: SecretStr | None = Field(
        default=None, description="Session token of temporary credentials (STS); else unset."
    )


@dataclass(frozen=True, slots=True)
class _Botocore:
    """The three botocore classes this plugin signs with."""

    sigv4_auth: Any
    aws_request: Any
    credentials: Any


_BOTOCORE: _Botocore | None = None


class _SilentLogger(logging.Logger):
    """Drops every record, whatever the logging configuration says.

    botocore's signer logs the canonical request at DEBUG, and it holds the session token
    (``x-amz-security-token`` is a signed header). This logger replaces ``botocore.auth``'s
    module logger; it is not registered with ``logging``'s manager, so ``dictConfig`` cannot
    switch it back on. Only botocore's signing messages are lost.
    """

    def handle(self, record: logging.LogRecord) -> None:
        """Drop ``record``."""


_SILENT_LOGGER = _SilentLogger("plugins.sns.botocore_auth")


def _load_botocore() -> _Botocore:
    """botocore's signing classes, imported on first use (the ``aws`` extra is optional)."""
    global _BOTOCORE
    if _BOTOCORE is None:
        try:
            auth: Any = importlib.import_module("botocore.auth")
            awsrequest = importlib.import_module("botocore.awsrequest")
            credentials = importlib.import_module("botocore.credentials")
        except ImportError:
            raise configuration_error(MISSING_EXTRA) from None
        auth.logger = _SILENT_LOGGER
        _BOTOCORE = _Botocore(auth.SigV4Auth, awsrequest.AWSRequest, credentials.Credentials)
    return _BOTOCORE


def publish_fields(message: PhoneMessage, config: SnsConfig) -> dict[str, str]:
    """The Query-protocol fields of one ``Publish`` to ``message.recipient`` (E.164)."""
    fields = {
        "Action": "Publish",
        "Version": API_VERSION,
        "PhoneNumber": message.recipient,
        "Message": message.text,
    }
    attributes: list[tuple[str, str]] = [("AWS.SNS.SMS.SMSType", config.sms_type)]
    if config.sender_id is not None:
        attributes.append(("AWS.SNS.SMS.SenderID", config.sender_id))
    if config.origination_number is not None:
        attributes.append(("AWS.SNS.SMS.OriginationNumber", config.origination_number))
    for number, (name, value) in enumerate(attributes, 1):
        prefix = f"MessageAttributes.entry.{number}"
        fields[f"{prefix}.Name"] = name
        fields[f"{prefix}.Value.DataType"] = "String"
        fields[f"{prefix}.Value.StringValue"] = value
    return fields


def parse_xml(body: bytes) -> dict[str, str]:
    """The text of every leaf element of an SNS answer, by local name (namespaces dropped).

    SNS answers are small and flat enough that ``MessageId``, ``Code``, ``Message`` and
    ``Type`` are unique. A DOCTYPE or an entity declaration is refused before parsing (no
    entity expansion from a hostile or broken endpoint); ``ValueError`` for any bad body.
    """
    head = body.upper()
    if b"<!DOCTYPE" in head or b"<!ENTITY" in head:
        raise ValueError("XML with a DOCTYPE or ENTITY declaration")
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as exc:
        raise ValueError(f"not XML ({exc})") from None
    values: dict[str, str] = {}
    for element in root.iter():
        if len(element) == 0:
            values.setdefault(element.tag.rpartition("}")[2], (element.text or "").strip())
    return values


class SnsProvider(HttpProvider):
    """SMS through Amazon SNS ``Publish``, signed with botocore, sent with aiohttp."""

    name = "sns"
    label = "Amazon SNS"
    channels = frozenset[Channel]({"sms"})
    config_model = SnsConfig
    credentials_model = SnsCredentials

    def build_request(
        self, message: PhoneMessage, config: SnsConfig, credentials: SnsCredentials
    ) -> HttpRequest:
        botocore = _load_botocore()
        url = config.endpoint + "/"
        body = urlencode(publish_fields(message, config), quote_via=quote).encode()
        token = credentials.session_token
        signer = botocore.sigv4_auth(
            botocore.credentials(
                credentials.access_key_id,
                credentials.secret_access_key.get_secret_value(),
                token.get_secret_value() if token is not None else None,
            ),
            "sns",
            config.region,
        )
        request = botocore.aws_request(
            method="POST", url=url, data=body, headers={"Content-Type": CONTENT_TYPE}
        )
        signer.add_auth(request)
        return HttpRequest("POST", url, {k: str(v) for k, v in request.headers.items()}, body)

    def read_response(self, response: HttpResponse, message: PhoneMessage) -> Receipt:
        values = parse_xml(response.body)
        if 200 <= response.status < 300:
            message_id = values["MessageId"]
            if not message_id:
                raise ValueError("empty MessageId")
            return Receipt(provider=self.name, message_id=message_id)
        code = values.get("Code") or None
        text = values.get("Message") or "no details"
        if code is not None and (code in PERMANENT_CODES or code in THROTTLING_CODES):
            raise refused(
                code,
                f"Amazon SNS refused the message ({code}: {text})",
                retryable=code in THROTTLING_CODES,
                status=response.status,
            )
        raise answered_error(
            response,
            code,
            f"Amazon SNS answered HTTP {response.status}" + (f" ({code}: {text})" if code else ""),
            retryable_codes=INTERNAL_CODES | THROTTLING_CODES,
        )


@hookimpl
def register_providers(register: Callable[[Provider], None], settings: Settings) -> None:
    """Register the Amazon SNS provider, with or without botocore (checked at each send)."""
    register(SnsProvider())
