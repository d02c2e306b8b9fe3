"""tornpay's v3 client and gateway against the reference's vectors, over a fake HTTP client."""

import datetime
import gzip
import json
import types

import pytest
from tornado.httputil import HTTPHeaders

from tests import vectors_v3 as V
from tornpay.gateway.v3 import V3Gateway, V3TradeBill
from tornpay.protocol.errors import BusinessError, ResponseSignatureError, TransportError
from tornpay.protocol.v3.client import V3Client
from tornpay.protocol.v3.keys import private_key_from_pem, public_key_from_pem
from tornpay.protocol.v3.signing import parse_authorization, request_message, rsa_verify
from tornpay.protocol.v3.verify import WeChatPayKeys

MERCHANT = private_key_from_pem(V.MERCHANT_KEY.encode())
MERCHANT_PUBLIC = public_key_from_pem(V.MERCHANT_PUBLIC.encode())
V5A = {"Wechatpay-Nonce": "C5E6F7A8B9C0D1E2F3A4B5C6D7E8F901", "Wechatpay-Timestamp": "1735689601",
       "Wechatpay-Signature": V.SIG_V5a, "Wechatpay-Serial": V.PUB_KEY_ID,
       "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048"}
V5A_BODY = b'{"prepay_id":"wx01080000912345a1b2c3d4e5f607182900"}'
V9 = {"Wechatpay-Nonce": "N0n1C2e3F4o5R6c7E8r9T0s1L2i3S4t5", "Wechatpay-Timestamp": "1735689500",
      "Wechatpay-Signature": V.SIG_V9, "Wechatpay-Serial": V.PLATFORM_SERIAL,
      "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048"}
V5C = dict(V5A, **{"Wechatpay-Signature": V.SIG_V5c, "Wechatpay-Serial": V.PLATFORM_SERIAL})


class FakeHTTP:
    """Answers queued (code, headers, body) and keeps every request it was given."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.requests = []

    async def fetch(self, request, raise_error=False):
        self.requests.append(request)
        code, headers, body = self.answers.pop(0)
        return types.SimpleNamespace(code=code, headers=HTTPHeaders(headers), body=body,
                                     error=None)


def client(http, mode="public_key", now=1735689601):
    keys = (WeChatPayKeys(public_key=public_key_from_pem(V.WECHATPAY_PUBLIC.encode()),
                          public_key_id=V.PUB_KEY_ID) if mode == "public_key"
            else WeChatPayKeys())
    return V3Client(mchid=V.MCHID, serial_no=V.MERCHANT_SERIAL, private_key=MERCHANT,
                    apiv3_key=V.APIV3_KEY, keys=keys, base_url="https://api.example.test",
                    http_client=http, clock=lambda: now)


def gateway(http, **kw):
    settings = types.SimpleNamespace(wechat=types.SimpleNamespace(appid=V.APPID, mch_id=V.MCHID))
    c = client(http, **kw)
    return V3Gateway(c, settings, types.SimpleNamespace(private_key=MERCHANT,
                                                        apiv3_key=V.APIV3_KEY))


def check_signed(request, target, body=b""):
    items = parse_authorization(request.headers["Authorization"])
    message = request_message(request.method, target, items["timestamp"], items["nonce_str"],
                              body)
    assert rsa_verify(MERCHANT_PUBLIC, message, items["signature"])
    assert items["serial_no"] == V.MERCHANT_SERIAL and items["timestamp"] == "1735689601"


@pytest.mark.gen_test
async def test_v1_body_is_sent_signed_and_v5a_reply_verified():
    http = FakeHTTP((200, V5A, V5A_BODY))
    reply = await client(http).call("POST", "/v3/pay/transactions/jsapi", V.V1_BODY)
    assert reply.data == {"prepay_id": V.PREPAY_ID}
    sent = http.requests[0]
    assert sent.body == V.V1_BODY and sent.headers["Wechatpay-Serial"] == V.PUB_KEY_ID
    check_signed(sent, "/v3/pay/transactions/jsapi", V.V1_BODY)


@pytest.mark.gen_test
@pytest.mark.parametrize("headers,body", [
    (dict(V5A, **{"Wechatpay-Signature": V.SIG_V5d}), V5A_BODY),  # probe: never trusted
    (V5A, V5A_BODY.replace(b"wx01", b"wx02")),
    (dict(V5A, **{"Wechatpay-Signature": V.SIG_V5c}), V5A_BODY),
])
async def test_unverified_replies_raise(headers, body):
    with pytest.raises(ResponseSignatureError):
        await client(FakeHTTP((200, headers, body))).call("GET", "/v3/x")


@pytest.mark.gen_test
async def test_certificate_mode_fetches_v9_then_verifies_v5c():
    http = FakeHTTP((200, V9, V.V9_BODY), (200, V5C, V5A_BODY))
    c = client(http, mode="certificate", now=1735689601)
    reply = await c.call("POST", "/v3/pay/transactions/jsapi", V.V1_BODY)
    assert reply.data["prepay_id"] == V.PREPAY_ID
    assert [r.url for r in http.requests] == ["https://api.example.test/v3/certificates",
                                              "https://api.example.test/v3/pay/transactions/jsapi"]
    assert [cert.serial_no for cert in c.keys.certificates()] == [V.PLATFORM_SERIAL]


@pytest.mark.gen_test
async def test_gateway_query_close_and_error_codes():
    tx = json.dumps({"appid": V.APPID, "mchid": V.MCHID, "out_trade_no": "20250101080000000123",
                     "trade_state": "SUCCESS", "transaction_id": "4200002503202501015412345678",
                     "success_time": "2025-01-01T08:01:10+08:00", "bank_type": "OTHERS",
                     "amount": {"total": 1, "payer_total": 1}}).encode()
    from tornpay.simulator.v3.keys import V3SimKeys  # signs like WeChat, with V's keys here
    signer = V3SimKeys(wechatpay_key=private_key_from_pem(V.WECHATPAY_KEY.encode()),
                       pub_key_id=V.PUB_KEY_ID, clock=lambda: 1735689601)
    http = FakeHTTP((200, signer.sign_headers(tx), tx), (204, signer.sign_headers(b""), b""),
                    (404, {}, b'{"code":"ORDER_NOT_EXIST","message":"no"}'),
                    (500, {}, b'{"code":"SYSTEM_ERROR","message":"busy"}'), (502, {}, b"<html>"))
    gw = gateway(http)
    result = await gw.order_query("20250101080000000123")
    assert result == {"out_trade_no": "20250101080000000123", "trade_state": "SUCCESS",
                      "total_fee": 1, "transaction_id": "4200002503202501015412345678",
                      "time_end": "20250101080110", "bank_type": "OTHERS", "cash_fee": 1}
    check_signed(http.requests[0], "/v3/pay/transactions/out-trade-no/20250101080000000123"
                                   "?mchid=1900000109")
    await gw.close_order("20250101080000000123")  # a signed 204
    check_signed(http.requests[1], "/v3/pay/transactions/out-trade-no/20250101080000000123/close",
                 b'{"mchid":"1900000109"}')
    with pytest.raises(BusinessError) as err:
        await gw.order_query("X1234567")
    assert err.value.err_code == "ORDERNOTEXIST" and not err.value.retryable
    with pytest.raises(BusinessError) as err:
        await gw.order_query("X1234567")
    assert err.value.err_code == "SYSTEMERROR" and err.value.retryable
    with pytest.raises(TransportError):
        await gw.order_query("X1234567")


def test_pay_params_reproduce_v6():
    order = types.SimpleNamespace(prepay_id=V.PREPAY_ID, sign_type="RSA")
    params = gateway(FakeHTTP()).pay_params(order, "1735689605",
                                            "e61463f8efa94090b1f366cccfbbb444")
    assert params == {"appId": V.APPID, "timeStamp": "1735689605",
                      "nonceStr": "e61463f8efa94090b1f366cccfbbb444",
                      "package": "prepay_id=" + V.PREPAY_ID, "signType": "RSA",
                      "paySign": V.SIG_V6}


def test_prepay_request_in_v3_shape():
    text = gateway(FakeHTTP()).prepare_prepay({
        "body": "示例商城-会员充值", "out_trade_no": "20250101080000000123", "total_fee": 1,
        "time_expire": "20250101100000", "attach": "shop=sz01", "trade_type": "JSAPI",
        "notify_url": "https://merchant.example.com/wxpay/v3/notify",
        "openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "spbill_create_ip": "1.2.3.4"}, "RSA")
    path, body = text.split("\n", 1)
    assert path == "/v3/pay/transactions/jsapi"
    assert body.encode() == V.V1_BODY  # byte for byte the reference's V1 body


@pytest.mark.gen_test
async def test_tradebill_downloads_and_checks_v10_hash():
    info = json.dumps({"hash_type": "SHA1", "hash_value": V.BILL_SHA1,
                       "download_url": "https://api.example.test/v3/billdownload/file?"
                                       "token=TESTTOKEN0123456789"}).encode()
    from tornpay.simulator.v3.keys import V3SimKeys
    signer = V3SimKeys(wechatpay_key=private_key_from_pem(V.WECHATPAY_KEY.encode()),
                       pub_key_id=V.PUB_KEY_ID, clock=lambda: 1735689601)
    packed = gzip.compress(V.BILL, mtime=0)
    assert len(packed) == 501  # V10: hash_value is over the uncompressed bytes
    http = FakeHTTP((200, signer.sign_headers(info), info), (200, {}, V.BILL),
                    (200, signer.sign_headers(info), info), (200, {}, packed),
                    (200, signer.sign_headers(info), info), (200, {}, V.BILL + b"x"))
    source = V3TradeBill(gateway(http))
    assert await source.fetch(datetime.date(2025, 1, 1)) == V.BILL
    assert await source.fetch(datetime.date(2025, 1, 1)) == packed
    check_signed(http.requests[1], "/v3/billdownload/file?token=TESTTOKEN0123456789")
    from tornpay.bills.source import BillUnavailable
    with pytest.raises(BillUnavailable):
        await source.fetch(datetime.date(2025, 1, 1))
