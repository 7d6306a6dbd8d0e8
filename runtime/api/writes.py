"""After a configuration change: make it live on this node at once.

The store bumps the tenant's config version in the write's transaction; other nodes see it
on their next poll (docs/service.md, "Several nodes"). This node refreshes its directory right
after the write, so the next delivery it makes already runs the change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from runtime.api.deps import Services
from runtime.errors import StoreUnavailableError

__all__ = ["write"]

log = logging.getLogger("runtime.api")

T = TypeVar("T")


async def write(svc: Services, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` on the store executor, then a directory refresh. A refresh
    that fails leaves the change to the directory's next poll (the write is done)."""
    result = await svc.call(lambda: fn(*args, **kwargs))
    try:
        await svc.directory.refresh()
    except StoreUnavailableError as exc:
        log.warning("the change is stored; this node sees it on its next poll: %s", exc)
    return result
