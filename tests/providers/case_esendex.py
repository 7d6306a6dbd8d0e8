"""Esendex against a local stub (XML dispatcher, HTTP-status errors).

The answers are fixtures built from the documented contract: the 200 ``<messageheaders>``
document as Esendex's own SDKs parse it (default namespace ``http://api.esendex.com/ns/``), and
errors as bare HTTP statuses with an optional ``<errors>`` body (its shape is unverified).
"""

from __future__ import annotations

from plugins.esendex import EsendexProvider
from tests.providers.harness import Answer, ProviderCase

USERNAME = "ops@acme.example"
PASSWORD = "esendex-pass-5f4e3d2c"
ACCOUNT = "EX0000000"
BATCH_ID = "F8BF9867-FF81-49E4-ACC5-774DE793B776"
MESSAGE_ID = "1183C73D-2E62-4F60-B610-30F160BDFBD5"
XML = {"Content-Type": "application/xml; charset=utf-8"}

OK_BODY = f"""<?xml version="1.0" encoding="utf-8"?>
<messageheaders batchid="{BATCH_ID}" xmlns="http://api.esendex.com/ns/">
  <messageheader uri="https://api.esendex.com/v1.0/MessageHeaders/{MESSAGE_ID}" id="{MESSAGE_ID}" />
</messageheaders>"""


def error_body(text: str) -> str:
    """An error answer in the (unverified) ``<errors>`` shape."""
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<response xmlns="http://api.esendex.com/ns/">'
        f"<errors><error><description>{text}</description></error></errors></response>"
    )


def config(base_url: str) -> dict[str, str]:
    return {"account_reference": ACCOUNT, "sender": "Acme", "base_url": base_url}


CASE = ProviderCase(
    name="esendex",
    plugin="plugins.esendex",
    make_provider=EsendexProvider,
    config=config,
    credentials={"username": USERNAME, "password": PASSWORD},
    ok={"sms": Answer(200, OK_BODY, XML), "voice": Answer(200, OK_BODY, XML)},
    message_id=MESSAGE_ID,
    permanent=Answer(402, error_body("Insufficient credits"), XML),
    permanent_code="402",
)
