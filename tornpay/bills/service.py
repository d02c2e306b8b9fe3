"""Fetch a day's bill and keep its bytes; reconcile it and record the differences."""

import datetime
import logging
from dataclasses import dataclass, field
from typing import Any, List, Optional

from tornpay.interfaces import CoreContext
from tornpay.bills.parse import Bill, BillFormatError, parse_bill
from tornpay.bills.reconcile import Difference, compare
from tornpay.bills.source import BillSource, BillUnavailable, NoBill, bill_source
from tornpay.storage.db import database_proxy as db
from tornpay.storage.dbjobs import run_read, run_write
from tornpay.storage.models import utcnow
from tornpay.storage.opsmodels import BillDifference, BillRun

logger = logging.getLogger(__name__)

RETRY_AFTER = datetime.timedelta(minutes=15)  # "Bill Creating": ask again (addendum §5.6)


@dataclass
class Report:
    """What one reconciliation found; ``unsettled`` differences need a person."""

    run: BillRun
    differences: List[Difference] = field(default_factory=list)

    @property
    def unsettled(self) -> List[Difference]:
        return [d for d in self.differences if not d.settled]


def get_run(day: datetime.date, source: str) -> BillRun:
    """The day's BillRun row, created on first use."""
    with db.atomic():
        run = BillRun.get_or_none((BillRun.bill_date == day.isoformat())
                                  & (BillRun.source == source))
        if run is None:
            run = BillRun.create(bill_date=day.isoformat(), source=source)
    return run


def _update(run: BillRun, **values: Any) -> BillRun:
    with db.atomic():
        BillRun.update(**values).where(BillRun.id == run.id).execute()
    return BillRun.get_by_id(run.id)


async def fetch_and_store(ctx: CoreContext, day: datetime.date,
                          source: Optional[BillSource] = None) -> BillRun:
    """Fetch the bill of ``day`` and store its raw bytes (raises BillUnavailable/BillFormatError).

    ``No Bill Exist`` is stored as state ``no_bill``: an empty bill, which the
    reconciliation still checks against our payments of the day.
    """
    source = source or bill_source(ctx)

    async def update(**values: Any) -> BillRun:  # on the writer thread (SPEC §12)
        return await run_write(ctx.dbx, _update, run, **values)

    run = await run_write(ctx.dbx, get_run, day, source.name)
    attempts = run.attempts + 1
    try:
        raw = await source.fetch(day)
    except NoBill as exc:
        return await update(state="no_bill", attempts=attempts, last_error=str(exc),
                            fetched_at=utcnow(), raw=None, payments=0, refunds=0)
    except BillUnavailable as exc:
        logger.warning("bill %s: %s (%s)", day, exc, "will retry" if exc.retry else "giving up")
        await update(attempts=attempts, last_error=str(exc)[:1000],
                     next_try_at=utcnow() + RETRY_AFTER if exc.retry else None,
                     state=run.state if exc.retry else "failed")
        raise
    try:
        bill = parse_bill(raw)
    except BillFormatError as exc:
        logger.error("ALERT bill %s unreadable: %s (raw bytes kept)", day, exc)
        await update(state="failed", raw=raw, attempts=attempts, last_error=str(exc)[:1000],
                     fetched_at=utcnow())
        raise
    logger.info("bill %s: %d payments, %d refunds stored", day, len(bill.payments),
                len(bill.refunds))
    return await update(state="fetched", raw=raw, attempts=attempts, last_error=None,
                        fetched_at=utcnow(), next_try_at=None, payments=len(bill.payments),
                        refunds=len(bill.refunds))


def _stored_bill(run: BillRun) -> Optional[Bill]:
    if run.state == "no_bill":
        return Bill()
    if run.raw is None:
        return None
    return parse_bill(bytes(run.raw))


async def reconcile_day(ctx: CoreContext, day: datetime.date, fetch: bool = True,
                        source: Optional[BillSource] = None) -> Report:
    """Reconcile the bill of ``day`` (fetching it first when it is not stored yet)."""
    source = source or bill_source(ctx)
    run = await run_write(ctx.dbx, get_run, day, source.name)
    bill = _stored_bill(run)
    if bill is None:
        if not fetch:
            raise BillUnavailable(f"bill {day} is not stored; fetch it first", retry=True)
        run = await fetch_and_store(ctx, day, source)
        bill = _stored_bill(run)
    found = await compare(ctx, bill, day)
    return await run_write(ctx.dbx, _record, run, found, day)


def _record(run: BillRun, found: List[Difference], day: datetime.date) -> Report:
    with db.atomic():
        # Settled differences of earlier runs stay as history; open ones are re-found.
        BillDifference.delete().where((BillDifference.run == run.id)
                                      & (BillDifference.settled == False)).execute()  # noqa: E712
        for d in found:
            BillDifference.create(run=run.id, kind=d.kind, out_trade_no=d.out_trade_no,
                                  out_refund_no=d.out_refund_no, bill_fee=d.bill_fee,
                                  our_fee=d.our_fee, settled=d.settled, detail=d.detail[:500])
        total = BillDifference.select().where(BillDifference.run == run.id).count()
        open_ = BillDifference.select().where((BillDifference.run == run.id)
                                              & (BillDifference.settled == False)).count()  # noqa
        BillRun.update(state="reconciled", reconciled_at=utcnow(), differences=total,
                       unsettled=open_, lease_until=None).where(BillRun.id == run.id).execute()
    for d in found:
        if d.settled:
            logger.warning("bill %s: %s %s settled (%s)", day, d.kind, d.out_trade_no, d.detail)
        else:
            logger.error("ALERT bill %s: %s order=%s refund=%s bill_fee=%s our_fee=%s %s", day,
                         d.kind, d.out_trade_no, d.out_refund_no or "-", d.bill_fee, d.our_fee,
                         d.detail)
    logger.info("bill %s reconciled: %d differences, %d unsettled", day, len(found),
                sum(1 for d in found if not d.settled))
    return Report(BillRun.get_by_id(run.id), found)


async def stored_report(ctx: Any, day: datetime.date) -> Report:
    """The day's last reconciliation as stored: the database only, no call to WeChat."""
    return await run_read(ctx.dbx, _stored_report, day)


def _stored_report(day: datetime.date) -> Report:
    run = (BillRun.select().where((BillRun.bill_date == day.isoformat())
                                  & BillRun.reconciled_at.is_null(False))
           .order_by(BillRun.reconciled_at.desc()).first())
    if run is None:
        raise BillUnavailable("not reconciled yet (tornpay bill reconcile fetches and "
                              "reconciles it)", retry=False)
    rows = BillDifference.select().where(BillDifference.run == run.id).order_by(BillDifference.id)
    return Report(run, [Difference(kind=r.kind, out_trade_no=r.out_trade_no,
                                   out_refund_no=r.out_refund_no, bill_fee=r.bill_fee,
                                   our_fee=r.our_fee, settled=r.settled, detail=r.detail)
                        for r in rows])
