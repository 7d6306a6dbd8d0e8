"""The one context variable of HTTP observation, for code that cannot take an observer.

Everything of ours takes the attempt's :class:`~runtime.http.HttpObserver` as an argument:
the pipeline passes it to ``provider.send(..., observer=...)``, and providers pass it on to
:meth:`~runtime.http.PooledHttp.send`. Two places cannot receive it that way, so the provider
that calls them sets it here, around that one call, and they read it:

- the Twilio SDK calls our HTTP client's ``request()`` with the SDK's own signature, from
  inside ``client.messages.create_async()``;
- the sandbox egress sends through one transport shared by every tenant's invocations, and is
  reached through the sandbox pool's tasks, whose protocol carries no observer.

A task started inside the block inherits the observer (asyncio copies the context), and one
started elsewhere never sees it: each attempt's observer stays its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runtime.http import HttpObserver

__all__ = ["current_observer", "observed_by"]

_OBSERVER: ContextVar[HttpObserver | None] = ContextVar("phone_actions_observer", default=None)


@contextmanager
def observed_by(observer: HttpObserver | None) -> Iterator[None]:
    """Make ``observer`` the one :func:`current_observer` returns inside the block."""
    token = _OBSERVER.set(observer)
    try:
        yield
    finally:
        _OBSERVER.reset(token)


def current_observer() -> HttpObserver | None:
    """The observer set by the provider around this call, if any."""
    return _OBSERVER.get()
