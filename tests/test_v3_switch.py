"""Switching API generation with orders in flight: each order finishes in the one it began in."""

import pytest

from tests.flow_helpers import ALICE, Browser, location, order_row, out_trade_no_of, wait_for
from tornpay.orders import refunds
from tornpay.orders.admin import query_order
from tornpay.storage.models import Notification


async def checkout(browser, settings):
    browser.set_openid(settings, ALICE)
    reply = await browser.get("/wxpay/checkout/coach-205")
    assert reply.code == 303, reply.body
    return out_trade_no_of(location(reply))


@pytest.mark.gen_test(timeout=20)
async def test_orders_in_flight_finish_in_their_generation(http_client, ctx, tp_settings):
    browser = Browser(http_client, tp_settings.server.public_url)
    ctx.simulator.config.refund_delay_seconds = None
    old = await checkout(browser, tp_settings)
    ctx.gateways.current_generation = "v3"  # the merchant switched, then restarted
    new = await checkout(browser, tp_settings)
    assert new != old  # the open v2 order is not reused for a v3 checkout
    assert (order_row(old).api_version, order_row(new).api_version) == ("v2", "v3")
    assert ctx.simulator.find_order(old).api == "v2" and ctx.simulator.find_order(new).api == "v3"
    for no in (old, new):  # each is paid and notified in its own generation
        ctx.simulator.pay(ctx.simulator.find_order(no))
    await wait_for(lambda: {order_row(old).state, order_row(new).state} == {"PAID"})
    assert {n.outcome for n in Notification.select()} == {"accepted"}
    assert await query_order(ctx, old) == "SUCCESS" and await query_order(ctx, new) == "SUCCESS"
    for no in (old, new):
        refund = await refunds.request_refund(ctx, no, 100)
        assert refund.state == "PROCESSING"
        assert refund.request.startswith("/v3/refund/") == (no == new)
        ctx.simulator.finish_refund(ctx.simulator.find_refund(refund.out_refund_no))
        await wait_for(lambda: order_row(no).refunded_fee == 100)
    ctx.gateways.current_generation = "v2"  # and back: v3 orders still answer in v3
    assert await query_order(ctx, new) == "REFUND"


@pytest.mark.gen_test(timeout=20)
@pytest.mark.parametrize("api_version", ["v3"])
@pytest.mark.parametrize("tp_overrides", [{"wechat": {"wechatpay_public_key_file": "",
                                                      "wechatpay_public_key_id": ""}}])
async def test_platform_certificate_mode_end_to_end(http_client, ctx, tp_settings, api_version,
                                                    tp_overrides):
    # No WeChat Pay public key configured: the simulator signs with its platform certificate
    # and tornpay fetches, decrypts and verifies /v3/certificates before trusting any reply.
    browser = Browser(http_client, tp_settings.server.public_url)
    no = await checkout(browser, tp_settings)
    keys = ctx.gateways.of("v3").client.keys
    assert keys.certificate_mode and [c.serial_no for c in keys.certificates()] == [
        "7E57F1A7F0000000000000000000000000000001"]
    ctx.simulator.pay(ctx.simulator.find_order(no))
    await wait_for(lambda: order_row(no).state == "PAID")
    assert await query_order(ctx, no) == "SUCCESS"
