"""The usage trigger's webhook: a job of the durable queue (runtime/store/jobs.py), so that a
receiver that is down gets it later, from any node, and a crash does not lose it.

The request is ``POST url`` with a JSON body and ``X-Phone-Actions-Signature`` (HMAC-SHA256
under the trigger's secret, runtime/signing.py), within ``timeout`` seconds. A 2xx ends the job;
anything else is tried again after 10 s, 20 s, 40 s ... (at most 10 minutes apart), 12 times
in all, then the job fails with the last status. A deleted trigger's job ends quietly.
The POST goes through :mod:`runtime.outbound` (resolved once, pinned to a public address, no
redirect followed), so a webhook's name cannot be re-pointed at the service's own network.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime

import orjson

from runtime.outbound import OutboundFailed, OutboundHttp, OutboundRefused, OutboundRules
from runtime.signing import SIGNATURE_HEADER, sign
from runtime.store.jobrunner import Again, Done, Failed, Outcome
from runtime.store.jobs import Job
from runtime.usage_triggers.store import Firing, UsageTriggerStore

__all__ = ["KIND", "MAX_ATTEMPTS", "TriggerWebhooks", "payload"]

KIND = "usage_trigger"
MAX_ATTEMPTS = 12
log = logging.getLogger("runtime.usage_triggers")


def payload(firing: Firing) -> bytes:
    """The job's payload, which is also the webhook's body."""
    return orjson.dumps(
        {
            "type": "usage_trigger",
            "trigger_id": firing.trigger_id,
            "tenant": firing.tenant,
            "period": firing.period,
            "period_start": firing.period_start.astimezone(UTC),
            "threshold": firing.threshold,
            "count": firing.count,
            "fired_at": datetime.now(UTC),
        },
        option=orjson.OPT_UTC_Z,
    )


class TriggerWebhooks:
    def __init__(
        self,
        store: UsageTriggerStore,
        run: Callable[..., Awaitable[object]],
        *,
        timeout: float = 5.0,
        allow_hosts: Iterable[str] = (),
        outbound: OutboundHttp | None = None,
    ) -> None:
        """``allow_hosts``: the operator's ``outbound_allow_hosts``; ``outbound``: a seam for
        tests (an injected resolver and transport), which then brings its own rules."""
        self._store = store
        self._run = run
        self._timeout = timeout
        self._outbound = outbound or OutboundHttp(OutboundRules(allow_hosts))

    async def run(self, job: Job, body: bytes) -> Outcome:
        """The job handler: one signed POST."""
        trigger_id = str(orjson.loads(body)["trigger_id"])
        target = await self._run(self._store.target, trigger_id)
        if target is None:
            return Done()  # the trigger was deleted meanwhile
        assert isinstance(target, tuple)
        url, secret = target
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(secret, body)}
        problem: str | None
        try:
            answer = await self._outbound.post(job.tenant, url, body, headers, budget=self._timeout)
            problem = None if answer.ok else f"HTTP {answer.status}"
        except OutboundRefused as exc:
            problem = f"refused: {exc}"
        except OutboundFailed as exc:
            problem = str(exc)
        if problem is None:
            return Done()
        if job.attempts >= MAX_ATTEMPTS:
            return Failed(f"usage trigger {trigger_id}: {problem} after {job.attempts} tries")
        log.warning("usage trigger %s: webhook %s; tried again later", trigger_id, problem)
        return Again(delay=min(10.0 * 2 ** (job.attempts - 1), 600.0))

    async def aclose(self) -> None:
        await self._outbound.aclose()
