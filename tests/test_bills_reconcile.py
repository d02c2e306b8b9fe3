"""Reconciling the daily bill against the orders: every kind of difference, settling A1 once."""

import datetime
import logging

import pytest

from console_helpers import (ADMIN, Recorder, login, operator, recorder,  # noqa: F401
                             tp_overrides)
from flow_helpers import ALICE, paid_order, sim_control, wait_for
from tornpay.bills import scheduler
from tornpay.bills.service import fetch_and_store, reconcile_day
from tornpay.bills.source import BillUnavailable
from tornpay.orders.service import create_order
from tornpay.storage.models import Delivery, Order, Refund, utcnow
from tornpay.storage.opsmodels import BillDifference, BillRun

pytestmark = pytest.mark.hold_refunds  # refunds finish only through the control API

from tornpay.protocol.wechat_time import BEIJING  # noqa: E402


def today() -> datetime.date:
    return datetime.datetime.now(BEIJING).date()


async def new_order(ctx, product="coach-205") -> str:
    return (await create_order(ctx, product, ALICE, "127.0.0.1")).out_trade_no


def kinds(report):
    return sorted((d.kind, d.settled) for d in report.differences)


@pytest.mark.gen_test
@pytest.mark.parametrize("api_version", ["v2", "v3"])
async def test_a_day_that_agrees(app, ctx, http_client, base_url, recorder):
    a = await paid_order(ctx, http_client, base_url)
    await paid_order(ctx, http_client, base_url, "coach-101")
    from tornpay.orders.refunds import request_refund

    refund = await request_refund(ctx, a, 900)
    await sim_control(http_client, base_url, "refunds/finish", out_refund_no=refund.out_refund_no)
    await wait_for(lambda: Refund.get_by_id(refund.out_refund_no).state == "SUCCESS")
    report = await reconcile_day(ctx, today())
    assert report.differences == []
    run = BillRun.get()
    assert (run.state, run.payments, run.refunds, run.unsettled) == ("reconciled", 2, 1, 0)
    assert bytes(run.raw)[:2] == b"\x1f\x8b"  # the raw bytes as WeChat sent them (gzip)


@pytest.mark.gen_test
@pytest.mark.parametrize("api_version", ["v2", "v3"])
async def test_paid_at_wechat_but_notify_and_reconciler_missed_it(
        app, ctx, http_client, base_url, recorder):
    await sim_control(http_client, base_url, "faults", name="notify_drop")
    no = await new_order(ctx)
    await sim_control(http_client, base_url, "pay", out_trade_no=no)
    assert Order.get_by_id(no).state == "PREPAID"  # no notify; the reconciler waits an hour
    report = await reconcile_day(ctx, today())
    assert kinds(report) == [("PAID_AT_WECHAT", True)]
    assert Order.get_by_id(no).state == "PAID" and Order.get_by_id(no).transaction_id
    await wait_for(lambda: recorder.paid)
    again = await reconcile_day(ctx, today())  # a second run finds nothing more to do
    assert again.differences == []
    await wait_for(lambda: all(d.state == "done" for d in Delivery.select()))
    assert [p[0] for p in recorder.paid] == [no]
    assert BillRun.get().unsettled == 0 and BillDifference.get().settled


@pytest.mark.gen_test
async def test_every_kind_of_difference_is_reported(app, ctx, operator, http_client, base_url,
                                                    caplog):
    billed = await paid_order(ctx, http_client, base_url)  # the bill will say 1 yuan more
    refunded = await paid_order(ctx, http_client, base_url, "coach-101")
    # A refund staff made in the merchant platform: WeChat knows it, we do not.
    sim = ctx.simulator
    sim_order = sim.find_order(refunded)
    from tornpay.simulator.records import Refund as SimRefund

    sim.add_refund(SimRefund(mch_id="10000100", appid="wxd930ea5d5a258f4f",
                             out_trade_no=refunded, transaction_id=sim_order.transaction_id,
                             out_refund_no="STAFF0001", refund_id="50300000000000000000000000001",
                             refund_fee=1, total_fee=1, created_at=sim.now(), sign_type="MD5"))
    # Paid here (a forged or test notify?) but WeChat never saw it, with a refund of ours.
    now = utcnow()
    ghost = Order.create(out_trade_no="GHOST0001", product_id="coach-205", openid=ALICE,
                         body="x", total_fee=500, state="PAID", created_at=now, updated_at=now,
                         expire_at=now, paid_at=now, transaction_id="4200009999")
    Refund.create(out_refund_no="GHOSTR01", order=ghost.out_trade_no, refund_fee=100,
                  state="PROCESSING")
    await sim_control(http_client, base_url, "faults", name="bill_amount_differs", count=1)
    await sim_control(http_client, base_url, "faults", name="bill_unknown_order", count=1)
    with caplog.at_level(logging.ERROR, logger="tornpay.bills.service"):
        report = await reconcile_day(ctx, today())
    assert kinds(report) == [("AMOUNT_DIFFERS", False), ("MISSING_IN_BILL", False),
                             ("REFUND_MISSING", False), ("REFUND_UNKNOWN", False),
                             ("UNKNOWN_ORDER", False)]
    by_kind = {d.kind: d for d in report.differences}
    assert (by_kind["AMOUNT_DIFFERS"].out_trade_no, by_kind["AMOUNT_DIFFERS"].bill_fee,
            by_kind["AMOUNT_DIFFERS"].our_fee) == (billed, 10000, 9900)
    assert by_kind["MISSING_IN_BILL"].out_trade_no == "GHOST0001"
    assert by_kind["REFUND_UNKNOWN"].out_refund_no == "STAFF0001"
    assert Order.get_by_id(billed).state == "PAID"  # never corrected automatically
    alerts = [r for r in caplog.records if r.levelno == logging.ERROR and "ALERT" in r.message]
    assert len(alerts) == 5
    # A refund whose amount differs: ours says 2 fen, WeChat's bill 1.
    Refund.create(out_refund_no="STAFF0001", order=refunded, refund_fee=2, state="PROCESSING")
    again = await reconcile_day(ctx, today())
    assert ("REFUND_DIFFERS", False) in kinds(again)
    metrics = (await http_client.fetch(f"{base_url}/metrics")).body.decode()
    assert 'tornpay_bill_differences_unsettled{kind="REFUND_DIFFERS"} 1.0' in metrics
    browser = await login(http_client, base_url)
    page = (await browser.get(f"{ADMIN}/bills/{today()}", headers={"Accept-Language": "en"}))
    assert page.code == 200 and b'data-kind="REFUND_DIFFERS"' in page.body
    assert b"GHOST0001" in page.body
    listing = await browser.get(f"{ADMIN}/bills")
    assert str(today()).encode() in listing.body


@pytest.mark.gen_test
@pytest.mark.parametrize("api_version", ["v2", "v3"])
async def test_bill_creating_is_retried_later_and_no_bill_still_checks_our_payments(
        app, ctx, http_client, base_url):
    no = await paid_order(ctx, http_client, base_url)
    await sim_control(http_client, base_url, "faults", name="bill_creating", count=1)
    with pytest.raises(BillUnavailable) as info:
        await fetch_and_store(ctx, today())
    assert info.value.retry
    run = BillRun.get()
    assert run.state == "pending" and run.attempts == 1 and run.next_try_at > utcnow()
    assert not scheduler.claim(run, utcnow())  # not before the retry time
    assert scheduler.claim(run, run.next_try_at)
    await sim_control(http_client, base_url, "faults", name="bill_no_bill", count=1)
    report = await reconcile_day(ctx, today())
    assert [(d.kind, d.out_trade_no) for d in report.differences] == [("MISSING_IN_BILL", no)]
    assert BillRun.get().state == "reconciled"


def test_due_day_is_yesterday_after_fetch_at_beijing():
    utc = datetime.datetime(2024, 6, 2, 2, 29)  # 10:29 in Beijing
    assert scheduler.due_day(utc, "10:30") is None
    assert scheduler.due_day(utc + datetime.timedelta(minutes=1), "10:30") == datetime.date(
        2024, 6, 1)
    # 01:00 on the 2nd in Beijing (17:00 UTC on the 1st): not yet time for the 1st's bill.
    assert scheduler.due_day(datetime.datetime(2024, 6, 1, 17, 0), "10:30") is None


@pytest.mark.gen_test
async def test_the_daily_job_reconciles_yesterday_once(app, ctx, http_client, base_url,
                                                       monkeypatch, recorder):
    await sim_control(http_client, base_url, "faults", name="notify_drop")
    no = await new_order(ctx)
    await sim_control(http_client, base_url, "pay", out_trade_no=no)
    # Tomorrow at 10:31 Beijing, today's bill is due.
    tomorrow = datetime.datetime.combine(today() + datetime.timedelta(days=1),
                                         datetime.time(10, 31), BEIJING)
    monkeypatch.setattr(scheduler, "utcnow", lambda: tomorrow.astimezone(
        datetime.timezone.utc).replace(tzinfo=None))
    job = scheduler.BillScheduler(ctx)
    # Today is due; the two days before are caught up (nothing was paid then).
    assert await job.run_once() == [f"{today() - datetime.timedelta(days=n)}: 0 unsettled"
                                    for n in (2, 1, 0)]
    assert await job.run_once() == []  # done for the day
    assert [(r.bill_date, r.state) for r in BillRun.select().order_by(BillRun.bill_date)] == [
        (str(today() - datetime.timedelta(days=n)), s) for n, s in
        ((2, "reconciled"), (1, "reconciled"), (0, "reconciled"))]
    assert Order.get_by_id(no).state == "PAID"
    await wait_for(lambda: recorder.paid)
