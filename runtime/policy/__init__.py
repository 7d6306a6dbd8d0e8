"""Phone abuse protection: rate limits (the ``limits`` library, memory or Redis), country
allow and deny lists, and refused number types (docs/abuse_protection.md).

Only the configuration model is imported here (``runtime.tenants`` needs it); the pipeline's
step is :class:`runtime.policy.gate.PhonePolicy`.
"""

from __future__ import annotations

from runtime.policy.config import PhoneLimits

__all__ = ["PhoneLimits"]
