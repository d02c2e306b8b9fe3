"""A background pass repeated in the IOLoop: start, stop, and keep going after a failed pass."""

import asyncio
import logging
from typing import Optional

logger = logging.getLogger(__name__)


class PeriodicWorker:
    """Run ``run_once()`` every ``interval()`` seconds until stopped.

    Subclasses define ``async run_once()`` and ``interval()``; an exception in one
    pass is logged and the next pass runs as usual, so one bad row or a
    WeChat outage never stops reconciliation for good.
    """

    name = "periodic worker"
    _task: Optional[asyncio.Task] = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                logger.exception("%s pass failed; will retry", self.name)
            await asyncio.sleep(self.interval())
