"""Delivery receipts: the carrier's word on a message a provider accepted.

Providers that report delivery status (Twilio's StatusCallback, Vonage's delivery receipts,
Plivo's message status) are asked to call
``{public_base_url}/api/v2/receipts/{provider}/{tenant}/{delivery_id}`` (:func:`callback_url`);
those whose callbacks carry no signature to check (Infobip, Sinch; Telesign as well) get that URL
with a per-delivery token at the end (:mod:`runtime.receipts.tokens`). The route
(runtime/api/routers/receipts.py) checks the provider's signature or the token, records a
final status once (:class:`ReceiptStore`) and writes its log event (:func:`receipt_event`).
docs/operations.md, "Delivery receipts".
"""

from __future__ import annotations

from runtime.receipts.events import RECEIPT_DESCRIPTIONS, receipt_event
from runtime.receipts.signatures import twilio_signature_valid, vonage_signature_valid
from runtime.receipts.store import Receipt, ReceiptStore
from runtime.receipts.urls import RECEIPTS_PATH, callback_url

__all__ = [
    "RECEIPTS_PATH",
    "RECEIPT_DESCRIPTIONS",
    "Receipt",
    "ReceiptStore",
    "callback_url",
    "receipt_event",
    "twilio_signature_valid",
    "vonage_signature_valid",
]
