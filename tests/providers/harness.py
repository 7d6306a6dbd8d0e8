"""What every HTTP provider plugin's tests share: one :class:`ProviderCase` per plugin.

A plugin's tests define a ``CASE`` in ``tests/providers/case_<name>.py``; ``test_common.py``
finds every case and runs the same checks on each (success per channel, an unsupported channel,
a permanent refusal, 429, 500, 503, a timeout, a refused connection, a malformed success, no
secret in any error, and the fallback rule through the pipeline). Provider-specific error
tables live in the plugin's own ``test_<name>.py``.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runtime.http_provider import HttpProvider
from runtime.providers import PhoneMessage
from tests.support.stub_server import Body

__all__ = ["CODE", "RECIPIENT", "Answer", "ProviderCase", "all_cases", "make_message"]

CODE = "735194"
RECIPIENT = "+447911123456"  # a valid UK mobile number


@dataclass(frozen=True)
class Answer:
    """One canned HTTP answer from a fake provider."""

    status: int
    body: Body = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ProviderCase:
    """How to drive one provider plugin against a local stub.

    ``config(base_url)`` returns the tenant's provider settings (a dict, as in tenants.toml)
    pointing the plugin at the stub; ``credentials`` a dict of credential values, each at
    least 8 characters so that a leak check is meaningful. ``ok`` answers (per channel) carry
    ``message_id``. ``permanent`` is an answer the provider's table calls permanent and
    ``permanent_code`` the code the plugin must report for it.
    """

    name: str
    plugin: str  # the module that registers the provider (``plugins.mitto``)
    make_provider: Callable[[], HttpProvider]
    config: Callable[[str], dict[str, Any]]
    credentials: dict[str, str]
    ok: dict[str, Answer]  # channel -> success answer
    message_id: str
    permanent: Answer
    permanent_code: str
    unsupported_channel: str | None = None  # a channel the provider does not carry


def make_message(**fields: Any) -> PhoneMessage:
    """A rendered SMS for CODE; ``fields`` override (``channel="voice"``, ``timeout=0.3``)."""
    values: dict[str, Any] = {
        "id": "msg-1",
        "tenant": "acme",
        "recipient": RECIPIENT,
        "channel": "sms",
        "purpose": "verification",
        "locale": "en-GB",
        "code": CODE,
        "text": f"{CODE} is your code",
        "timeout": 5.0,  # generous for a loaded CI machine; timeout tests pass their own
    }
    if fields.get("channel") == "voice":
        values["text"] = "Your code is 7. 3. 5. 1. 9. 4."
    values.update(fields)
    return PhoneMessage(**values)


def all_cases() -> list[ProviderCase]:
    """Every ``CASE`` defined in a ``tests/providers/case_*.py`` module, sorted by name."""
    import tests.providers as package

    cases = []
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("case_"):
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            cases.append(module.CASE)
    return sorted(cases, key=lambda case: case.name)
