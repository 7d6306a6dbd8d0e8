"""The pipeline's policy step: a tenant's country and number-type rules, then its rate limits.

:meth:`PhonePolicy.check` answers None (the request may go on) or the ``rejected`` report
that ends it: reason ``country_blocked``, ``number_type_blocked``, ``rate_limited`` (with the
rule in ``limit`` and the seconds to wait in ``retry_after``) or ``limits_unavailable``. It
runs before rendering and routing, so a refused request reaches no provider and takes nothing
of the default sender's or the outbox's cap.
"""

from __future__ import annotations

from runtime.delivery.reports import rejected
from runtime.events import DeliveryReport, PhoneMessageRequest
from runtime.policy.config import PhoneLimits
from runtime.policy.geo import classify, geo_refusal
from runtime.policy.limiter import Limiter, checks_for
from runtime.settings import Settings

__all__ = ["PhonePolicy"]


class PhonePolicy:
    """One node's policy step; its limiter is shared by every tenant (keys carry the tenant)."""

    def __init__(self, limiter: Limiter) -> None:
        self.limiter = limiter

    @classmethod
    def from_settings(cls, settings: Settings) -> PhonePolicy:
        return cls(
            Limiter(
                settings.redis_url,
                timeout=settings.redis_timeout,
                on_error=settings.limits_on_redis_error,
            )
        )

    async def check(
        self, request: PhoneMessageRequest, limits: PhoneLimits
    ) -> DeliveryReport | None:
        """None when ``request`` may be sent, else its ``rejected`` report."""
        geo = geo_refusal(request.recipient, limits)
        if geo is not None:
            return rejected(request, geo.reason, geo.detail)
        if not limits.limits_anonymous and not request.user.get("user_id"):
            return None  # no rule applies (the default limits are per user)
        region, _ = classify(request.recipient)
        refusal = await self.limiter.check(checks_for(request, limits, region))
        if refusal is None:
            return None
        done = rejected(request, refusal.reason, refusal.detail)
        return done.model_copy(update={"limit": refusal.rule, "retry_after": refusal.retry_after})

    async def aclose(self) -> None:
        await self.limiter.aclose()
