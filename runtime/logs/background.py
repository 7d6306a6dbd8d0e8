"""The stored log's background work for one pipeline (:class:`StoredLog`): the copy of the
JSON Lines file into the database (:mod:`runtime.logs.ingest`) and the log streams' delivery
job (:mod:`runtime.logs.stream_delivery`), both on the pipeline's store executor and job
runner. The pipeline wakes the copy after each report's lines were written."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import Engine

from runtime.logs.ingest import LogIngester
from runtime.logs.stored import LogRepository
from runtime.logs.stream_delivery import KIND, LogStreamDelivery
from runtime.logs.streams import LogStreamRepository
from runtime.settings import Settings
from runtime.store.crypto import Keyring
from runtime.store.executor import StoreExecutor
from runtime.store.jobrunner import JobRunner

__all__ = ["StoredLog"]


class StoredLog:
    """Owns the log copy and the log streams' delivery of one process."""

    def __init__(
        self,
        path: Path,
        open_engine: Callable[[], Awaitable[Engine]],
        executor: StoreExecutor,
        settings: Settings,
        jobs: JobRunner,
    ) -> None:
        self._open_engine = open_engine
        self._jobs = jobs
        self._executor = executor
        self._settings = settings
        self._repos: tuple[LogRepository, LogStreamRepository] | None = None
        # per event loop: a pipeline may serve several loops, one after another
        self._opening: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self.streams = LogStreamDelivery(self.repositories, executor, settings, jobs)
        jobs.register(KIND, self.streams.run)
        self.ingester = LogIngester(
            path,
            self.log_repository,
            executor,
            timeout=settings.store_timeout,
            poll_interval=settings.job_poll_interval,
            retention_days=settings.log_retention_days,
            every_pass=self.streams.sweep,
        )

    async def repositories(self) -> tuple[LogRepository, LogStreamRepository]:
        if self._repos is None:
            loop = asyncio.get_running_loop()
            opening = self._opening.get(loop)
            if opening is None:
                opening = self._opening[loop] = asyncio.Lock()
            async with opening:
                if self._repos is None:
                    engine = await self._open_engine()
                    keys = await self._executor.run(
                        Keyring.load,
                        None
                        if (key := self._settings.master_key) is None
                        else key.get_secret_value(),
                        self._settings.data_dir,
                        timeout=self._settings.store_timeout,
                    )
                    self._repos = (
                        LogRepository(engine),
                        LogStreamRepository(
                            engine,
                            keys,
                            allow_http_hosts=self._settings.outbound_hosts(),
                        ),
                    )
        return self._repos

    async def log_repository(self) -> LogRepository:
        return (await self.repositories())[0]

    def wake(self) -> None:
        """New lines are in the file (called after each report's write)."""
        self.ingester.wake()

    def start(self) -> None:
        self.ingester.start()

    async def aclose(self) -> None:
        await self.ingester.aclose()
        await self.streams.aclose()
