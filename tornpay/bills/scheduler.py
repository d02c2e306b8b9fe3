"""The daily job: after ``bills.fetch_at`` (Beijing), fetch and reconcile the day before's bill.

Days are caught up: the two days before that are reconciled too when no run
of theirs is done (the servers were down at fetch time).

Wakes every minute; one process claims the day with a lease on its BillRun
row, so several servers on one database reconcile each day once. "Bill
Creating" leaves the run due again after ``service.RETRY_AFTER``.
"""

import datetime
import logging
from typing import Any, List, Optional

from tornpay.bills.service import get_run, reconcile_day
from tornpay.bills.source import BillUnavailable, bill_source
from tornpay.bills.parse import BEIJING, BillFormatError
from tornpay.orders.periodic import PeriodicWorker
from tornpay.storage.db import database_proxy as db
from tornpay.storage.dbjobs import run_write
from tornpay.storage.models import utcnow
from tornpay.storage.opsmodels import BillRun

logger = logging.getLogger(__name__)

LEASE = datetime.timedelta(minutes=10)
DONE_STATES = ("reconciled", "failed")
CATCH_UP_DAYS = 3  # a day missed while every server was down is still done, if recent
ALERT_AFTER = 8


def due_day(now_utc: datetime.datetime, fetch_at: str) -> Optional[datetime.date]:
    """Yesterday (Beijing) once Beijing time has passed ``fetch_at`` today, else None."""
    local = now_utc.replace(tzinfo=datetime.timezone.utc).astimezone(BEIJING)
    hour, minute = (int(x) for x in fetch_at.split(":"))
    if (local.hour, local.minute) < (hour, minute):
        return None
    return local.date() - datetime.timedelta(days=1)


def claim(run: BillRun, now: datetime.datetime) -> bool:
    """Take the day's run for LEASE unless it is done, leased, or waiting for a retry."""
    with db.atomic():
        n = (BillRun.update(lease_until=now + LEASE)
             .where((BillRun.id == run.id) & BillRun.state.not_in(DONE_STATES)
                    & (BillRun.lease_until.is_null() | (BillRun.lease_until < now))
                    & (BillRun.next_try_at.is_null() | (BillRun.next_try_at <= now)))
             .execute())
    return n == 1


def _release(run: BillRun) -> None:
    with db.atomic():
        BillRun.update(lease_until=None).where(BillRun.id == run.id).execute()


class BillScheduler(PeriodicWorker):
    """Fetch and reconcile yesterday's bill once a day when ``bills.enabled``."""

    name = "bill scheduler"

    def __init__(self, ctx: Any):
        self.ctx = ctx
        self.cfg = ctx.settings.bills

    def interval(self) -> float:
        return 60.0

    def start(self) -> None:
        if self.cfg.enabled:
            super().start()

    async def run_once(self) -> List[str]:
        """One look at the clock: reconcile the due days not done yet; report lines."""
        now = utcnow()
        last = due_day(now, self.cfg.fetch_at)
        if last is None:
            return []
        done = []
        for back in range(CATCH_UP_DAYS - 1, -1, -1):
            line = await self._one_day(last - datetime.timedelta(days=back), now)
            if line:
                done.append(line)
        return done

    async def _one_day(self, day: datetime.date, now: datetime.datetime) -> Optional[str]:
        # On the writer thread (SPEC §12): a write from the loop's own connection
        # can meet the writer's lock and fail at once ("database is locked").
        dbx = self.ctx.dbx
        run = await run_write(dbx, get_run, day, bill_source(self.ctx).name)
        if not await run_write(dbx, claim, run, now):
            return None
        try:
            report = await reconcile_day(self.ctx, day)
        except BillUnavailable as exc:
            # Retried every RETRY_AFTER; past ALERT_AFTER attempts (~2 hours) a person looks.
            level = logging.ERROR if run.attempts + 1 >= ALERT_AFTER else logging.WARNING
            logger.log(level, "%sbill %s not reconciled yet: %s",
                       "ALERT " if level == logging.ERROR else "", day, exc)
            return None
        except BillFormatError:
            return None  # logged as an ALERT where it was found; the run is failed
        finally:
            await run_write(dbx, _release, run)
        return f"{day}: {len(report.unsettled)} unsettled"


def register_metrics(metrics: Any) -> None:
    """Add the bill's families to an app's own metrics registry."""
    from tornpay.bills.metrics import BillCollector

    if metrics is not None:
        metrics.registry.register(BillCollector())
