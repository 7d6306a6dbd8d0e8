"""Usage triggers: a tenant's threshold of messages per hour, day or month, and the webhook
called once per period when a count crosses it (Twilio's usage triggers; docs/operations.md).

- :class:`UsageTriggerStore`: the triggers, the counts per period, the firings (one per trigger
  and period, enforced by the database: once across nodes);
- :class:`UsageCounter`: counts reports in memory on the loop and adds them to the database in
  batches on the store executor; a crossing queues a job;
- :class:`TriggerWebhooks`: the job's handler, a signed POST (runtime/signing.py), retried.
"""

from __future__ import annotations

from runtime.usage_triggers.counter import UsageCounter, counts_as_message
from runtime.usage_triggers.store import Firing, UsageTriggerStore, period_start
from runtime.usage_triggers.webhook import KIND, TriggerWebhooks

__all__ = [
    "KIND",
    "Firing",
    "TriggerWebhooks",
    "UsageCounter",
    "UsageTriggerStore",
    "counts_as_message",
    "period_start",
]
