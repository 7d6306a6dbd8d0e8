"""A pass of background work run now and then, for as long as the runtime's background work
runs: the deletion of old idempotency records (:mod:`key_retention`) and the sweep of claims a
crash left pending (:mod:`stale_claims`).

A pass the database did not answer is tried again at the next turn (a warning); a bug in one
is logged with its traceback and never ends the turns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from runtime.errors import StoreUnavailableError

__all__ = ["Periodic"]

log = logging.getLogger("runtime.delivery")


class Periodic:
    """Runs ``one_pass`` at once and then every ``every`` seconds; ``done`` gets each pass's
    count. ``what`` names the work in the log lines ("deleting old idempotency records")."""

    def __init__(
        self,
        one_pass: Callable[[], Awaitable[int]],
        *,
        every: float,
        what: str,
        done: Callable[[int], None],
    ) -> None:
        self._one_pass = one_pass
        self._every = every
        self._what = what
        self._done = done
        self._task: asyncio.Task[None] | None = None
        self.passes = asyncio.Event()
        """Set after each pass (done or failed): what a health check or a test waits for."""

    def start(self) -> None:
        """Start the passes in the running loop. Idempotent."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def aclose(self) -> None:
        """Stop the passes (a pass under way is abandoned where it waits)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            try:
                count = await self._one_pass()
            except StoreUnavailableError as exc:
                log.warning(
                    "%s: not done yet (tried again in %g s): %s", self._what, self._every, exc
                )
            except Exception:  # a bug must not end the passes for good
                log.exception("%s failed", self._what)
            else:
                self._done(count)
            self.passes.set()
            await asyncio.sleep(self._every)
