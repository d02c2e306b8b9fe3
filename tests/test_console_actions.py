"""Console actions through the same core as the CLI: refund (on_refund once), delivery retry."""

import pytest

from console_helpers import (ADMIN, OPERATOR, Recorder, login, operator, post,  # noqa: F401
                             recorder, tp_overrides)
from flow_helpers import paid_order, sim_control, wait_for
from tornpay.storage.models import Delivery, Order, Refund
from tornpay.storage.opsmodels import AuditEntry

pytestmark = pytest.mark.hold_refunds  # refunds finish only through the control API

EN = {"Accept-Language": "en"}


@pytest.mark.gen_test
async def test_timeline_shows_the_order_life(app, operator, ctx, http_client, base_url,
                                             recorder):
    no = await paid_order(ctx, http_client, base_url)
    await wait_for(lambda: recorder.paid)
    browser = await login(http_client, base_url)
    body = (await browser.get(f"{ADMIN}/orders/{no}", headers=EN)).body.decode()
    timeline = body.split('id="tornpay-timeline"')[1]
    kinds = [k.split('"')[0] for k in timeline.split('data-kind="')[1:]]
    assert kinds[:2] == ["created", "unified"]
    assert {"notify", "state", "delivery"} <= set(kinds)
    assert "Payment notify" in timeline and "127.0.0.1" in timeline and "accepted" in timeline
    assert "→ PAID" in timeline and "console_recorder" in timeline


@pytest.mark.gen_test
async def test_refund_through_the_console_confirms_then_fires_on_refund_once(
        app, operator, ctx, http_client, base_url, recorder):
    no = await paid_order(ctx, http_client, base_url)
    browser = await login(http_client, base_url)
    page = await browser.get(f"{ADMIN}/orders/{no}", headers=EN)
    assert b'id="tornpay-refund-form"' in page.body and b'value="9900"' in page.body
    too_much = await post(browser, f"{ADMIN}/orders/{no}/refund", fee="9901", reason="x",
                          confirm="1")
    assert too_much.code == 400 and Refund.select().count() == 0
    confirm = await post(browser, f"{ADMIN}/orders/{no}/refund", fee="2500", reason="late",
                         headers=EN)
    assert confirm.code == 200 and b"tornpay-refund-confirm" in confirm.body
    assert b"25.00" in confirm.body and Refund.select().count() == 0
    done = await post(browser, f"{ADMIN}/orders/{no}/refund", fee="2500", reason="late",
                      confirm="1")
    assert done.code == 200, done.body
    refund = Refund.get()
    assert (refund.refund_fee, refund.state, refund.reason) == (2500, "PROCESSING", "late")
    await sim_control(http_client, base_url, "refunds/finish", out_refund_no=refund.out_refund_no)
    await wait_for(lambda: recorder.refunds)
    await wait_for(lambda: Order.get_by_id(no).state == "PARTIAL_REFUNDED")
    again = await post(browser, f"{ADMIN}/orders/{no}/refund", fee="7401", confirm="1")
    assert again.code == 400  # more than is left
    await wait_for(lambda: all(d.state == "done" for d in Delivery.select()))
    assert recorder.refunds == [(no, refund.out_refund_no, 2500)]
    audit = [(a.operator, a.action, a.outcome, a.out_trade_no)
             for a in AuditEntry.select().where(AuditEntry.action == "refund")]
    assert audit == [(OPERATOR, "refund", "refused", no), (OPERATOR, "refund", "ok", no),
                     (OPERATOR, "refund", "refused", no)]


class Flaky:
    """on_paid fails until ``ok`` is set: with max_attempts 1 its delivery is parked failed."""

    __name__ = "flaky_fulfilment"

    def __init__(self):
        self.ok, self.calls = False, 0

    def on_paid(self, order):
        self.calls += 1
        if not self.ok:
            raise RuntimeError("warehouse down (test)")


@pytest.mark.gen_test
async def test_failed_delivery_is_listed_and_retried(app, operator, ctx, http_client, base_url):
    flaky = Flaky()
    ctx.hooks.register(flaky)
    ctx.settings.deliveries.max_attempts = 1
    no = await paid_order(ctx, http_client, base_url)
    failed = lambda: Delivery.get_or_none((Delivery.plugin == "flaky_fulfilment")  # noqa: E731
                                          & (Delivery.state == "failed"))
    row = await wait_for(failed)
    browser = await login(http_client, base_url)
    listing = await browser.get(f"{ADMIN}/deliveries?state=failed", headers=EN)
    assert no.encode() in listing.body and b"warehouse down" in listing.body
    summary = await browser.get(f"{ADMIN}/", headers=EN)
    assert b'id="tornpay-failed-count">1<' in summary.body
    flaky.ok = True
    from urllib.parse import quote

    retried = await post(browser, f"{ADMIN}/deliveries/{quote(row.id, safe='')}/retry")
    assert retried.code == 200, retried.body
    await wait_for(lambda: Delivery.get_by_id(row.id).state == "done")
    assert flaky.calls == 2
    again = await post(browser, f"{ADMIN}/deliveries/{quote(row.id, safe='')}/retry")
    assert again.code == 409  # a delivery that returned is never repeated
    assert [a.outcome for a in AuditEntry.select().where(
        AuditEntry.action == "retry_delivery").order_by(AuditEntry.id)] == ["ok", "refused"]
