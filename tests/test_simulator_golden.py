"""The simulator reproduces the reference's signed samples (Appendix B) and §12.4 req_info."""

import pytest

from sim_helpers import API_KEY, app, box, make_config, sim, sim_config, state  # noqa: F401
from tornpay.protocol.sign import HMAC_SHA256
from tornpay.protocol.xmlcodec import decode_xml
from tornpay.simulator.notifier import payment_notify_fields
from tornpay.simulator.records import parse_compact_time
from tornpay.simulator.refundcipher import encrypt_req_info, req_info_plaintext
from vectors import REQ_INFO_12_4, message_xml  # the reference, shared with the merchant side

# The reference's request samples, byte for byte (tests/vectors_v2.xml).
UNIFIEDORDER_B3 = message_xml("B3")
ORDERQUERY_B9 = message_xml("B9")
CLOSEORDER_B13 = message_xml("B13")
REFUND_B15 = message_xml("B15")
REFUNDQUERY_B17 = message_xml("B17")


def pin(state, **values):
    """Make the state's id/nonce generators return fixed reference values."""
    for name, value in values.items():
        setattr(state, name, lambda value=value: value)


async def post(sim, path, body):
    response = await sim.raw(path, body)
    assert response.code == 200
    return decode_xml(response.body)


@pytest.mark.gen_test
async def test_replies_match_reference_signatures(sim):
    st = sim.state
    st.set_now(parse_compact_time("20240601123045"))
    pin(st, nonce="IITRi8Iabbblz1Jc", new_prepay_id="wx01123045912345a1b2c3d4e5f60718290000")
    reply = await post(sim, "/pay/unifiedorder", UNIFIEDORDER_B3)
    assert reply == {
        "return_code": "SUCCESS", "return_msg": "OK", "appid": "wxd930ea5d5a258f4f",
        "mch_id": "10000100", "device_info": "WEB", "nonce_str": "IITRi8Iabbblz1Jc",
        "result_code": "SUCCESS", "prepay_id": "wx01123045912345a1b2c3d4e5f60718290000",
        "trade_type": "JSAPI", "sign": "9594894636778AA4FC9E759AD1F49CED",  # B5
    }

    # A second, unpaid order (B11 shape: device_info WEB, total_fee 1).
    params = sim.order_params("20240601123045000124", device_info="WEB", total_fee="1")
    await sim.api("/pay/unifiedorder", params)
    pin(st, nonce="yQETQFFag5TTMB8d")
    notpay = await sim.api("/pay/orderquery", {
        "appid": "wxd930ea5d5a258f4f", "mch_id": "10000100", "nonce_str": "x",
        "out_trade_no": "20240601123045000124"})
    assert notpay["sign"] == "953AE78F5673B0B5147586F2EC18B9B0"  # B11
    assert set(notpay) == {"return_code", "return_msg", "appid", "mch_id", "device_info",
                           "nonce_str", "result_code", "total_fee", "out_trade_no",
                           "trade_state", "trade_state_desc", "sign"}

    # Paid at 12:31:10 Beijing; the notify goes to merchant.example.com, so drop it.
    st.set_now(parse_compact_time("20240601123110"))
    pin(st, new_transaction_id="4200002315202406013425869417")
    await sim.control("faults", {"name": "notify_drop", "count": 1})
    code, _ = await sim.control("pay", {"out_trade_no": "20240601123045000123"})
    assert code == 200
    pin(st, nonce="C5h9TIF57KyXXr3M")
    paid = await post(sim, "/pay/orderquery", ORDERQUERY_B9)
    assert paid["sign"] == "CD82D4A006F8E013EF85CEF0BBE39BD8"  # B10
    assert paid["time_end"] == "20240601123110" and paid["trade_state_desc"] == "支付成功"
    assert len(paid) == 22

    pin(st, nonce="Ror2WQTEfAl3Y40q")
    again = await post(sim, "/pay/unifiedorder", UNIFIEDORDER_B3)
    assert (again["err_code"], again["err_code_des"]) == ("ORDERPAID", "该订单已支付")
    assert again["sign"] == "2709224F3CE4B81C66EA970C33398DAF"  # B6

    pin(st, nonce="TN55wO9Pba5yENl8")
    missing = await sim.api("/pay/orderquery", {
        "appid": "wxd930ea5d5a258f4f", "mch_id": "10000100", "nonce_str": "y",
        "out_trade_no": "20240601999999999999"})
    assert missing["sign"] == "5F13089726CE66FC3C73D10E307C5FFA"  # B12

    st.advance(600)
    pin(st, nonce="BFK89FC6rxKCOjLX")
    closed = await post(sim, "/pay/closeorder", CLOSEORDER_B13)
    assert closed["sign"] == "1998AEAE7E4FC50B3EAFD25B31C59553"  # B14

    pin(st, nonce="NfsMFbUFpdbEhPXP", new_refund_id="50300008812024060201234567890")
    refund = await post(sim, "/secapi/pay/refund", REFUND_B15)
    assert refund["refund_channel"] == "" and refund["coupon_refund_fee"] == "0"
    assert refund["sign"] == "F409E7D0442C7BFD085522699715478E"  # B16

    st.set_now(parse_compact_time("20240602101532"))
    await sim.control("faults", {"name": "notify_drop", "count": 1})
    code, _ = await sim.control("refunds/finish", {"out_refund_no": "R20240602000001"})
    assert code == 200
    pin(st, nonce="TeqClE3i0mvn3DrK")
    rq = await post(sim, "/pay/refundquery", REFUNDQUERY_B17)
    assert rq["refund_success_time_0"] == "2024-06-02 10:15:32"
    assert rq["sign"] == "A5D14B9809B9D64DCE1B47AA4B1E4B22"  # B18


def test_payment_notify_matches_b20_and_b22():
    from tornpay.simulator.records import Order
    from tornpay.simulator.state import SimulatorState
    state = SimulatorState(make_config())
    order = Order(
        mch_id="10000100", appid="wxd930ea5d5a258f4f", out_trade_no="20240601123045000123",
        request={}, sign_type="MD5", created_at=0, total_fee=1,
        openid="oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", notify_url="", body="x", attach="shop=sz01",
        device_info="WEB", trade_state="SUCCESS", transaction_id="4200002315202406013425869417",
        time_end="20240601123110",
    )
    pin(state, nonce="5d2b6c2a8db53831f7eda20af46e531c")
    fields = payment_notify_fields(state, order)
    assert fields["sign"] == "B1142321B79837618DD55A8DE4A3B381"  # B20
    assert "sign_type" not in fields and "device_info" not in fields
    order.sign_type = HMAC_SHA256
    assert payment_notify_fields(state, order)["sign"] == (
        "799E96C889F024D9F7E2B726E04DE854FEB8E8D4A50180DDFE58F9D2F570D070")  # B22


def test_req_info_matches_reference_12_4():
    fields = {
        "out_refund_no": "R20240602000001", "out_trade_no": "20240601123045000123",
        "refund_account": "REFUND_SOURCE_UNSETTLED_FUNDS", "refund_fee": "1",
        "refund_id": "50300008812024060201234567890", "refund_recv_accout": "支付用户零钱",
        "refund_request_source": "API", "refund_status": "SUCCESS",
        "settlement_refund_fee": "1", "settlement_total_fee": "1",
        "success_time": "2024-06-02 10:15:32", "total_fee": "1",
        "transaction_id": "4200002315202406013425869417",
    }
    import hashlib
    plaintext = req_info_plaintext(fields)
    assert hashlib.sha256(plaintext).hexdigest() == (
        "4e49a5cc43faf426d32babe6d821f2765ca465a1494047050fe8195e75d47327")  # B28
    assert encrypt_req_info(fields, API_KEY) == REQ_INFO_12_4
