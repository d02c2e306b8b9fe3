"""A payer back after WeChat's 2-hour prepay_id lifetime gets a fresh one for the same order."""

import datetime

import pytest

from flow_helpers import BOB, Browser, jsapi_from_page, location, out_trade_no_of
from tornpay.storage.models import Order


@pytest.fixture
def tp_overrides():
    # The order itself is still payable (time_expire far away) when its prepay_id dies.
    return {"orders": {"expire_minutes": 600}}


@pytest.fixture
def browser(http_client, tp_settings):
    return Browser(http_client, tp_settings.server.public_url)


async def open_order(browser, tp_settings):
    browser.set_openid(tp_settings, BOB)
    reply = await browser.get("/wxpay/checkout/coach-101")
    assert reply.code == 303
    return out_trade_no_of(location(reply))


def age_prepay(ctx, out_trade_no, hours):
    """Move the order's prepay_at, and the simulator's clock, ``hours`` into the past."""
    order = Order.get_by_id(out_trade_no)
    Order.update(prepay_at=order.prepay_at - datetime.timedelta(hours=hours)).where(
        Order.out_trade_no == out_trade_no).execute()
    ctx.simulator.advance(hours * 3600)


@pytest.mark.gen_test(timeout=20)
async def test_stale_prepay_id_is_refreshed_with_the_stored_request(browser, ctx, tp_settings):
    out_trade_no = await open_order(browser, tp_settings)
    before = Order.get_by_id(out_trade_no)
    age_prepay(ctx, out_trade_no, 3)
    page = await browser.get(f"/wxpay/pay/{out_trade_no}")
    assert page.code == 200, page.body
    after = Order.get_by_id(out_trade_no)
    assert after.prepay_id != before.prepay_id
    assert after.unified_request == before.unified_request  # re-sent verbatim
    assert jsapi_from_page(page.body)["package"] == "prepay_id=" + after.prepay_id
    # The simulator still holds one order for it: same out_trade_no, no new order.
    assert len([o for o in ctx.simulator.orders if o[1] == out_trade_no]) == 1


@pytest.mark.gen_test(timeout=20)
async def test_fresh_prepay_id_is_kept(browser, ctx, tp_settings):
    out_trade_no = await open_order(browser, tp_settings)
    before = Order.get_by_id(out_trade_no).prepay_id
    page = await browser.get(f"/wxpay/pay/{out_trade_no}")
    assert page.code == 200
    assert Order.get_by_id(out_trade_no).prepay_id == before


@pytest.mark.gen_test(timeout=20)
async def test_refresh_refused_when_wechat_closed_the_order(browser, ctx, tp_settings):
    out_trade_no = await open_order(browser, tp_settings)
    age_prepay(ctx, out_trade_no, 3)
    sim_order = ctx.simulator.find_order(out_trade_no=out_trade_no)
    sim_order.trade_state = "CLOSED"  # closed at WeChat behind our back
    page = await browser.get(f"/wxpay/pay/{out_trade_no}")
    assert page.code == 410 and b"expired" in page.body
    assert b"tornpay-jsapi" not in page.body


@pytest.mark.gen_test(timeout=20)
async def test_refresh_finds_the_order_paid_and_redirects(browser, ctx, tp_settings):
    out_trade_no = await open_order(browser, tp_settings)
    age_prepay(ctx, out_trade_no, 3)
    ctx.simulator.faults.set("notify_drop", count=1)  # paid at WeChat, notify lost
    ctx.simulator.pay(ctx.simulator.find_order(out_trade_no=out_trade_no), "SUCCESS")
    page = await browser.get(f"/wxpay/pay/{out_trade_no}")
    # Re-entry says ORDERPAID; the immediate orderquery pays the order; the payer is sent on.
    assert page.code == 302, page.body
    assert Order.get_by_id(out_trade_no).state == "PAID"
