"""The payer cancels an unpaid order: closed here at once, at WeChat now or when it allows."""

import asyncio
import datetime
import json
import re

import pytest
import tornado.web

import tornpay
from conftest import base_settings_dict
from helpers_orders import RecordingPlugin
from tests.flow_helpers import (ALICE, BOB, Browser, jsapi_from_page, location, order_row,
                                out_trade_no_of, wait_for)
from tornpay.orders import service
from tornpay.protocol.errors import TransportError
from tornpay.storage.models import Event, Order

XSRF_RE = re.compile(r'name="_xsrf" value="([^"]+)"')
MIN_AGE = 300  # orders.min_close_age_seconds and the simulator's closeorder rule


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch):
    monkeypatch.setattr(service, "RETRY_BACKOFF_SECONDS", 0.01)


@pytest.fixture
def rec(ctx):
    plugin = RecordingPlugin()
    ctx.hooks.register(plugin, name="rec")
    return plugin


@pytest.fixture
def browser(http_client, tp_settings):
    return Browser(http_client, tp_settings.server.public_url)


async def open_order(browser, settings, openid=ALICE, product="coach-101"):
    """Signed in as ``openid``: checkout, then the pay page; return (no, page, xsrf token)."""
    browser.set_openid(settings, openid)
    done = await browser.get(f"/wxpay/checkout/{product}")
    assert done.code == 303, done.body
    page = await browser.get(location(done))
    assert page.code == 200, page.body
    text = page.body.decode()
    assert 'id="tornpay-cancel-order"' in text
    return out_trade_no_of(location(done)), page, XSRF_RE.search(text).group(1)


async def cancel(browser, no, token):
    body = "" if token is None else f"_xsrf={token}"
    return await browser.fetch(f"/wxpay/orders/{no}/cancel", method="POST", body=body)


def age_order(ctx, no, seconds):
    """Let ``seconds`` pass for the order, here and at the simulator."""
    delta = datetime.timedelta(seconds=seconds)
    order = order_row(no)
    values = {"created_at": order.created_at - delta, "expire_at": order.expire_at - delta}
    for name in ("close_at_wechat_after", "next_check_at"):
        if getattr(order, name) is not None:
            values[name] = getattr(order, name) - delta
    Order.update(**values).where(Order.out_trade_no == no).execute()
    ctx.simulator.advance(seconds)


def sim_state(ctx, no):
    return ctx.simulator.find_order(no).trade_state


def booking(ctx, no):
    return ctx.hooks.get_plugin("tornpay.plugins.booking").booking_status(no)


async def result_says(browser, no, text):
    page = await browser.get(f"/wxpay/orders/{no}/result")
    return page.code == 200 and text in page.body.decode()


@pytest.mark.gen_test
@pytest.mark.parametrize("api_version", ["v2", "v3"])
async def test_young_order_closes_here_now_and_at_wechat_later(browser, ctx, tp_settings, rec):
    no, _, token = await open_order(browser, tp_settings)
    assert booking(ctx, no) == "reserved"
    reply = await cancel(browser, no, token)
    assert reply.code == 303 and location(reply) == f"/wxpay/orders/{no}/result"

    order = order_row(no)
    assert (order.state, order.close_reason) == ("CLOSED", "user_cancelled")
    assert order.close_at_wechat_after == order.created_at + datetime.timedelta(seconds=MIN_AGE)
    await wait_for(lambda: rec.hooks_called("on_cancel") and booking(ctx, no) == "released")
    assert await result_says(browser, no, "You cancelled this order; nothing was charged.")
    assert (await browser.get(f"/wxpay/pay/{no}")).code == 410  # no payment parameters now
    assert sim_state(ctx, no) == "NOTPAY"  # WeChat refuses closeorder this young
    await ctx.reconciler.run_once()
    assert sim_state(ctx, no) == "NOTPAY" and order_row(no).close_at_wechat_after is not None

    age_order(ctx, no, MIN_AGE + 1)
    await ctx.reconciler.run_once()  # (or the background pass got there first)
    await wait_for(lambda: order_row(no).close_at_wechat_after is None)
    assert sim_state(ctx, no) == "CLOSED" and order_row(no).state == "CLOSED"
    await asyncio.sleep(0.2)  # no second on_cancel from the WeChat close
    assert [c["reason"] for c in rec.hooks_called("on_cancel")] == ["user_cancelled"]
    assert rec.hooks_called("on_paid") == []
    assert Event.select().where(Event.out_trade_no == no).count() == 1


@pytest.mark.gen_test
@pytest.mark.parametrize("api_version", ["v2", "v3"])
async def test_old_order_is_closed_at_wechat_at_once(browser, ctx, tp_settings, rec):
    no, _, token = await open_order(browser, tp_settings)
    age_order(ctx, no, MIN_AGE + 1)
    reply = await cancel(browser, no, token)
    assert reply.code == 303
    assert sim_state(ctx, no) == "CLOSED"
    order = order_row(no)
    assert (order.state, order.close_reason) == ("CLOSED", "user_cancelled")
    assert order.close_at_wechat_after is None
    await wait_for(lambda: rec.hooks_called("on_cancel") and booking(ctx, no) == "released")
    assert [c["reason"] for c in rec.hooks_called("on_cancel")] == ["user_cancelled"]
    again = await cancel(browser, no, token)  # already closed: the result page, nothing new
    assert again.code == 303 and location(again) == f"/wxpay/orders/{no}/result"
    assert Event.select().where(Event.out_trade_no == no).count() == 1


@pytest.mark.gen_test
async def test_stranger_and_missing_xsrf_change_nothing(browser, http_client, ctx, tp_settings,
                                                        rec):
    no, _, token = await open_order(browser, tp_settings)
    before = Order.select().where(Order.out_trade_no == no).dicts().get()

    assert (await cancel(browser, no, None)).code == 403
    forged = await browser.fetch(f"/wxpay/orders/{no}/cancel", method="POST",
                                 body="_xsrf=2|00000000|" + "0" * 32 + "|1")
    assert forged.code == 403

    bob = Browser(http_client, tp_settings.server.public_url)
    _, _, bob_token = await open_order(bob, tp_settings, openid=BOB)
    stranger = await cancel(bob, no, bob_token)
    assert stranger.code == 403 and b"Not your order" in stranger.body

    assert Order.select().where(Order.out_trade_no == no).dicts().get() == before
    assert Event.select().where(Event.out_trade_no == no).count() == 0
    assert sim_state(ctx, no) == "NOTPAY" and booking(ctx, no) == "reserved"


@pytest.mark.gen_test
async def test_paid_order_cannot_be_cancelled(browser, ctx, tp_settings, rec):
    no, page, token = await open_order(browser, tp_settings)
    await pay_at_cashier(browser, page, no)
    await wait_for(lambda: order_row(no).state == "PAID")
    reply = await cancel(browser, no, token)
    assert reply.code == 303 and location(reply) == f"/wxpay/orders/{no}/result"
    assert order_row(no).state == "PAID" and order_row(no).close_reason is None
    await wait_for(lambda: booking(ctx, no) == "confirmed")
    assert rec.hooks_called("on_cancel") == [] and sim_state(ctx, no) == "SUCCESS"


async def pay_at_cashier(browser, page, no):
    """What the simulator's bridge does when the payer taps Pay on (this copy of) the page."""
    reply = await browser.fetch("/_sim/cashier/pay", method="POST",
                                body=json.dumps({"params": jsapi_from_page(page.body)}),
                                headers={"Referer": browser.url(f"/wxpay/pay/{no}")})
    assert json.loads(reply.body)["ok"] is True, reply.body


@pytest.mark.gen_test
async def test_stale_pay_page_paying_after_cancel_wins(browser, ctx, tp_settings, rec):
    no, stale_page, token = await open_order(browser, tp_settings)
    assert (await cancel(browser, no, token)).code == 303
    await wait_for(lambda: booking(ctx, no) == "released")

    # Another tab still shows the old pay page; WeChat still holds the order open.
    await pay_at_cashier(browser, stale_page, no)
    await wait_for(lambda: order_row(no).state == "PAID")
    await wait_for(lambda: rec.hooks_called("on_paid") and booking(ctx, no) == "confirmed")
    order = order_row(no)
    assert order.transaction_id and order.close_reason == "user_cancelled"
    assert [c["reason"] for c in rec.hooks_called("on_cancel")] == ["user_cancelled"]
    assert await result_says(browser, no, "Paid. Thank you!")

    # Later passes of the reconciler leave a paid order alone.
    age_order(ctx, no, MIN_AGE + 1)
    await ctx.reconciler.run_once()
    assert order_row(no).state == "PAID" and sim_state(ctx, no) == "SUCCESS"
    assert len(rec.hooks_called("on_paid")) == 1


@pytest.mark.gen_test
@pytest.mark.parametrize("api_version", ["v2", "v3"])
async def test_orderpaid_from_closeorder_ends_paid(browser, ctx, tp_settings, rec):
    no, _, token = await open_order(browser, tp_settings)
    age_order(ctx, no, MIN_AGE + 1)
    ctx.simulator.pay(ctx.simulator.find_order(no), notify=False)  # its notify not here yet
    reply = await cancel(browser, no, token)
    assert reply.code == 303 and location(reply) == f"/wxpay/orders/{no}/result"
    order = order_row(no)
    assert order.state == "PAID" and order.transaction_id and order.close_reason is None
    await wait_for(lambda: rec.hooks_called("on_paid") and booking(ctx, no) == "confirmed")
    assert rec.hooks_called("on_cancel") == []
    assert await result_says(browser, no, "Paid. Thank you!")


@pytest.mark.gen_test
async def test_wechat_unreachable_closes_here_and_retries_there(browser, ctx, tp_settings,
                                                                monkeypatch, rec):
    no, _, token = await open_order(browser, tp_settings)
    age_order(ctx, no, MIN_AGE + 1)

    async def down(*args, **kwargs):
        raise TransportError("connection refused")

    with monkeypatch.context() as patch:
        patch.setattr(ctx.pay_client, "close_order", down)
        assert (await cancel(browser, no, token)).code == 303
        order = order_row(no)
        assert order.state == "CLOSED" and order.close_at_wechat_after is not None
    await ctx.reconciler.run_once()
    await wait_for(lambda: order_row(no).close_at_wechat_after is None)
    assert sim_state(ctx, no) == "CLOSED"


@pytest.mark.gen_test
@pytest.mark.parametrize("api_version", ["v2", "v3"])
async def test_reconciler_pays_a_cancelled_order_paid_at_wechat(browser, ctx, tp_settings, rec):
    no, _, token = await open_order(browser, tp_settings)
    assert (await cancel(browser, no, token)).code == 303
    ctx.simulator.pay(ctx.simulator.find_order(no), notify=False)  # the notify is lost
    age_order(ctx, no, MIN_AGE + 1)
    await ctx.reconciler.run_once()
    await wait_for(lambda: order_row(no).state == "PAID"
                   and order_row(no).close_at_wechat_after is None)
    await wait_for(lambda: rec.hooks_called("on_paid") and booking(ctx, no) == "confirmed")
    assert sim_state(ctx, no) == "SUCCESS"


class TestEmbedded:
    """tornpay mounted under /pay in an estate's own Application (with or without XSRF)."""

    @pytest.fixture(params=[True, False], ids=["estate-xsrf", "estate-no-xsrf"])
    def estate(self, request, tmp_path, http_port, io_loop):
        settings = base_settings_dict(tmp_path, http_port)
        del settings["server"]["prefix"]
        tp = tornpay.routes(settings, prefix="/pay", env={})
        app = tornado.web.Application(tp.routes, xsrf_cookies=request.param,
                                      cookie_secret="the-estate-own-cookie-secret-0123456789")
        tp.start()
        yield app, tp
        io_loop.run_sync(tp.stop)

    @pytest.fixture
    def app(self, estate):
        return estate[0]

    @pytest.mark.gen_test
    async def test_cancel_form_works_embedded(self, http_client, estate):
        tp = estate[1]
        browser = Browser(http_client, tp.settings.server.public_url)
        browser.set_openid(tp.settings, ALICE)
        done = await browser.get("/pay/checkout/coach-101")
        assert done.code == 303, done.body
        no = out_trade_no_of(location(done))
        page = await browser.get(location(done))
        assert page.code == 200
        token = XSRF_RE.search(page.body.decode()).group(1)
        assert 'action="/pay/orders/%s/cancel"' % no in page.body.decode()

        # Protected even when the estate runs without xsrf_cookies.
        refused = await browser.fetch(f"/pay/orders/{no}/cancel", method="POST", body="")
        assert refused.code == 403 and order_row(no).state == "PREPAID"
        reply = await browser.fetch(f"/pay/orders/{no}/cancel", method="POST",
                                    body=f"_xsrf={token}")
        assert reply.code == 303 and location(reply) == f"/pay/orders/{no}/result"
        assert order_row(no).close_reason == "user_cancelled"
        result = await browser.get(location(reply))
        assert b"You cancelled this order" in result.body
