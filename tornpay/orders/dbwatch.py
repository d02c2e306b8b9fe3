"""The database watched while running: a worker re-checks that it can be written (``/healthz``).

The probes themselves are storage's (``tornpay.storage.health``); this is the
periodic worker and its metric, which belong to the running core.
"""

import asyncio
import logging
from typing import Optional

import peewee

from tornpay.orders.periodic import PeriodicWorker
from tornpay.storage.health import _identity, _sqlite_path, file_problem, probe_write
from tornpay.storage.db import ping

logger = logging.getLogger("tornpay.storage.health")  # the name operators grep for


class DatabaseHealth(PeriodicWorker):
    """The last verdict on the database: ``ok`` and, when not, ``reason``.

    Every ``check_interval`` seconds ``check()`` looks at the SQLite file
    (gone, replaced, read-only) on the loop and runs the write probe in a
    worker thread.
    """

    name = "database health check"

    def __init__(self, db: peewee.Database, interval: float):
        self.db = db
        self.check_interval = interval
        self.ok = True
        self.reason = ""
        self._path = _sqlite_path(db)
        self._identity = _identity(self._path)

    def interval(self) -> float:
        return self.check_interval

    def answers(self) -> bool:
        """Whether the database answers a trivial query right now (``/healthz``)."""
        return ping(self.db)

    async def run_once(self) -> None:
        await self.check()

    def _file_problem(self) -> Optional[str]:
        if self._path is None:
            return None
        now = _identity(self._path)
        if now is None:
            return f"database file {self._path} has vanished"
        if self._identity is not None and now != self._identity:
            return f"database file {self._path} was replaced by another file"
        return file_problem(self._path)

    async def check(self) -> bool:
        problem = self._file_problem()
        if problem is None:
            loop = asyncio.get_running_loop()
            problem = await loop.run_in_executor(None, probe_write, self.db)
        self._set(problem)
        return self.ok

    def _set(self, problem: Optional[str]) -> None:
        if problem and self.ok:
            logger.error("database cannot be written: %s; notifies are answered FAIL (WeChat "
                         "retries), pages show an error, /healthz answers 503", problem)
        elif not problem and not self.ok:
            logger.warning("database can be written again (was: %s)", self.reason)
        self.ok, self.reason = not problem, problem or ""


class HealthCollector:
    """``tornpay_database_writable``: 1 while the last check could write, 0 otherwise."""

    def __init__(self, health: DatabaseHealth):
        self.health = health

    def describe(self):
        return [self._family()]

    def collect(self):
        family = self._family()
        family.add_metric([], 1 if self.health.ok else 0)
        yield family

    @staticmethod
    def _family():
        from prometheus_client.core import GaugeMetricFamily

        return GaugeMetricFamily("tornpay_database_writable",
                                 "1 while the database can be written (checked every "
                                 "database.check_interval_seconds)")
