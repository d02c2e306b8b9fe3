"""Issue 20 item 2, merchant side: every genuine notify variant accepted, forgeries refused."""

import pytest

from flow_helpers import ALICE, sim_control, wait_for
from tornpay.orders.service import create_order
from tornpay.storage.models import Notification, Order

GENUINE = [
    [],
    ["notify_coupon"],
    ["notify_sign_type"],
    ["notify_extra_fields", "notify_reordered", "notify_cash_fee_type", "notify_subscribed"],
    ["notify_coupon", "notify_sign_type", "notify_reordered", "notify_extra_fields"],
]
FORGED = [
    ["notify_coupon", "notify_wrong_total_fee"],
    ["notify_coupon", "notify_bad_sign"],
    ["notify_sign_type", "notify_bad_sign"],
    ["notify_extra_fields", "notify_reordered", "notify_wrong_total_fee"],
]


@pytest.fixture(params=["MD5", "HMAC-SHA256"])
def tp_overrides(request):
    return {"wechat": {"sign_type": request.param}}


async def pay_with(ctx, http_client, base_url, faults) -> str:
    order = await create_order(ctx, "coach-205", ALICE, "127.0.0.1")
    for name in faults:
        await sim_control(http_client, base_url, "faults", name=name, count=1)
    await sim_control(http_client, base_url, "pay", out_trade_no=order.out_trade_no)
    return order.out_trade_no


@pytest.mark.parametrize("faults", GENUINE, ids=lambda f: "+".join(f) or "plain")
@pytest.mark.gen_test(timeout=20)
async def test_genuine_variants_are_accepted(app, ctx, http_client, base_url, faults):
    no = await pay_with(ctx, http_client, base_url, faults)
    await wait_for(lambda: Order.get_by_id(no).state == "PAID")
    outcomes = [n.outcome for n in Notification.select().where(Notification.out_trade_no == no)]
    assert outcomes == ["accepted"]
    order = Order.get_by_id(no)
    # The amount rule is on total_fee; cash_fee is what the payer's card paid.
    expected_cash = 9900 - 990 if "notify_coupon" in faults else 9900
    assert (order.total_fee, order.cash_fee) == (9900, expected_cash)


@pytest.mark.parametrize("faults", FORGED, ids=lambda f: "+".join(f))
@pytest.mark.gen_test(timeout=20)
async def test_forged_variants_are_still_refused(app, ctx, http_client, base_url, faults):
    no = await pay_with(ctx, http_client, base_url, faults)

    async def answered():
        reply = await sim_control(http_client, base_url, f"orders/{no}", method="GET")
        sim_order = reply["order"]
        return sim_order["notifies"] and sim_order["notifies"][0]["status"]

    await wait_for(answered)
    assert Order.get_by_id(no).state != "PAID"
    assert [n.outcome for n in Notification.select().where(
        Notification.out_trade_no == no)][:1] == ["refused"]
