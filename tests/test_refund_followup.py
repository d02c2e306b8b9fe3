"""The server settles refunds whose notify was lost or whose request timed out, by itself."""

import pytest

from flow_helpers import paid_order, sim_control, wait_for
# The refund tests' recording plugin (refunds finish only on request: hold_refunds below).
from test_refunds import recorder  # noqa: F401
from tornpay.orders import refunds as refunds_mod
from tornpay.storage.models import Order, Refund

# Refunds finish only through the control API; every test is a coroutine on the app's loop.
pytestmark = [pytest.mark.hold_refunds, pytest.mark.gen_test(timeout=20)]


@pytest.fixture
def tp_overrides():
    # Every open refund is due at once, and the background pass runs every 0.1 s.
    return {"orders": {"reconcile_after_seconds": 0, "reconcile_interval_seconds": 0.1}}


@pytest.mark.parametrize("api_version", ["v2", "v3"])
async def test_lost_refund_notify_is_settled_by_refundquery(app, ctx, http_client, base_url,
                                                            recorder):
    out_trade_no = await paid_order(ctx, http_client, base_url)
    refund = await refunds_mod.request_refund(ctx, out_trade_no, 9900)
    assert refund.state == "PROCESSING"
    await sim_control(http_client, base_url, "faults", name="notify_drop", count=1)
    await sim_control(http_client, base_url, "refunds/finish", out_refund_no=refund.out_refund_no,
                      status="SUCCESS")
    # No notify arrives; the background follow-up asks refundquery and applies SUCCESS once.
    await wait_for(lambda: Refund.get_by_id(refund.out_refund_no).state == "SUCCESS")
    assert Order.get_by_id(out_trade_no).state == "REFUNDED"
    await wait_for(lambda: len(recorder.calls) == 1)
    assert recorder.calls[0][1] == refund.out_refund_no
    # Settled refunds are no longer due, so later passes change nothing.
    assert await ctx.refund_followup.run_once() == 0
    assert len(recorder.calls) == 1


@pytest.mark.parametrize("api_version", ["v2", "v3"])
async def test_timed_out_refund_request_is_resent_with_the_same_bytes(app, ctx, http_client,
                                                                      base_url):
    out_trade_no = await paid_order(ctx, http_client, base_url)
    await ctx.refund_followup.stop()  # drive the pass by hand for this test
    await sim_control(http_client, base_url, "faults", name="systemerror", count=1,
                      endpoint="refund")
    refund = await refunds_mod.request_refund(ctx, out_trade_no, 500)
    assert refund.state == "REQUESTED"
    stored = refund.request
    assert await ctx.refund_followup.check(refund.out_refund_no) == "RESENT:PROCESSING"
    after = Refund.get_by_id(refund.out_refund_no)
    assert after.state == "PROCESSING" and after.request == stored
    assert len(ctx.simulator.refunds) == 1
    # A second pass only queries: still one refund at WeChat, still PROCESSING.
    assert await ctx.refund_followup.check(refund.out_refund_no) == "PROCESSING"
    assert len(ctx.simulator.refunds) == 1


async def test_finished_refunds_are_not_checked_again(app, ctx, http_client, base_url):
    out_trade_no = await paid_order(ctx, http_client, base_url)
    await ctx.refund_followup.stop()
    refund = await refunds_mod.request_refund(ctx, out_trade_no, 9900)
    refunds_mod.apply_refund_result(refund.out_refund_no, "REFUNDCLOSE", hooks=ctx.hooks)
    assert await ctx.refund_followup.run_once() == 0
