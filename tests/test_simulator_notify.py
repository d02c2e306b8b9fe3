"""Simulator notifier and fault switches: retry schedule, duplicates, forged notifies, replies."""

import asyncio
import time

import pytest

from sim_helpers import (  # noqa: F401  (fixtures)
    API_KEY, APPID, FAIL_REPLY, MCH_ID, OPENID, SUCCESS_REPLY, app, box, signed, sim, sim_config,
    state, wait_for,
)
from tornpay.protocol.sign import HMAC_SHA256, verify_sign

NOTIFY_FIELDS = {"appid", "mch_id", "nonce_str", "sign", "result_code", "return_code", "openid",
                 "is_subscribe", "trade_type", "bank_type", "total_fee", "fee_type", "cash_fee",
                 "transaction_id", "out_trade_no", "attach", "time_end"}


def query(out_trade_no):
    return {"appid": APPID, "mch_id": MCH_ID, "nonce_str": "q", "out_trade_no": out_trade_no}


async def attempts(sim, out_trade_no):
    code, body = await sim.control("orders/" + out_trade_no, method="GET")
    assert code == 200
    return body["order"]


@pytest.mark.gen_test
@pytest.mark.parametrize("sign_type", ["MD5", HMAC_SHA256])
async def test_payment_notify_has_all_fields_and_verifies(sim, sign_type):
    order = sim.order_params(attach="booking=7")
    reply = await sim.api("/pay/unifiedorder", order, sign_type=sign_type)
    await sim.control("pay", {"prepay_id": reply["prepay_id"]})
    await wait_for(lambda: len(sim.box.bodies("pay")) == 1)
    notify = sim.box.bodies("pay")[0]
    assert set(notify) == NOTIFY_FIELDS  # no sign_type by default, even for HMAC
    assert verify_sign(notify, API_KEY, sign_type)
    assert (notify["total_fee"], notify["cash_fee"], notify["openid"]) == ("100", "100", OPENID)
    assert notify["attach"] == "booking=7" and notify["out_trade_no"] == order["out_trade_no"]
    queried = await sim.api("/pay/orderquery", query(order["out_trade_no"]), sign_type=sign_type)
    assert (queried["transaction_id"], queried["time_end"]) == (
        notify["transaction_id"], notify["time_end"])
    await wait_for(lambda: sim.state.find_order(order["out_trade_no"]).notify_status == "delivered")


@pytest.mark.gen_test
async def test_notify_can_include_sign_type(sim):
    sim.state.config.include_sign_type_in_notify = True
    reply = await sim.api("/pay/unifiedorder", sim.order_params(), sign_type=HMAC_SHA256)
    await sim.control("pay", {"prepay_id": reply["prepay_id"]})
    await wait_for(lambda: len(sim.box.bodies("pay")) == 1)
    notify = sim.box.bodies("pay")[0]
    assert notify["sign_type"] == HMAC_SHA256 and verify_sign(notify, API_KEY, HMAC_SHA256)


@pytest.mark.gen_test
async def test_retries_until_success_reply_exactly_three_attempts(sim):
    sim.box.replies = [FAIL_REPLY, (500, SUCCESS_REPLY)]
    order = await sim.paid_order()
    await wait_for(lambda: len(sim.box.received) == 3)
    await asyncio.sleep(0.1)  # nothing more comes once SUCCESS was answered
    assert len(sim.box.received) == 3
    record = await attempts(sim, order["out_trade_no"])
    assert record["notify_status"] == "delivered"
    assert [(a["n"], a["status"], a["ok"]) for a in record["notifies"]] == [
        (1, 200, False), (2, 500, False), (3, 200, True)]
    assert "FAIL" in record["notifies"][0]["reply"]
    bodies = sim.box.bodies("pay")
    assert bodies[0] == bodies[1] == bodies[2]  # the same notify redelivered


@pytest.mark.gen_test
async def test_non_xml_and_slow_replies_count_as_failures(sim):
    sim.state.config.notify_timeout = 0.2
    sim.box.replies = [b"success", 0.5]  # plain text, then a reply slower than the deadline
    order = await sim.paid_order()
    await wait_for(lambda: sim.state.find_order(order["out_trade_no"]).notify_status == "delivered")
    record = await attempts(sim, order["out_trade_no"])
    assert [a["ok"] for a in record["notifies"]] == [False, False, True]
    assert record["notifies"][1]["error"]  # the timeout is recorded


@pytest.mark.gen_test
async def test_retry_gaps_follow_the_scaled_schedule(sim):
    scale = 0.002
    sim.state.config.time_scale = scale
    sim.box.replies = [FAIL_REPLY] * 4
    order = await sim.paid_order()
    await wait_for(lambda: sim.state.find_order(order["out_trade_no"]).notify_status == "delivered")
    times = [a.at for a in sim.state.find_order(order["out_trade_no"]).notifies]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert len(gaps) == 4
    for gap, expected in zip(gaps, (15, 15, 30, 180)):
        assert expected * scale * 0.9 <= gap < expected * scale + 0.25


@pytest.mark.gen_test(timeout=10)
async def test_gives_up_after_sixteen_deliveries(sim):
    sim.state.config.time_scale = 0.00001  # the whole 24h4m schedule in ~0.9 s
    sim.box.replies = [FAIL_REPLY] * 40
    order = await sim.paid_order()
    await wait_for(lambda: sim.state.find_order(order["out_trade_no"]).notify_status == "gave_up",
                   timeout=5)
    assert len(sim.box.received) == 16


@pytest.mark.gen_test
async def test_duplicate_fault_delivers_twice_concurrently(sim):
    sim.box.replies = [0.05, 0.05]  # both in flight at once
    await sim.control("faults", {"name": "notify_duplicate", "count": 1})
    order = await sim.paid_order()
    await wait_for(lambda: len(sim.box.received) == 2)
    first, second = sim.box.bodies("pay")
    assert first == second
    record = await attempts(sim, order["out_trade_no"])
    assert [a["duplicate"] for a in record["notifies"]] == [False, True]
    # The switch was armed once: the next payment is delivered once.
    await sim.paid_order()
    await wait_for(lambda: len(sim.box.received) == 3)
    await asyncio.sleep(0.05)
    assert len(sim.box.received) == 3


@pytest.mark.gen_test
async def test_drop_fault_sends_nothing_and_resend_delivers(sim):
    await sim.control("faults", {"name": "notify_drop"})
    order = await sim.paid_order()
    await asyncio.sleep(0.05)
    assert sim.box.received == []
    record = await attempts(sim, order["out_trade_no"])
    assert record["notify_status"] == "dropped" and record["trade_state"] == "SUCCESS"
    code, _ = await sim.control("faults", method="DELETE")
    assert code == 200
    code, _ = await sim.control("notify/resend", {"out_trade_no": order["out_trade_no"]})
    assert code == 200
    await wait_for(lambda: len(sim.box.received) == 1)
    code, body = await sim.control("notifies", method="GET")
    assert [n["dropped"] for n in body["notifies"]][:1] == [True]
    unpaid = await sim.order()
    code, body = await sim.control("notify/resend", {"out_trade_no": unpaid["out_trade_no"]})
    assert code == 409


@pytest.mark.gen_test
async def test_wrong_amount_and_bad_signature_faults(sim):
    await sim.control("faults", {"name": "notify_wrong_total_fee", "count": 1})
    await sim.paid_order()
    await wait_for(lambda: len(sim.box.received) == 1)
    forged = sim.box.bodies("pay")[0]
    assert forged["total_fee"] == "101" and verify_sign(forged, API_KEY, "MD5")
    await sim.control("faults", {"name": "notify_bad_sign", "count": 1})
    await sim.paid_order()
    await wait_for(lambda: len(sim.box.received) == 2)
    bad = sim.box.bodies("pay")[1]
    assert bad["total_fee"] == "100" and not verify_sign(bad, API_KEY, "MD5")


@pytest.mark.gen_test
async def test_notify_before_unifiedorder_reply(sim):
    await sim.control("faults", {"name": "notify_before_reply", "count": 1})
    params = sim.order_params()
    reply = await sim.api("/pay/unifiedorder", params)
    assert reply["result_code"] == "SUCCESS"
    # The merchant had the notify in hand before it saw the prepay_id.
    assert [b["out_trade_no"] for b in sim.box.bodies("pay")] == [params["out_trade_no"]]


@pytest.mark.gen_test
async def test_systemerror_count_and_probability(sim):
    order = await sim.order()
    await sim.control("faults", {"name": "systemerror", "count": 2, "endpoint": "orderquery"})
    codes = [(await sim.api("/pay/orderquery", query(order["out_trade_no"]))).get("err_code")
             for _ in range(3)]
    assert codes == ["SYSTEMERROR", "SYSTEMERROR", None]
    await sim.control("faults", {"name": "systemerror", "probability": 0.0})
    assert (await sim.api("/pay/orderquery", query(order["out_trade_no"])))[
        "result_code"] == "SUCCESS"
    await sim.control("faults", {"name": "systemerror", "probability": 1.0, "endpoint": "refund"})
    assert (await sim.api("/pay/orderquery", query(order["out_trade_no"])))[
        "result_code"] == "SUCCESS"


@pytest.mark.gen_test
async def test_reply_faults_for_client_tests(sim):
    order = await sim.order()
    await sim.control("faults", {"name": "reply_unsigned", "count": 1})
    unsigned = await sim.api("/pay/orderquery", query(order["out_trade_no"]), verify=False)
    assert unsigned["return_code"] == "SUCCESS" and "sign" not in unsigned
    await sim.control("faults", {"name": "reply_bad_sign", "count": 1})
    forged = await sim.api("/pay/orderquery", query(order["out_trade_no"]), verify=False)
    assert forged["sign"] and not verify_sign(forged, API_KEY, "MD5")
    await sim.control("faults", {"name": "reply_non_xml", "count": 1, "endpoint": "orderquery"})
    response = await sim.raw("/pay/orderquery", signed(query(order["out_trade_no"])))
    assert response.body.startswith(b"<html>")
    assert (await sim.api("/pay/orderquery", query(order["out_trade_no"])))[
        "result_code"] == "SUCCESS"


@pytest.mark.gen_test
async def test_latency_is_per_endpoint_and_non_blocking(sim):
    order = await sim.order()
    await sim.control("faults", {"name": "latency", "seconds": 0.3, "endpoint": "orderquery"})
    started = time.monotonic()
    slow = asyncio.ensure_future(sim.api("/pay/orderquery", query(order["out_trade_no"])))
    await asyncio.sleep(0.02)
    await sim.order()  # another endpoint answers while the query sleeps
    fast_done = time.monotonic() - started
    assert (await slow)["result_code"] == "SUCCESS"
    assert fast_done < 0.25 <= time.monotonic() - started


@pytest.mark.gen_test
async def test_fault_control_validation_and_listing(sim):
    code, body = await sim.control("faults", {"name": "nonsense"})
    assert code == 400 and "unknown fault" in body["error"]
    code, body = await sim.control("faults", {"name": "systemerror", "count": 0})
    assert code == 400
    code, body = await sim.control("faults", {"name": "systemerror", "count": 3,
                                              "endpoint": "refund"})
    assert code == 200 and body["faults"][0]["count"] == 3
    code, body = await sim.control("faults", method="GET")
    assert [f["name"] for f in body["faults"]] == ["systemerror"]
    code, body = await sim.control("faults", method="DELETE")
    assert body["faults"] == []
    code, body = await sim.control("nothing-here", method="GET")
    assert code == 404
    code, body = await sim.control("clock", {"advance": 60})
    assert code == 200 and body["now"] >= time.time() + 59
