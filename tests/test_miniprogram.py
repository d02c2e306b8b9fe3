"""Mini Program payments end to end against the simulator; signatures checked by wechatpy."""

import json
import logging

import pytest
from wechatpy.pay.utils import calculate_signature, calculate_signature_hmac

from api_helpers import MINI_APPID, MINI_OVERRIDES, MINI_SECRET, ApiBrowser, error_code
from conftest import TEST_API_KEY, merge
from flow_helpers import ALICE, BOB, notify_fields, signed_notify, wait_for
from tornpay.storage.models import Event, Order

REQUEST_PAYMENT = ("timeStamp", "nonceStr", "package", "signType", "paySign")


class Paid:
    """A plugin counting on_paid per order."""

    def __init__(self):
        self.paid = []

    def on_paid(self, order):
        self.paid.append(order.out_trade_no)


@pytest.fixture
def tp_overrides():
    return MINI_OVERRIDES


@pytest.fixture
def paid_plugin(ctx):
    plugin = Paid()
    ctx.hooks.register(plugin, name="test-paid")
    return plugin


class MiniProgram:
    """Plays the Mini Program: wx.login, wx.request to tornpay, wx.requestPayment."""

    def __init__(self, http_client, base_url):
        self.http_client, self.base_url = http_client, base_url
        self.api = ApiBrowser(http_client, base_url)  # no cookies are ever set on it
        self.token = None

    async def sim(self, path, data):
        response = await self.http_client.fetch(self.base_url + "/_sim" + path, method="POST",
                                                body=json.dumps(data), raise_error=False)
        return json.loads(response.body)

    async def login(self, openid=ALICE, appid=MINI_APPID):
        answer = await self.sim("/miniprogram/login", {"appid": appid, "openid": openid})
        assert answer["ok"], answer
        return answer["code"]

    async def request_payment(self, params, action="pay", appid=MINI_APPID):
        return await self.sim("/miniprogram/requestPayment",
                              {"appid": appid, "params": params, "action": action})

    async def call(self, method, path, data=None):
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return await self.api.api(method, path, data, xsrf=False, headers=headers)


def wechatpy_sign(params, sign_type):
    """wechatpy's own paySign over wx.requestPayment's fields plus the Mini Program's appId."""
    fields = dict({k: v for k, v in params.items() if k != "paySign"}, appId=MINI_APPID)
    if sign_type == "HMAC-SHA256":
        return calculate_signature_hmac(fields, TEST_API_KEY)
    return calculate_signature(fields, TEST_API_KEY)


@pytest.mark.parametrize("tp_overrides", [
    merge(MINI_OVERRIDES, {"wechat": {"sign_type": sign_type}})
    for sign_type in ("MD5", "HMAC-SHA256")])
@pytest.mark.gen_test(timeout=30)
async def test_miniprogram_pays_end_to_end(http_client, base_url, ctx, paid_plugin, caplog):
    for name in ("tornpay", "tornado"):  # curl's and tornpay's DEBUG lines too
        caplog.set_level(logging.DEBUG, logger=name)
    mini = MiniProgram(http_client, base_url)
    code = await mini.login()
    status, answer = await mini.call("POST", "/orders", {"product_id": "coach-205", "code": code})
    assert status == 201, answer
    assert (answer["trade_type"], answer["total_fee"]) == ("MINIPROGRAM", 9900)
    params = answer["pay_params"]
    assert tuple(sorted(params)) == tuple(sorted(REQUEST_PAYMENT))
    sign_type = ctx.settings.wechat.sign_type
    assert params["signType"] == sign_type and params["paySign"] == wechatpy_sign(params,
                                                                                    sign_type)
    row = Order.get_by_id(answer["out_trade_no"])
    assert (row.appid, row.openid, row.trade_type) == (MINI_APPID, ALICE, "JSAPI")
    assert f"<appid><![CDATA[{MINI_APPID}]]></appid>" in row.unified_request
    sim_order = ctx.simulator.find_order(row.out_trade_no)
    assert sim_order.appid == MINI_APPID

    # A used code is refused by WeChat with its own code; nothing is created.
    status, reused = await mini.call("POST", "/orders", {"product_id": "coach-101",
                                                         "code": code})
    assert (status, error_code(reused), reused["error"]["wechat_code"]) == (
        502, "wechat_error", "40163")
    # Tampered parameters or another appid: the payment fails, as in WeChat.
    forged = dict(params, paySign="0" * len(params["paySign"]))
    assert not (await mini.request_payment(forged))["ok"]
    assert not (await mini.request_payment(params, appid=ctx.settings.wechat.appid))["ok"]
    cancelled = await mini.request_payment(params, action="cancel")
    assert cancelled["errMsg"] == "requestPayment:fail cancel"

    paid = await mini.request_payment(params)
    assert paid["ok"] and paid["errMsg"] == "requestPayment:ok"
    mini.token = answer["payer_token"]

    async def is_paid():
        _, order = await mini.call("GET", "/orders/" + row.out_trade_no)
        return order["state"] == "PAID"
    await wait_for(is_paid, timeout=10)
    await wait_for(lambda: paid_plugin.paid == [row.out_trade_no], timeout=10)
    assert Event.select().where(Event.out_trade_no == row.out_trade_no,
                                Event.hook == "on_paid").count() == 1
    # The session key and the secret never reach a log line, nor the response.
    assert "SIMSESSION" not in caplog.text and MINI_SECRET not in caplog.text
    assert "session" not in json.dumps(answer).replace("payer_token", "")
    assert "jscode2session" in caplog.text  # the exchange was logged, without them


@pytest.mark.gen_test(timeout=30)
async def test_payer_token_owns_its_orders_only(http_client, base_url):
    alice, bob = MiniProgram(http_client, base_url), MiniProgram(http_client, base_url)
    _, first = await alice.call("POST", "/orders", {"product_id": "coach-101",
                                                    "code": await alice.login()})
    _, second = await bob.call("POST", "/orders", {"product_id": "coach-101",
                                                   "code": await bob.login(BOB)})
    alice.token, bob.token = first["payer_token"], second["payer_token"]
    status, refused = await bob.call("GET", "/orders/" + first["out_trade_no"])
    assert (status, error_code(refused)) == (403, "not_owner")
    status, refused = await bob.call("POST", f"/orders/{first['out_trade_no']}/cancel")
    assert (status, error_code(refused)) == (403, "not_owner")
    # A second order with the token alone (no new wx.login), and cancel needs no XSRF.
    status, again = await alice.call("POST", "/orders", {"product_id": "coach-205"})
    assert status == 201 and again["trade_type"] == "MINIPROGRAM"
    status, cancelled = await alice.call("POST", f"/orders/{first['out_trade_no']}/cancel")
    assert status == 200 and cancelled["state"] == "CLOSED"
    alice.token = alice.token[:-3] + "AAA"
    status, refused = await alice.call("GET", "/orders/" + first["out_trade_no"])
    assert (status, error_code(refused)) == (401, "not_signed_in")


@pytest.mark.gen_test(timeout=30)
async def test_code_errors_come_from_jscode2session(http_client, base_url, ctx):
    mini = MiniProgram(http_client, base_url)
    status, answer = await mini.call("POST", "/orders", {"product_id": "coach-101",
                                                         "code": "never-issued"})
    assert (status, answer["error"]["wechat_code"]) == (502, "40029")
    # A web OAuth code is no wx.login code; an expired code is refused too.
    oauth = await mini.sim("/control/oauth/code", {"appid": ctx.settings.wechat.appid,
                                                   "openid": ALICE})
    status, answer = await mini.call("POST", "/orders", {"product_id": "coach-101",
                                                         "code": oauth["code"]})
    assert answer["error"]["wechat_code"] == "40029"
    code = await mini.login()
    await mini.sim("/control/clock", {"advance": 301})
    status, answer = await mini.call("POST", "/orders", {"product_id": "coach-101",
                                                         "code": code})
    assert answer["error"]["wechat_code"] == "40029"
    assert Order.select().count() == 0


@pytest.mark.gen_test(timeout=30)
async def test_notify_checked_against_the_orders_appid(http_client, base_url, ctx):
    mini = MiniProgram(http_client, base_url)
    _, answer = await mini.call("POST", "/orders", {"product_id": "coach-101",
                                                    "code": await mini.login()})
    row = Order.get_by_id(answer["out_trade_no"])
    sign_type = ctx.settings.wechat.sign_type
    for appid, ok in ((ctx.settings.wechat.appid, False), (MINI_APPID, True)):
        body = signed_notify(notify_fields(row, appid=appid), TEST_API_KEY, sign_type)
        response = await http_client.fetch(base_url + "/wxpay/notify", method="POST", body=body)
        assert (b"SUCCESS" in response.body) is ok
        assert (Order.get_by_id(row.out_trade_no).state == "PAID") is ok


@pytest.mark.parametrize("tp_overrides", [merge(MINI_OVERRIDES, {
    "orders": {"min_close_age_seconds": 0}, "simulator": {"close_min_age_seconds": 0}})])
@pytest.mark.gen_test(timeout=30)
async def test_query_close_and_refund_use_the_orders_appid(http_client, base_url, ctx,
                                                           monkeypatch):
    from tornpay.orders import admin
    from tornpay.orders.refunds import request_refund
    from tornpay.protocol.xmlcodec import decode_xml

    sent = []
    real = ctx.pay_client._fetch

    async def spy(path, body):
        sent.append((path, decode_xml(body)["appid"]))
        return await real(path, body)

    monkeypatch.setattr(ctx.pay_client, "_fetch", spy)
    mini = MiniProgram(http_client, base_url)
    _, first = await mini.call("POST", "/orders", {"product_id": "coach-205",
                                                   "code": await mini.login()})
    _, second = await mini.call("POST", "/orders", {"product_id": "coach-101",
                                                    "code": await mini.login()})
    await mini.request_payment(first["pay_params"])
    assert await admin.query_order(ctx, first["out_trade_no"]) == "SUCCESS"
    refund = await request_refund(ctx, first["out_trade_no"], 100)
    assert refund.state in ("PROCESSING", "SUCCESS")
    assert await admin.close_order(ctx, second["out_trade_no"]) == "CLOSED"
    paths = [path for path, _ in sent]
    assert {"/pay/orderquery", "/secapi/pay/refund", "/pay/closeorder"} <= set(paths)
    assert {appid for _, appid in sent} == {MINI_APPID}


@pytest.mark.gen_test(timeout=30)
async def test_a_payer_pays_only_its_own_kind_of_order(http_client, base_url, tp_settings):
    mini = MiniProgram(http_client, base_url)
    _, first = await mini.call("POST", "/orders", {"product_id": "coach-101",
                                                   "code": await mini.login()})
    mini.token = first["payer_token"]
    # A Mini Program's openid is no Official Account openid: no JSAPI order with it.
    status, refused = await mini.call("POST", "/orders", {"product_id": "coach-205",
                                                          "trade_type": "JSAPI"})
    assert (status, error_code(refused)) == (400, "invalid_request")
    browser = ApiBrowser(http_client, base_url)
    browser.set_openid(tp_settings, ALICE)
    await browser.session()
    status, refused = await browser.api("POST", "/orders", {"product_id": "coach-205",
                                                            "trade_type": "MINIPROGRAM"})
    assert (status, error_code(refused)) == (400, "invalid_request")
    assert Order.select().count() == 1


@pytest.mark.parametrize("api_version", ["v3"])
@pytest.mark.gen_test(timeout=30)
async def test_miniprogram_on_api_v3_is_rsa_signed(http_client, base_url, ctx, api_version,
                                                   paid_plugin):
    import base64
    import os

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    import tornpay.simulator as sim_pkg

    mini = MiniProgram(http_client, base_url)
    status, answer = await mini.call("POST", "/orders", {"product_id": "coach-205",
                                                         "code": await mini.login()})
    assert status == 201, answer
    params = answer["pay_params"]
    assert tuple(sorted(params)) == tuple(sorted(REQUEST_PAYMENT)) and params["signType"] == "RSA"
    row = Order.get_by_id(answer["out_trade_no"])
    assert (row.api_version, row.appid) == ("v3", MINI_APPID)
    assert f'"appid":"{MINI_APPID}"' in row.unified_request.replace(" ", "")
    # An independent check: SHA256withRSA over the Mini Program's appId and the four lines.
    cert_path = os.path.join(os.path.dirname(sim_pkg.__file__), "testcerts",
                             "TEST-ONLY-merchant-10000100-cert.pem")
    with open(cert_path, "rb") as f:
        public_key = x509.load_pem_x509_certificate(f.read()).public_key()
    message = "".join(f"{part}\n" for part in (MINI_APPID, params["timeStamp"],
                                                params["nonceStr"], params["package"]))
    public_key.verify(base64.b64decode(params["paySign"]), message.encode(),
                      padding.PKCS1v15(), hashes.SHA256())
    paid = await mini.request_payment(params)
    assert paid["ok"], paid
    await wait_for(lambda: paid_plugin.paid == [row.out_trade_no], timeout=10)
    assert Order.get_by_id(row.out_trade_no).state == "PAID"
