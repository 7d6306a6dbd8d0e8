"""The delivery pipeline (:class:`Pipeline`) and what it is made of.

- ``pipeline``: the path of one message, idempotency, cancellation and shutdown;
- ``attempt``: one try at one provider, and the hand-off rule for its failures;
- ``default_sender``: the operator's default sender and its per-tenant lifetime cap;
- ``reports``: every way a delivery can end, as a :class:`~runtime.events.DeliveryReport`.
"""

from runtime.delivery.pipeline import Pipeline, request_fingerprint

__all__ = ["Pipeline", "request_fingerprint"]
