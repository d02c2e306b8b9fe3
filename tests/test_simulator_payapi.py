"""Simulator pay API over loopback HTTP: layer-1 checks, signatures, unifiedorder/query/close."""

import pytest

from sim_helpers import (  # noqa: F401  (fixtures)
    API_KEY, APPID, MCH_ID, app, box, sim, sim_config, signed, state,
)
from tornpay.protocol.sign import HMAC_SHA256, make_sign, verify_sign
from tornpay.protocol.xmlcodec import decode_xml, encode_xml


async def layer1(sim, body: bytes, path: str = "/pay/unifiedorder", method: str = "POST") -> str:
    response = await sim.raw(path, body, method)
    reply = decode_xml(response.body)
    assert reply["return_code"] == "FAIL"
    assert "sign" not in reply  # layer-1 failures are unsigned
    return reply["return_msg"]


@pytest.mark.gen_test
async def test_transport_failures_are_unsigned_layer1(sim):
    assert "REQUIRE_POST_METHOD" in await layer1(sim, b"", method="GET")
    assert "POST_DATA_EMPTY" in await layer1(sim, b"  ")
    assert "NOT_UTF8" in await layer1(sim, "<xml><a>é</a></xml>".encode("latin-1"))
    assert "XML_FORMAT_ERROR" in await layer1(sim, b"<xml><a>1</a>")
    assert "XML_FORMAT_ERROR" in await layer1(sim, b"<root><a>1</a></root>")
    assert "XML_FORMAT_ERROR" in await layer1(sim, b'<!DOCTYPE x [<!ENTITY e "x">]><xml>&e;</xml>')


@pytest.mark.gen_test
@pytest.mark.parametrize("missing", ["appid", "mch_id", "nonce_str", "sign"])
async def test_missing_common_field_is_layer1(sim, missing):
    params = dict(sim.order_params())
    fields = decode_xml(signed(params))
    del fields[missing]
    assert missing in await layer1(sim, encode_xml(fields))


@pytest.mark.gen_test
async def test_merchant_sign_type_and_signature_checks(sim):
    assert "MCHID_NOT_EXIST" in await layer1(sim, signed(sim.order_params(mch_id="999")))
    bad_type = sim.order_params(sign_type="SHA1")
    bad_type["sign"] = make_sign(bad_type, API_KEY)
    assert "sign_type" in await layer1(sim, encode_xml(bad_type))
    assert await layer1(sim, signed(sim.order_params(), key="k" * 32)) == "签名错误"
    # Tampering after signing is caught too.
    tampered = decode_xml(signed(sim.order_params()))
    tampered["total_fee"] = "1"
    assert await layer1(sim, encode_xml(tampered)) == "签名错误"
    # An HMAC-signed request checked as HMAC: declared MD5 with an HMAC sign fails.
    hmac_fields = decode_xml(signed(sim.order_params(), sign_type=HMAC_SHA256))
    hmac_fields["sign_type"] = "MD5"
    assert await layer1(sim, encode_xml(hmac_fields)) == "签名错误"


@pytest.mark.gen_test
async def test_appid_not_bound_is_signed_business_error(sim):
    reply = await sim.api("/pay/unifiedorder", sim.order_params(appid="wx0000000000000000"))
    assert reply["result_code"] == "FAIL"
    assert reply["err_code"] == "APPID_MCHID_NOT_MATCH"


@pytest.mark.gen_test
@pytest.mark.parametrize("sign_type", ["MD5", HMAC_SHA256])
async def test_unifiedorder_success_signed_with_request_sign_type(sim, sign_type):
    reply = await sim.api("/pay/unifiedorder", sim.order_params(), sign_type=sign_type)
    assert reply["result_code"] == "SUCCESS" and reply["return_msg"] == "OK"
    assert reply["appid"] == APPID and reply["mch_id"] == MCH_ID
    assert len(reply["sign"]) == (64 if sign_type == HMAC_SHA256 else 32)
    assert reply["prepay_id"].startswith("wx") and len(reply["prepay_id"]) == 36
    assert reply["trade_type"] == "JSAPI"
    # Signed with the other algorithm it would not verify.
    other = "MD5" if sign_type == HMAC_SHA256 else HMAC_SHA256
    assert not verify_sign(reply, API_KEY, other)


@pytest.mark.gen_test
@pytest.mark.parametrize("over,err_code", [
    ({"body": None}, "LACK_PARAMS"),
    ({"notify_url": None}, "LACK_PARAMS"),
    ({"total_fee": "0"}, "INVALID_REQUEST"),
    ({"total_fee": "1.00"}, "INVALID_REQUEST"),
    ({"total_fee": "-5"}, "INVALID_REQUEST"),
    ({"out_trade_no": "bad no!"}, "INVALID_REQUEST"),
    ({"out_trade_no": "x" * 33}, "INVALID_REQUEST"),
    ({"out_trade_no": "TP1\n"}, "INVALID_REQUEST"),  # a trailing newline is not a valid id
    ({"trade_type": "CASH"}, "INVALID_REQUEST"),
    ({"trade_type": "APP"}, "NOAUTH"),
    ({"trade_type": "NATIVE"}, "LACK_PARAMS"),  # NATIVE needs product_id
    ({"trade_type": "MWEB"}, "INVALID_REQUEST"),  # MWEB needs a JSON scene_info
    ({"notify_url": "http://m.example/notify?x=1"}, "INVALID_REQUEST"),
    ({"fee_type": "USD"}, "INVALID_REQUEST"),
    ({"time_expire": "2024-06-01"}, "INVALID_REQUEST"),
    ({"time_expire": "20000101000000"}, "INVALID_REQUEST"),
])
async def test_unifiedorder_field_validation(sim, over, err_code):
    reply = await sim.api("/pay/unifiedorder", sim.order_params(**over))
    assert reply["result_code"] == "FAIL", reply
    assert reply["err_code"] == err_code


@pytest.mark.gen_test
async def test_jsapi_without_openid_is_layer1(sim):
    msg = await layer1(sim, signed(sim.order_params(openid=None)))
    assert msg == "JSAPI支付必须传openid"


@pytest.mark.gen_test
async def test_reentry_same_params_same_prepay_changed_params_invalid(sim):
    order = await sim.order()
    params = {k: v for k, v in order.items() if k != "prepay_id"}
    again = await sim.api("/pay/unifiedorder", dict(params, nonce_str="other"))
    assert again["prepay_id"] == order["prepay_id"]
    changed = await sim.api("/pay/unifiedorder", dict(params, total_fee="101"))
    assert (changed["err_code"], changed["err_code_des"]) == ("INVALID_REQUEST", "201 商户订单号重复")
    # After 2 hours the prepay_id dies; identical re-entry gives a fresh one.
    sim.state.advance(2 * 3600 + 1)
    fresh = await sim.api("/pay/unifiedorder", params)
    assert fresh["result_code"] == "SUCCESS" and fresh["prepay_id"] != order["prepay_id"]


@pytest.mark.gen_test
async def test_unifiedorder_on_paid_closed_and_payerror_orders(sim):
    paid = await sim.paid_order()
    reply = await sim.api("/pay/unifiedorder", {k: v for k, v in paid.items() if k != "prepay_id"})
    assert reply["err_code"] == "ORDERPAID"
    order = await sim.order()
    sim.state.advance(301)
    closed = await sim.api("/pay/closeorder", {"appid": APPID, "mch_id": MCH_ID, "nonce_str": "c",
                                               "out_trade_no": order["out_trade_no"]})
    assert closed["result_code"] == "SUCCESS" and closed["result_msg"] == "OK"
    params = {k: v for k, v in order.items() if k != "prepay_id"}
    assert (await sim.api("/pay/unifiedorder", params))["err_code"] == "ORDERCLOSED"
    failed = await sim.order()
    code, body = await sim.control("pay", {"out_trade_no": failed["out_trade_no"],
                                           "result": "PAYERROR"})
    assert code == 200 and body["order"]["trade_state"] == "PAYERROR"
    params = {k: v for k, v in failed.items() if k != "prepay_id"}
    assert (await sim.api("/pay/unifiedorder", params))["err_code"] == "OUT_TRADE_NO_USED"


def query(out_trade_no="", transaction_id=""):
    params = {"appid": APPID, "mch_id": MCH_ID, "nonce_str": "q"}
    if out_trade_no:
        params["out_trade_no"] = out_trade_no
    if transaction_id:
        params["transaction_id"] = transaction_id
    return params


@pytest.mark.gen_test
async def test_orderquery_states(sim):
    order = await sim.order(attach="shop=1")
    notpay = await sim.api("/pay/orderquery", query(order["out_trade_no"]))
    assert notpay["trade_state"] == "NOTPAY" and notpay["total_fee"] == "100"
    assert "attach" not in notpay and "transaction_id" not in notpay
    await sim.control("pay", {"prepay_id": order["prepay_id"]})
    paid = await sim.api("/pay/orderquery", query(order["out_trade_no"]))
    assert paid["trade_state"] == "SUCCESS" and paid["attach"] == "shop=1"
    tid = paid["transaction_id"]
    assert len(tid) == 28 and tid.isdigit()
    assert len(paid["time_end"]) == 14 and paid["cash_fee"] == "100"
    by_tid = await sim.api("/pay/orderquery", query("ignored", tid))
    assert by_tid["out_trade_no"] == order["out_trade_no"]
    missing = await sim.api("/pay/orderquery", query("NOPE"))
    assert missing["result_code"] == "FAIL" and missing["err_code"] == "ORDERNOTEXIST"
    lack = await sim.api("/pay/orderquery", query())
    assert lack["err_code"] == "LACK_PARAMS"
    failed = await sim.order()
    await sim.control("pay", {"out_trade_no": failed["out_trade_no"], "result": "PAYERROR"})
    assert (await sim.api("/pay/orderquery", query(failed["out_trade_no"])))[
        "trade_state"] == "PAYERROR"


@pytest.mark.gen_test
async def test_closeorder_rules(sim):
    order = await sim.order()
    close = {"appid": APPID, "mch_id": MCH_ID, "nonce_str": "c",
             "out_trade_no": order["out_trade_no"]}
    young = await sim.api("/pay/closeorder", close)
    assert young["result_code"] == "FAIL" and young["err_code"] == "TRADE_STATE_ERROR"
    sim.state.advance(300)
    assert (await sim.api("/pay/closeorder", close))["result_code"] == "SUCCESS"
    assert (await sim.api("/pay/closeorder", close))["err_code"] == "ORDERCLOSED"
    assert (await sim.api("/pay/orderquery", query(order["out_trade_no"])))[
        "trade_state"] == "CLOSED"
    paid = await sim.paid_order()
    sim.state.advance(300)
    assert (await sim.api("/pay/closeorder", dict(close, out_trade_no=paid["out_trade_no"])))[
        "err_code"] == "ORDERPAID"
    assert (await sim.api("/pay/closeorder", dict(close, out_trade_no="NOPE")))[
        "err_code"] == "ORDERNOTEXIST"
    assert (await sim.api("/pay/closeorder", dict(close, out_trade_no=None)))[
        "err_code"] == "LACK_PARAMS"


@pytest.mark.gen_test
async def test_time_expire_in_the_future_is_accepted(sim):
    from tornpay.simulator.records import compact_time
    expire = compact_time(sim.state.now() + 1800)
    order = await sim.order(time_expire=expire)
    assert order["prepay_id"]
    too_soon = await sim.api("/pay/unifiedorder",
                             sim.order_params(time_expire=compact_time(sim.state.now() + 30)))
    assert too_soon["err_code"] == "INVALID_REQUEST"


@pytest.mark.gen_test
async def test_sandbox_prefix_uses_getsignkey_key(sim):
    key_reply = decode_xml((await sim.raw("/sandboxnew/pay/getsignkey", signed(
        {"mch_id": MCH_ID, "nonce_str": "s"}))).body)
    assert key_reply["return_code"] == "SUCCESS"
    sandbox_key = key_reply["sandbox_signkey"]
    assert len(sandbox_key) == 32 and sandbox_key != API_KEY
    ok = await sim.api("/sandboxnew/pay/unifiedorder", sim.order_params(), key=sandbox_key)
    assert ok["result_code"] == "SUCCESS"
    # The production key is refused on the sandbox, like WeChat's sandbox does.
    refused = await layer1(sim, signed(sim.order_params()), path="/sandboxnew/pay/unifiedorder")
    # Issue 20 item 9: the sandbox's own text (reference §14), and device_info=sandbox.
    assert refused == "沙箱验证签名失败，请确认沙箱签名key是否正确（通过getsignkey调用生成）"
    assert ok["device_info"] == "sandbox"
    query = await sim.api("/sandboxnew/pay/orderquery", {
        "appid": APPID, "mch_id": MCH_ID, "nonce_str": "q", "out_trade_no": "T00000001"},
        key=sandbox_key)
    assert query["device_info"] == "sandbox" and query["trade_state"] == "NOTPAY"
    # Production endpoints keep the plain text and never add device_info.
    assert await layer1(sim, signed(sim.order_params(), key=sandbox_key)) == "签名错误"
    plain = await sim.order()
    assert "device_info" not in plain
