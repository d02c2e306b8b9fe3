"""Simulator refunds over loopback: /secapi/pay/refund, /pay/refundquery, refund notify."""

import pytest

from sim_helpers import (  # noqa: F401  (fixtures)
    API_KEY, APPID, MCH_ID, app, box, signed, sim, sim_config, state, wait_for,
)
from tornpay.protocol.refundcrypto import decrypt_req_info
from tornpay.protocol.xmlcodec import decode_xml
from tornpay.simulator.refundcipher import decrypt_req_info_text


def refund_params(order, out_refund_no, refund_fee="100", **over):
    params = {"appid": APPID, "mch_id": MCH_ID, "nonce_str": "r",
              "out_trade_no": order["out_trade_no"], "out_refund_no": out_refund_no,
              "total_fee": order["total_fee"], "refund_fee": refund_fee}
    params.update(over)
    return {k: v for k, v in params.items() if v is not None}


def rquery(**ids):
    return dict({"appid": APPID, "mch_id": MCH_ID, "nonce_str": "rq"}, **ids)


@pytest.mark.gen_test
async def test_refund_needs_a_paid_order(sim):
    unpaid = await sim.order()
    reply = await sim.api("/secapi/pay/refund", refund_params(unpaid, "R1"))
    assert reply["err_code"] == "ORDERNOTEXIST"
    unknown = dict(unpaid, out_trade_no="NOPE")
    reply = await sim.api("/secapi/pay/refund", refund_params(unknown, "R1"))
    assert reply["err_code"] == "ORDERNOTEXIST"
    reply = await sim.api("/secapi/pay/refund",
                          refund_params(unpaid, "R1", out_trade_no=None, transaction_id="12"))
    assert reply["err_code"] == "INVALID_TRANSACTIONID"
    reply = await sim.api("/secapi/pay/refund", refund_params(unpaid, "R1", out_trade_no=None))
    assert reply["err_code"] == "LACK_PARAMS"
    reply = await sim.api("/secapi/pay/refund", refund_params(unpaid, "R1", refund_fee=None))
    assert reply["err_code"] == "LACK_PARAMS"


@pytest.mark.gen_test
async def test_partial_refunds_idempotency_and_over_refund(sim):
    order = await sim.paid_order()
    first = await sim.api("/secapi/pay/refund", refund_params(order, "R1", "30"))
    assert first["result_code"] == "SUCCESS"
    assert len(first["refund_id"]) == 29 and first["refund_id"].isdigit()
    assert (first["refund_fee"], first["total_fee"], first["cash_refund_fee"]) == (
        "30", "100", "30")
    # Retrying with the same out_refund_no and amounts gives the same refund back.
    retry = await sim.api("/secapi/pay/refund",
                          dict(refund_params(order, "R1", "30"), nonce_str="z"))
    assert retry["refund_id"] == first["refund_id"]
    changed = await sim.api("/secapi/pay/refund", refund_params(order, "R1", "31"))
    assert changed["err_code"] == "INVALID_REQUEST"
    wrong_total = await sim.api("/secapi/pay/refund", refund_params(order, "R2", "10",
                                                                    total_fee="99"))
    assert wrong_total["err_code"] == "PARAM_ERROR"
    over = await sim.api("/secapi/pay/refund", refund_params(order, "R2", "71"))
    assert (over["err_code"], over["err_code_des"]) == ("ERROR", "申请退款金额超过订单可退金额")
    rest = await sim.api("/secapi/pay/refund", refund_params(order, "R2", "70"))
    assert rest["result_code"] == "SUCCESS"
    state = await sim.api("/pay/orderquery", {"appid": APPID, "mch_id": MCH_ID, "nonce_str": "q",
                                              "out_trade_no": order["out_trade_no"]})
    assert state["trade_state"] == "REFUND"
    # The transaction_id names the order too.
    by_tid = await sim.api("/secapi/pay/refund", refund_params(
        order, "R3", "1", out_trade_no=None, transaction_id=state["transaction_id"]))
    assert by_tid["err_code"] == "ERROR"  # nothing left to refund


# 54 round trips: pytest-tornado's 5 s default was tight under load.
@pytest.mark.gen_test(timeout=30)
async def test_refund_limits_overdue_and_notenough(sim):
    order = await sim.paid_order()
    for n in range(50):
        reply = await sim.api("/secapi/pay/refund", refund_params(order, f"L{n}", "1"))
        assert reply["result_code"] == "SUCCESS"
    fifty_first = await sim.api("/secapi/pay/refund", refund_params(order, "L50", "1"))
    assert fifty_first["err_code"] == "ERROR" and "50" in fifty_first["err_code_des"]
    other = await sim.paid_order()
    code, _ = await sim.control("faults", {"name": "notenough", "count": 1})
    assert code == 200
    assert (await sim.api("/secapi/pay/refund", refund_params(other, "N1", "1")))[
        "err_code"] == "NOTENOUGH"
    assert (await sim.api("/secapi/pay/refund", refund_params(other, "N1", "1")))[
        "result_code"] == "SUCCESS"
    sim.state.advance(366 * 86400)
    assert (await sim.api("/secapi/pay/refund", refund_params(other, "N2", "1")))[
        "err_code"] == "TRADE_OVERDUE"


@pytest.mark.gen_test
async def test_refundquery_priority_states_and_errors(sim):
    order = await sim.paid_order()
    a = await sim.api("/secapi/pay/refund", refund_params(order, "RA", "10"))
    b = await sim.api("/secapi/pay/refund", refund_params(order, "RB", "20"))
    both = await sim.api("/pay/refundquery", rquery(out_trade_no=order["out_trade_no"]))
    assert both["refund_count"] == "2" and "total_refund_count" not in both
    assert (both["out_refund_no_0"], both["out_refund_no_1"]) == ("RA", "RB")
    assert both["refund_status_0"] == "PROCESSING" and "refund_success_time_0" not in both
    # refund_id beats out_refund_no beats transaction_id beats out_trade_no.
    only_a = await sim.api("/pay/refundquery", rquery(refund_id=a["refund_id"], out_refund_no="RB",
                                                      out_trade_no="NOPE"))
    assert only_a["refund_count"] == "1" and only_a["refund_id_0"] == a["refund_id"]
    only_b = await sim.api("/pay/refundquery", rquery(out_refund_no="RB",
                                                      transaction_id=b["transaction_id"]))
    assert only_b["refund_count"] == "1" and only_b["refund_fee_0"] == "20"
    by_tid = await sim.api("/pay/refundquery", rquery(transaction_id=b["transaction_id"],
                                                      out_trade_no="NOPE"))
    assert by_tid["refund_count"] == "2"
    page = await sim.api("/pay/refundquery", rquery(out_trade_no=order["out_trade_no"], offset="1"))
    assert page["total_refund_count"] == "2" and page["refund_count"] == "1"
    assert page["out_refund_no_0"] == "RB"
    assert (await sim.api("/pay/refundquery", rquery(out_trade_no=order["out_trade_no"],
                                                     offset="2")))["err_code"] == "PARAM_ERROR"
    for ids in ({"refund_id": "5" * 29}, {"out_refund_no": "NOPE"},
                {"out_trade_no": (await sim.paid_order())["out_trade_no"]}):
        assert (await sim.api("/pay/refundquery", rquery(**ids)))["err_code"] == "REFUNDNOTEXIST"
    assert (await sim.api("/pay/refundquery", rquery()))["err_code"] == "LACK_PARAMS"
    assert (await sim.api("/pay/refundquery", rquery(transaction_id="x")))[
        "err_code"] == "INVALID_TRANSACTIONID"
    code, body = await sim.control("refunds/finish", {"out_refund_no": "RA", "status": "CHANGE"})
    assert code == 200 and body["refund"]["status"] == "CHANGE"
    code, body = await sim.control("refunds/finish", {"refund_id": b["refund_id"],
                                                      "status": "REFUNDCLOSE"})
    assert code == 200
    code, body = await sim.control("refunds/finish", {"out_refund_no": "RA"})
    assert code == 409 and body["err_code"] == "TRADE_STATE_ERROR"
    after = await sim.api("/pay/refundquery", rquery(out_trade_no=order["out_trade_no"]))
    assert (after["refund_status_0"], after["refund_status_1"]) == ("CHANGE", "REFUNDCLOSE")
    # A closed refund gives its amount back: 100 - 10 (CHANGE counts) = 90 refundable.
    assert (await sim.api("/secapi/pay/refund", refund_params(order, "RC", "90")))[
        "result_code"] == "SUCCESS"


@pytest.mark.gen_test
async def test_finished_refund_sends_encrypted_notify(sim):
    order = await sim.paid_order()
    await wait_for(lambda: len(sim.box.bodies("pay")) == 1)
    reply = await sim.api("/secapi/pay/refund", refund_params(
        order, "RN1", "40", notify_url=sim.notify_url("refund")))
    assert sim.box.bodies("refund") == []
    code, _ = await sim.control("refunds/finish", {"out_refund_no": "RN1"})
    assert code == 200
    await wait_for(lambda: len(sim.box.bodies("refund")) == 1)
    outer = sim.box.bodies("refund")[0]
    assert outer["return_code"] == "SUCCESS" and "sign" not in outer
    assert (outer["appid"], outer["mch_id"]) == (APPID, MCH_ID)
    inner = decrypt_req_info(outer["req_info"], API_KEY)  # the merchant's own decrypter
    assert inner["out_refund_no"] == "RN1" and inner["refund_id"] == reply["refund_id"]
    assert (inner["refund_fee"], inner["total_fee"], inner["refund_status"]) == (
        "40", "100", "SUCCESS")
    assert inner["transaction_id"] == reply["transaction_id"]
    assert len(inner["success_time"]) == 19 and inner["refund_request_source"] == "API"
    assert decrypt_req_info_text(outer["req_info"], API_KEY).startswith("<root>\n")
    code, body = await sim.control("orders/" + order["out_trade_no"], method="GET")
    record = body["order"]["refund_records"][0]
    assert record["notify_status"] == "delivered" and record["notifies"][0]["ok"]


@pytest.mark.gen_test
async def test_refund_finishes_by_itself_after_the_delay(sim):
    sim.state.config.refund_delay_seconds = 60  # × time_scale 0.001 = 60 ms real
    order = await sim.paid_order()
    await sim.api("/secapi/pay/refund", refund_params(order, "RD", "100",
                                                      notify_url=sim.notify_url("refund")))
    await wait_for(lambda: len(sim.box.bodies("refund")) == 1)
    done = await sim.api("/pay/refundquery", rquery(out_refund_no="RD"))
    assert done["refund_status_0"] == "SUCCESS"
    # And lazily, when the clock is advanced past the delay before the timer fires.
    sim.state.config.refund_delay_seconds = 3600
    order = await sim.paid_order()
    await sim.api("/secapi/pay/refund", refund_params(order, "RE", "100"))
    assert (await sim.api("/pay/refundquery", rquery(out_refund_no="RE")))[
        "refund_status_0"] == "PROCESSING"
    sim.state.advance(3601)
    assert (await sim.api("/pay/refundquery", rquery(out_refund_no="RE")))[
        "refund_status_0"] == "SUCCESS"
