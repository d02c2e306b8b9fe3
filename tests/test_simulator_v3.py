"""The simulator's v3 API, checked by an independent client: wechatpayv3 (PyPI 2.0.x)."""

import asyncio
import datetime
import hashlib
import json
import shutil

import pytest
from wechatpayv3 import WeChatPay, WeChatPayType

from sim_helpers import (APPID, MCH_ID, OPENID, sim_config, simulator_app, state,  # noqa: F401
                         wait_for)
from sim_v3_helpers import (MERCHANT_KEY_FILE, PLATFORM_CERT_FILE, PUBLIC_KEY_FILE,
                            TEST_APIV3_KEY, TEST_MERCHANT_SERIAL, TEST_PUB_KEY_ID, HeaderBox,
                            HeaderReceiver, v3_call)
from tornpay.protocol.v3.keys import load_private_key


@pytest.fixture
def hbox():
    return HeaderBox()


@pytest.fixture
def app(state, hbox):
    return simulator_app(state, HeaderReceiver, hbox)


@pytest.fixture
def base(http_server, http_port):
    return f"http://127.0.0.1:{http_port}"


def read(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def wxpay(base, tmp_path=None):
    """wechatpayv3 against the simulator; tmp_path given = certificate mode."""
    kwargs = {"public_key": read(PUBLIC_KEY_FILE), "public_key_id": TEST_PUB_KEY_ID}
    if tmp_path is not None:
        shutil.copy(PLATFORM_CERT_FILE, tmp_path / "platform.pem")
        kwargs = {"cert_dir": str(tmp_path)}
    pay = WeChatPay(wechatpay_type=WeChatPayType.JSAPI, mchid=MCH_ID,
                    private_key=read(MERCHANT_KEY_FILE), cert_serial_no=TEST_MERCHANT_SERIAL,
                    appid=APPID, apiv3_key=TEST_APIV3_KEY,
                    notify_url=base + "/merchant/pay", **kwargs)
    pay._core._gate_way = base
    return pay


async def in_thread(fn, *args, **kwargs):
    # wechatpayv3 is blocking (requests): run it off the loop that serves the simulator.
    return await asyncio.get_running_loop().run_in_executor(None, lambda: fn(*args, **kwargs))


async def paid(pay, state, no, total=100):
    code, reply = await in_thread(pay.pay, description="Coaching", out_trade_no=no,
                                  amount={"total": total}, payer={"openid": OPENID})
    assert code == 200, reply
    order = state.find_order(no)
    state.pay(order)
    return order


@pytest.mark.gen_test
@pytest.mark.parametrize("mode", ["public_key", "certificate"])
async def test_wechatpayv3_accepts_replies_and_notifies(base, state, hbox, tmp_path, mode):
    state.config.v3 = None
    if mode == "certificate":
        from tornpay.simulator.v3.api import sim_keys
        sim_keys(state).mode = "certificate"
    pay = await in_thread(wxpay, base, tmp_path if mode == "certificate" else None)
    if mode == "certificate":  # the list from /v3/certificates decrypts and verifies
        await in_thread(pay._core._update_certificates)
        assert [format(c.serial_number, "X") for c in pay._core._certificates] == [
            "7E57F1A7F0000000000000000000000000000001"]
    order = await paid(pay, state, "V3PAY0001")
    code, text = await in_thread(pay.query, out_trade_no="V3PAY0001")
    assert code == 200 and '"trade_state":"SUCCESS"' in text
    await wait_for(lambda: len(hbox.received) == 1)
    _, headers, body = hbox.received[0]
    result = await in_thread(pay.callback, headers, body)
    resource = result["resource"]
    assert result["event_type"] == "TRANSACTION.SUCCESS"
    assert (resource["out_trade_no"], resource["amount"]["total"], resource["mchid"],
            resource["transaction_id"]) == ("V3PAY0001", 100, MCH_ID, order.transaction_id)
    code, text = await in_thread(pay.refund, out_refund_no="V3R0001", out_trade_no="V3PAY0001",
                                 amount={"refund": 40, "total": 100, "currency": "CNY"},
                                 notify_url=base + "/merchant/refund")
    assert code == 200 and '"status":"PROCESSING"' in text
    state.finish_refund(state.find_refund("V3R0001"), "SUCCESS")
    await wait_for(lambda: len(hbox.received) == 2)
    _, headers, body = hbox.received[1]
    refund = (await in_thread(pay.callback, headers, body))["resource"]
    assert (refund["refund_status"], refund["amount"]["refund"]) == ("SUCCESS", 40)
    code, text = await in_thread(pay.query_refund, out_refund_no="V3R0001")
    assert code == 200 and '"status":"SUCCESS"' in text


@pytest.mark.gen_test
async def test_close_is_a_signed_204_and_bill_hash_matches(base, state):
    pay = await in_thread(wxpay, base)
    code, _ = await in_thread(pay.pay, description="x", out_trade_no="V3CLOSE01",
                              amount={"total": 5}, payer={"openid": OPENID})
    assert code == 200
    assert await in_thread(pay.close, out_trade_no="V3CLOSE01") == (204, b"")
    await paid(pay, state, "V3BILL001", total=123)
    day = datetime.datetime.fromtimestamp(
        state.now(), datetime.timezone(datetime.timedelta(hours=8))).strftime("%Y-%m-%d")
    code, text = await in_thread(pay.trade_bill, bill_date=day, tar_type=None)
    assert code == 200, text
    bill = json.loads(text)
    code, content = await in_thread(pay.download_bill, bill["download_url"])
    assert code == 200
    raw = content.encode("utf-8") if isinstance(content, str) else content
    assert hashlib.sha1(raw).hexdigest() == bill["hash_value"]
    assert "`V3BILL001" in raw.decode("utf-8") and "`1.23" in raw.decode("utf-8")


@pytest.mark.gen_test
@pytest.mark.parametrize("change,status,code,text", [
    ("key", 401, "SIGN_ERROR", "签名错误"),
    ("serial", 401, "SIGN_ERROR", "证书序列号有误"),
    ("stale", 401, "SIGN_ERROR", "5分钟"),
    ("scheme", 401, "SIGN_ERROR", "Authorization值格式错误"),
    ("wechatpay_serial", 400, "PARAM_ERROR", "Wechatpay-Serial"),
    ("float", 400, "PARAM_ERROR", "amount/total"),
    ("v2_names", 400, "PARAM_ERROR", "非法的额外参数"),
])
async def test_request_refusals(http_client, base, state, change, status, code, text, tmp_path):
    data = {"appid": APPID, "mchid": MCH_ID, "description": "x", "out_trade_no": "V3BAD0001",
            "notify_url": "https://shop.example.com/n", "amount": {"total": 1},
            "payer": {"openid": OPENID}}
    kwargs = {}
    if change == "key":
        from cryptography.hazmat.primitives.asymmetric import rsa
        kwargs["key"] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif change == "serial":
        kwargs["serial"] = "7E57000000000000000000000000000010000101"
    elif change == "stale":
        kwargs["stamp"] = int(state.now()) - 400
    elif change == "wechatpay_serial":
        kwargs["headers"] = {"Wechatpay-Serial": "PUB_KEY_ID_0000000000000000000000000099"}
    elif change == "float":
        data["amount"]["total"] = 0.01
    elif change == "v2_names":
        data["total_fee"] = 1
    if change == "scheme":
        kwargs["headers"] = {"Authorization": "WECHATPAY2-SHA256-RSA2048 mchid=\"10000100\""}
    got, body, _ = await v3_call(http_client, base, "POST", "/v3/pay/transactions/jsapi", data,
                                 **kwargs)
    assert (got, body["code"]) == (status, code) and text in body["message"], body
    assert state.find_order("V3BAD0001") is None


@pytest.mark.gen_test
async def test_certificates_in_public_key_mode_is_404(http_client, base):
    code, body, _ = await v3_call(http_client, base, "GET", "/v3/certificates")
    assert (code, body["code"]) == (404, "RESOURCE_NOT_EXISTS")


@pytest.mark.gen_test
@pytest.mark.parametrize("fault", ["notify_bad_sign", "notify_probe",
                                   "notify_tampered", "notify_wrong_aad"])
async def test_notify_faults_are_rejected_by_wechatpayv3(base, state, hbox, fault):
    pay = await in_thread(wxpay, base)
    state.faults.set(fault, count=1)
    hbox.status = 500
    await paid(pay, state, "V3FAULT01")
    await wait_for(lambda: len(hbox.received) >= 1)
    _, headers, body = hbox.received[0]
    try:
        result = await in_thread(pay.callback, headers, body)
    except Exception:  # wechatpayv3 raises on some tampering (e.g. a GCM tag failure)
        result = None
    assert not result


def test_shipped_keys_are_a_pair_and_marked_test_only():
    key = load_private_key(MERCHANT_KEY_FILE)
    assert key.key_size == 2048 and "TEST-ONLY" in MERCHANT_KEY_FILE


@pytest.mark.gen_test
@pytest.mark.parametrize("kind,token", [("NATIVE", "code_url"), ("H5", "h5_url")])
async def test_native_and_h5_prepay(http_client, base, state, kind, token):
    pay = await in_thread(wxpay, base)
    pay._type = getattr(WeChatPayType, kind)
    scene = {"payer_client_ip": "203.0.113.7", "h5_info": {"type": "Wap"}}
    code, text = await in_thread(pay.pay, description="x", out_trade_no="V3" + kind + "01",
                                 amount={"total": 5},
                                 scene_info=scene if kind == "H5" else None)
    assert code == 200 and token in json.loads(text), text
    order = state.find_order("V3" + kind + "01")
    assert (order.api, order.trade_type) == ("v3", "MWEB" if kind == "H5" else "NATIVE")
    if kind == "H5":  # H5 without scene_info is refused (wechatpayv3 would not send it)
        code, body, _ = await v3_call(http_client, base, "POST", "/v3/pay/transactions/h5", {
            "appid": APPID, "mchid": MCH_ID, "description": "x", "out_trade_no": "V3H5NOSCENE",
            "notify_url": "https://shop.example.com/n", "amount": {"total": 5}})
        assert (code, body["code"]) == (400, "PARAM_ERROR")
