"""Refunds over loopback against the in-process simulator: full, partial, over-refund, notify."""

import pytest

from api_helpers import MINI_APPID, MINI_OVERRIDES
from flow_helpers import order_snapshot, paid_order, sim_control, wait_for
from tornpay.orders import refunds as refunds_mod
from tornpay.protocol.refundcrypto import encrypt_req_info
from tornpay.protocol.xmlcodec import decode_xml, encode_xml
from tornpay.storage.models import Notification, Order, Refund

# Refunds finish only through the control API; every test is a coroutine on the app's loop.
pytestmark = [pytest.mark.hold_refunds, pytest.mark.gen_test(timeout=20)]

API_KEY = "192006250b4c09247ec02edce69f6a2d"


class RefundRecorder:
    """A plugin that records every on_refund call it gets."""

    __name__ = "refund_recorder"

    def __init__(self):
        self.calls = []

    def on_refund(self, order, refund):
        self.calls.append((order.out_trade_no, refund.out_refund_no, refund.refund_fee,
                           refund.refund_id, order.delivery_id))


@pytest.fixture
def recorder():
    return RefundRecorder()  # registered in the app by conftest's tp_plugins


async def finish(http_client, base_url, out_refund_no, status="SUCCESS"):
    """Have the simulator finish a refund (it then posts the encrypted refund notify)."""
    await sim_control(http_client, base_url, "refunds/finish", out_refund_no=out_refund_no,
                      status=status)
    await wait_for(lambda: Refund.get_by_id(out_refund_no).state == status)


def refund_notify_body(ours, *, key=API_KEY, status="SUCCESS", appid="wxd930ea5d5a258f4f",
                       **changes) -> bytes:
    """The notify WeChat would send for our refund ``ours``, with ``changes`` to req_info."""
    refund = Refund.get_by_id(ours)
    order = Order.get_by_id(refund.out_trade_no)
    inner = {"out_refund_no": ours, "out_trade_no": order.out_trade_no,
             "refund_account": "REFUND_SOURCE_UNSETTLED_FUNDS", "refund_fee": refund.refund_fee,
             "refund_id": refund.refund_id or "50300008812024060201234567890",
             "refund_recv_accout": "支付用户零钱", "refund_request_source": "API",
             "refund_status": status, "settlement_refund_fee": refund.refund_fee,
             "settlement_total_fee": order.total_fee, "success_time": "2024-06-02 10:15:32",
             "total_fee": order.total_fee, "transaction_id": order.transaction_id}
    inner.update(changes)
    return encode_xml({"return_code": "SUCCESS", "appid": appid,
                       "mch_id": "10000100", "nonce_str": "TeqClE3i0mvn3DrK",
                       "req_info": encrypt_req_info(inner, key)})


async def post_notify(http_client, base_url, body):
    response = await http_client.fetch(f"{base_url}/wxpay/refund-notify", method="POST",
                                       body=body, raise_error=False)
    assert response.code == 200
    return decode_xml(response.body)


async def test_full_refund_applies_once_and_fires_on_refund_once(app, ctx, http_client,
                                                                 base_url, recorder):
    out_trade_no = await paid_order(ctx, http_client, base_url)
    refund = await refunds_mod.request_refund(ctx, out_trade_no, reason="customer asked")
    assert refund.state == "PROCESSING" and refund.refund_fee == 9900 and refund.refund_id
    order = Order.get_by_id(out_trade_no)
    assert (order.state, order.reserved_refund_fee, order.refunded_fee) == ("PAID", 9900, 0)
    # The request was stored verbatim: the original total, our notify URL.
    sent = decode_xml(refund.request.encode())
    assert sent["total_fee"] == "9900" and sent["out_refund_no"] == refund.out_refund_no
    assert sent["notify_url"] == ctx.settings.server.public_url + "/wxpay/refund-notify"

    await finish(http_client, base_url, refund.out_refund_no)  # the simulator's notify
    order = Order.get_by_id(out_trade_no)
    assert (order.state, order.refunded_fee) == ("REFUNDED", 9900)
    # Replay the same notify twice more: SUCCESS, nothing changes.
    for _ in range(2):
        reply = await post_notify(http_client, base_url, refund_notify_body(refund.out_refund_no))
        assert reply["return_code"] == "SUCCESS"
    assert Order.get_by_id(out_trade_no).refunded_fee == 9900
    await wait_for(lambda: recorder.calls)
    await ctx.dispatcher.run_once()
    assert len(recorder.calls) == 1
    otn, orn, fee, refund_id, delivery_id = recorder.calls[0]
    assert (otn, orn, fee, refund_id) == (out_trade_no, refund.out_refund_no, 9900,
                                          refund.refund_id)
    assert delivery_id.endswith(":refund_recorder")
    outcomes = [n.outcome for n in Notification.select().where(
        (Notification.kind == "refund") & (Notification.out_trade_no == out_trade_no))
        .order_by(Notification.id)]
    assert outcomes == ["accepted", "duplicate", "duplicate"]
    with pytest.raises(refunds_mod.RefundRefused):
        await refunds_mod.request_refund(ctx, out_trade_no, 1)


@pytest.mark.parametrize("api_version", ["v2", "v3"])
async def test_two_partial_refunds_then_over_refund_refused(app, ctx, http_client, base_url,
                                                            recorder):
    out_trade_no = await paid_order(ctx, http_client, base_url)
    first = await refunds_mod.request_refund(ctx, out_trade_no, 3000)
    second = await refunds_mod.request_refund(ctx, out_trade_no, 5000)
    assert first.out_refund_no != second.out_refund_no
    assert {first.state, second.state} == {"PROCESSING"}
    before = order_snapshot(out_trade_no)
    refunds_before = Refund.select().count()
    # 3000 + 5000 are reserved (not yet final): 1900 left of 9900, so 2000 is refused.
    with pytest.raises(refunds_mod.RefundRefused, match="1900 fen left to refund"):
        await refunds_mod.request_refund(ctx, out_trade_no, 2000)
    assert order_snapshot(out_trade_no) == before
    assert Refund.select().count() == refunds_before

    await finish(http_client, base_url, first.out_refund_no)
    order = Order.get_by_id(out_trade_no)
    assert (order.state, order.refunded_fee) == ("PARTIAL_REFUNDED", 3000)
    await finish(http_client, base_url, second.out_refund_no)
    order = Order.get_by_id(out_trade_no)
    assert (order.state, order.refunded_fee) == ("PARTIAL_REFUNDED", 8000)
    # The rest, as a "full" refund of what is left.
    rest = await refunds_mod.request_refund(ctx, out_trade_no)
    assert rest.refund_fee == 1900
    await finish(http_client, base_url, rest.out_refund_no)
    assert Order.get_by_id(out_trade_no).state == "REFUNDED"
    await wait_for(lambda: len(recorder.calls) == 3)
    assert sorted(c[2] for c in recorder.calls) == [1900, 3000, 5000]


@pytest.mark.parametrize("api_version", ["v2", "v3"])
async def test_closed_refund_releases_the_reservation(app, ctx, http_client, base_url,
                                                      recorder):
    out_trade_no = await paid_order(ctx, http_client, base_url)
    refund = await refunds_mod.request_refund(ctx, out_trade_no, 4000)
    await finish(http_client, base_url, refund.out_refund_no, "REFUNDCLOSE")
    order = Order.get_by_id(out_trade_no)
    assert (order.state, order.reserved_refund_fee, order.refunded_fee) == ("PAID", 0, 0)
    assert recorder.calls == []


@pytest.mark.parametrize("api_version", ["v2", "v3"])
async def test_refund_query_applies_success(app, ctx, http_client, base_url, recorder):
    out_trade_no = await paid_order(ctx, http_client, base_url)
    refund = await refunds_mod.request_refund(ctx, out_trade_no, 100)
    ctx.simulator.refunds[("10000100", refund.out_refund_no)].notify_url = ""  # no notify
    await sim_control(http_client, base_url, "refunds/finish", out_refund_no=refund.out_refund_no)
    assert Refund.get_by_id(refund.out_refund_no).state == "PROCESSING"
    status, changed = await refunds_mod.query_refund(ctx, refund.out_refund_no)
    assert (status, changed) == ("SUCCESS", True)
    assert Order.get_by_id(out_trade_no).refunded_fee == 100
    assert await refunds_mod.query_refund(ctx, refund.out_refund_no) == ("SUCCESS", False)


@pytest.mark.parametrize("api_version", ["v2", "v3"])
async def test_wechat_refusal_marks_failed_and_releases(app, ctx, http_client, base_url):
    out_trade_no = await paid_order(ctx, http_client, base_url)
    await sim_control(http_client, base_url, "faults", name="notenough", count=1)
    refund = await refunds_mod.request_refund(ctx, out_trade_no, 500)
    assert refund.state == "FAILED" and "NOTENOUGH" in refund.last_error
    assert Order.get_by_id(out_trade_no).reserved_refund_fee == 0


async def test_bad_req_info_and_unknown_refund_are_refused(app, ctx, http_client, base_url):
    out_trade_no = await paid_order(ctx, http_client, base_url)
    refund = await refunds_mod.request_refund(ctx, out_trade_no, 700)
    before = order_snapshot(out_trade_no)
    cases = [
        refund_notify_body(refund.out_refund_no, key="x" * 32),  # not our key
        refund_notify_body(refund.out_refund_no, out_refund_no="RF_UNKNOWN_0001"),
        refund_notify_body(refund.out_refund_no, refund_fee=701),  # amount mismatch
        encode_xml({"return_code": "SUCCESS", "appid": "wxd930ea5d5a258f4f",
                    "mch_id": "10000100", "req_info": "not base64!"}),
        encode_xml({"return_code": "SUCCESS", "appid": "wx_other", "mch_id": "10000100",
                    "req_info": "AAAA"}),
    ]
    for body in cases:
        reply = await post_notify(http_client, base_url, body)
        assert reply["return_code"] == "FAIL", body
    too_big = await http_client.fetch(f"{base_url}/wxpay/refund-notify", method="POST",
                                      body=b"<xml>" + b" " * 70000 + b"</xml>",
                                      raise_error=False)
    assert decode_xml(too_big.body)["return_code"] == "FAIL"
    assert order_snapshot(out_trade_no) == before
    assert Refund.get_by_id(refund.out_refund_no).state == "PROCESSING"
    refused = Notification.select().where((Notification.kind == "refund")
                                          & (Notification.outcome == "refused")).count()
    # The two bodies that do not decrypt, from one sender, are one stored refusal
    # plus a count (orders/refusals.py); the rest are each stored.
    assert refused == len(cases)


@pytest.mark.parametrize("tp_overrides", [MINI_OVERRIDES])
async def test_refund_notify_must_name_the_orders_own_appid(app, ctx, http_client, base_url):
    # Both appids are ours, but this order was paid through the Official Account:
    # a notify naming the Mini Program's appid is not about it.
    out_trade_no = await paid_order(ctx, http_client, base_url)
    refund = await refunds_mod.request_refund(ctx, out_trade_no, 700)
    before = order_snapshot(out_trade_no)
    reply = await post_notify(http_client, base_url,
                              refund_notify_body(refund.out_refund_no, appid=MINI_APPID))
    assert (reply["return_code"], reply["return_msg"]) == ("FAIL", "appid mismatch")
    assert order_snapshot(out_trade_no) == before
    assert Refund.get_by_id(refund.out_refund_no).state == "PROCESSING"
    reply = await post_notify(http_client, base_url, refund_notify_body(refund.out_refund_no))
    assert reply["return_code"] == "SUCCESS"
    assert Refund.get_by_id(refund.out_refund_no).state == "SUCCESS"


@pytest.mark.parametrize("api_version", ["v2", "v3"])
async def test_systemerror_keeps_requested_and_resend_repeats_the_same_bytes(
        app, ctx, http_client, base_url):
    out_trade_no = await paid_order(ctx, http_client, base_url)
    await sim_control(http_client, base_url, "faults", name="systemerror", count=1,
                      endpoint="refund")
    refund = await refunds_mod.request_refund(ctx, out_trade_no, 1200)
    assert refund.state == "REQUESTED" and "SYSTEMERROR" in refund.last_error
    assert Order.get_by_id(out_trade_no).reserved_refund_fee == 1200  # still held
    stored = refund.request
    again = await refunds_mod.send_refund(ctx, refund.out_refund_no)
    assert again.state == "PROCESSING" and again.request == stored
    sim = ctx.simulator.refunds[("10000100", refund.out_refund_no)]
    assert sim.refund_fee == 1200 and len(ctx.simulator.refunds) == 1
    with pytest.raises(refunds_mod.RefundRefused):
        await refunds_mod.send_refund(ctx, refund.out_refund_no)  # only REQUESTED is re-sent
