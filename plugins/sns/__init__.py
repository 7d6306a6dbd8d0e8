"""Amazon SNS provider plugin: one-time codes by SMS with SNS ``Publish`` to a phone number.

SNS speaks the AWS Query protocol (docs/providers/sns.md): ``POST {base_url}/`` with a
form body ``Action=Publish&Version=2010-03-31&PhoneNumber=<E.164>&Message=<text>`` and the
SMS attributes as ``MessageAttributes.entry.N.*``, signed with AWS Signature Version 4
(service ``sns``). It answers 200 with ``<PublishResponse>…<MessageId>`` or an
``<ErrorResponse><Error><Type/><Code/><Message/>`` whose ``Code`` classifies the failure.

Why not boto3's client: it is synchronous (a thread per in-flight send) and retries on its
own (a retry may deliver a second code). The request is sent once, through the plugin's
pooled aiohttp session like every other provider.

Modules: :mod:`~plugins.sns.settings` (the tenant's settings and credentials),
:mod:`~plugins.sns.sigv4` (our SigV4 signer, and why not botocore's),
:mod:`~plugins.sns.query` (the Publish body and the XML answers),
:mod:`~plugins.sns.credentials` (botocore's default chain), :mod:`~plugins.sns.errors` (the
error table) and :mod:`~plugins.sns.provider` (the provider).

Credentials: a tenant gives static keys (``access_key_id`` and ``secret_access_key``, with an
optional ``session_token``), which need nothing but the standard library; or none, and the
plugin uses botocore's default credential chain (environment, shared config and credential
files, SSO, container or instance role), which needs the optional ``aws`` extra. The chain is
resolved once per provider, in a worker thread (it may read files or ask the instance
metadata service), and the credentials object is kept: botocore's refreshable credentials
refresh themselves, again in a worker thread when a refresh is due, so the event loop never
blocks on it. Without botocore the provider still registers (``phone-actions providers``
lists it); sends with static keys work, sends without fail with ``configuration_error``.

SNS has no voice; this provider sends SMS only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from plugins.sns.credentials import MISSING_EXTRA, NO_CREDENTIALS
from plugins.sns.errors import (
    COMMON_ERRORS,
    ERRORS,
    INTERNAL_CODES,
    PERMANENT_CODES,
    PUBLISH_ERRORS,
    THROTTLING_CODES,
)
from plugins.sns.provider import SnsProvider
from plugins.sns.query import form_encode, parse_xml, publish_body, published_message_id
from plugins.sns.settings import SnsConfig, SnsCredentials
from plugins.sns.sigv4 import CONTENT_TYPE, Target, amz_date, sigv4_headers, target
from runtime import hookimpl

if TYPE_CHECKING:
    from runtime.providers import Provider
    from runtime.settings import Settings

__all__ = [
    "COMMON_ERRORS",
    "CONTENT_TYPE",
    "ERRORS",
    "INTERNAL_CODES",
    "MISSING_EXTRA",
    "NO_CREDENTIALS",
    "PERMANENT_CODES",
    "PUBLISH_ERRORS",
    "THROTTLING_CODES",
    "SnsConfig",
    "SnsCredentials",
    "SnsProvider",
    "Target",
    "amz_date",
    "form_encode",
    "parse_xml",
    "publish_body",
    "published_message_id",
    "register_providers",
    "sigv4_headers",
    "target",
]


@hookimpl
def register_providers(register: Callable[[Provider], None], settings: Settings) -> None:
    """Register the Amazon SNS provider, with or without botocore (needed only for the chain)."""
    register(SnsProvider())
