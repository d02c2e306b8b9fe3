"""Simulator mounted under /_sim: OAuth, access_token, bridge script, cashier, dashboard."""

import asyncio
import json
import socket
import types
from urllib.parse import parse_qs, urlsplit

import pytest
import tornado.web
from tornado.httpclient import AsyncHTTPClient

from sim_helpers import (  # noqa: F401  (fixtures)
    API_KEY, APP_SECRET, APPID, OPENID, Box, Receiver, Sim, box, make_config, state, wait_for,
)
from tornpay.protocol.sign import HMAC_SHA256, make_sign
from tornpay.simulator.app import run_simulator, simulator_routes
from tornpay.simulator.config import SimulatorConfig


@pytest.fixture
def sim_config(http_port):
    # The merchant's pages are on 127.0.0.1; its OAuth callbacks on shop.example.
    return make_config(pay_directories=[f"http://127.0.0.1:{http_port}/shop/pay/"],
                       oauth_domains=["shop.example"])


@pytest.fixture
def app(state, box):
    routes = simulator_routes(state, prefix="/_sim")
    routes.append((r"/_sim/merchant/(\w+)", Receiver, {"box": box}))
    return tornado.web.Application(routes)


@pytest.fixture
def sim(http_client, http_port, state, box):
    return Sim(http_client, f"http://127.0.0.1:{http_port}/_sim", state, box)


async def get(sim, path, **kwargs):
    return await sim.client.fetch(sim.base + path, raise_error=False, follow_redirects=False,
                                  **kwargs)


def authorize_path(redirect_uri="https://shop.example/cb", state="s1", **over):
    query = {"appid": APPID, "redirect_uri": redirect_uri, "response_type": "code",
             "scope": "snsapi_base", "state": state}
    query.update(over)
    from urllib.parse import urlencode
    query = {k: v for k, v in query.items() if v is not None}
    return "/connect/oauth2/authorize?" + urlencode(query)


async def token(sim, code, appid=APPID, secret=APP_SECRET, grant_type="authorization_code"):
    from urllib.parse import urlencode
    params = {"appid": appid, "secret": secret, "code": code, "grant_type": grant_type}
    response = await get(sim, "/sns/oauth2/access_token?" + urlencode(
        {k: v for k, v in params.items() if v is not None}))
    assert response.code == 200
    return json.loads(response.body)


# -- OAuth -------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_authorize_page_lists_test_users_without_secrets(sim):
    page = await get(sim, authorize_path())
    text = page.body.decode()
    assert page.code == 200 and "SIMULATOR" in text
    assert f'data-openid="{OPENID}"' in text and "Alice" in text
    assert APP_SECRET not in text and API_KEY not in text


@pytest.mark.gen_test
@pytest.mark.parametrize("redirect_uri,state_arg,expected_query", [
    ("https://shop.example/cb", "s1", None),
    ("https://shop.example/cb?next=%2Fo%2F1", "s1", "next"),
    ("https://shop.example/cb", None, None),
])
async def test_choosing_a_user_redirects_with_code_and_state(sim, redirect_uri, state_arg,
                                                             expected_query):
    response = await get(sim, authorize_path(redirect_uri, state_arg, sim_user=OPENID))
    assert response.code == 302
    target = urlsplit(response.headers["Location"])
    assert (target.scheme, target.netloc, target.path) == ("https", "shop.example", "/cb")
    query = parse_qs(target.query)
    assert target.query.count("?") == 0
    assert len(query["code"][0]) == 32
    assert query.get("state") == ([state_arg] if state_arg else None)
    if expected_query:
        assert query[expected_query] == ["/o/1"]
    reply = await token(sim, query["code"][0])
    assert reply["openid"] == OPENID and reply["expires_in"] == 7200
    assert reply["scope"] == "snsapi_base" and reply["access_token"]


@pytest.mark.gen_test
@pytest.mark.parametrize("over", [{"appid": None}, {"appid": "wxunknown"}, {"redirect_uri": None},
                                  {"scope": "snsapi_login"}, {"response_type": "token"},
                                  {"sim_user": "o-nobody"}])
async def test_authorize_refuses_bad_links(sim, over):
    response = await get(sim, authorize_path(**over))
    assert response.code == 400


@pytest.mark.gen_test
async def test_access_token_errcodes(sim):
    code = sim.state.issue_code(APPID, OPENID)
    assert (await token(sim, code, appid="wxnope"))["errcode"] == 40013
    assert (await token(sim, code, secret="wrong"))["errcode"] == 40125
    assert (await token(sim, code, grant_type="client_credential"))["errcode"] == 40002
    assert (await token(sim, None))["errcode"] == 41008
    assert (await token(sim, "no-such-code"))["errcode"] == 40029
    assert (await token(sim, code))["openid"] == OPENID
    used = await token(sim, code)
    assert used["errcode"] == 40163 and used["errmsg"].startswith("code been used")
    stale = sim.state.issue_code(APPID, OPENID)
    sim.state.advance(301)  # codes live 5 minutes
    assert (await token(sim, stale))["errcode"] == 40029
    status, body = await sim.control("oauth/code", {"appid": APPID, "openid": OPENID})
    assert status == 200 and (await token(sim, body["code"]))["openid"] == OPENID


@pytest.mark.gen_test
async def test_auto_user_skips_the_page(sim):
    sim.state.config.oauth_auto_user = OPENID
    response = await get(sim, authorize_path())
    assert response.code == 302 and "code=" in response.headers["Location"]


# -- bridge and cashier ------------------------------------------------------------------


def jsapi(order, sign_type="MD5", key=API_KEY, **over):
    params = {"appId": APPID, "timeStamp": "1717216245", "nonceStr": "e61463f8",
              "package": "prepay_id=" + order["prepay_id"], "signType": sign_type}
    params.update(over)
    params["paySign"] = make_sign({k: params[k] for k in
                                   ("appId", "timeStamp", "nonceStr", "package", "signType")},
                                  key, params["signType"])
    return params


async def cashier(sim, action, params, href=None):
    base = sim.base.rsplit("/_sim", 1)[0]
    body = json.dumps({"params": params})
    response = await sim.client.fetch(
        sim.base + "/cashier/" + action, method="POST", body=body,
        headers={"Origin": "http://other.example",
                 "Referer": href or base + "/shop/pay/T1?x=1#top"})
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    return json.loads(response.body)


@pytest.mark.gen_test
async def test_bridge_script_points_at_the_cashier(sim):
    # Issue 14 item 1 / issue 20 item 8: never the request's Host header.
    response = await get(sim, "/jsbridge.js", headers={"Host": "evil.example:1"})
    text = response.body.decode()
    assert response.code == 200 and "javascript" in response.headers["Content-Type"]
    assert "evil.example" not in text and "__CASHIER_URL__" not in text
    assert "var CASHIER = null;" in text  # unconfigured: next to the script's own URL
    sim.state.config.public_url = "https://shop.example/_sim"
    text = (await get(sim, "/jsbridge.js", headers={"Host": "evil.example:1"})).body.decode()
    assert 'var CASHIER = "https://shop.example/_sim/cashier";' in text
    assert "evil.example" not in text
    for needle in ("WeixinJSBridgeReady", "getBrandWCPayRequest", "tornpay-sim-pay",
                   "tornpay-sim-cancel", "get_brand_wcpay_request:"):
        assert needle in text


@pytest.mark.gen_test
async def test_cashier_pays_a_valid_request_and_notifies(sim):
    order = await sim.order()
    checked = await cashier(sim, "check", jsapi(order))
    assert checked == {"ok": True, "order": {"out_trade_no": order["out_trade_no"],
                                             "body": "Coaching-1h", "total_fee": 100}}
    assert sim.state.find_order(order["out_trade_no"]).trade_state == "NOTPAY"
    paid = await cashier(sim, "pay", jsapi(order))
    assert paid["ok"] is True
    await wait_for(lambda: len(sim.box.bodies("pay")) == 1)
    again = await cashier(sim, "pay", jsapi(order))
    assert again == {"ok": False, "err_desc": "该订单已支付"}


@pytest.mark.gen_test
async def test_cashier_hmac_order_needs_hmac_paysign(sim):
    reply = await sim.api("/pay/unifiedorder", sim.order_params(), sign_type=HMAC_SHA256)
    order = {"prepay_id": reply["prepay_id"]}
    assert (await cashier(sim, "check", jsapi(order, HMAC_SHA256)))["ok"] is True
    wrong_type = await cashier(sim, "check", jsapi(order, "MD5"))
    assert not wrong_type["ok"] and "支付验证签名失败" in wrong_type["err_desc"]


@pytest.mark.gen_test
async def test_cashier_refusals(sim):
    order = await sim.order()
    base = sim.base.rsplit("/_sim", 1)[0]

    async def refused(params, href=None):
        reply = await cashier(sim, "pay", params, href)
        assert reply["ok"] is False
        return reply["err_desc"]

    for href in (base + "/shop/pay/sub/T1", base + "/shop/T1", base + "/shop/pay",
                 "http://evil.example/shop/pay/T1"):
        assert (await refused(jsapi(order), href)).startswith("当前页面的URL未注册")
    # The page URL comes from the browser's Referer, not from what the script posts.
    response = await sim.client.fetch(
        sim.base + "/cashier/pay", method="POST",
        body=json.dumps({"params": jsapi(order), "href": base + "/shop/pay/T1"}))
    assert json.loads(response.body) == {"ok": False, "err_desc": "当前页面的URL未注册：(no Referer)"}
    assert await refused(jsapi(order, key="k" * 32)) == "支付验证签名失败"
    forged = dict(jsapi(order), timeStamp="1717216246")  # changed after signing
    assert await refused(forged) == "支付验证签名失败"
    assert await refused(jsapi(order, appId="wx0000000000000000")) == "调用支付JSAPI缺少参数：total_fee"
    assert await refused(jsapi(order, package="prepay_id=wxnope")) == "调用支付JSAPI缺少参数：total_fee"
    assert await refused(jsapi(order, package=order["prepay_id"])) == "package参数错误"
    assert "timeStamp" in await refused(jsapi(order, timeStamp="1717216245000"))
    missing = jsapi(order)
    del missing["paySign"]
    assert await refused(missing) == "调用支付JSAPI缺少参数：paySign"
    sim.state.advance(2 * 3600 + 1)  # the prepay_id died
    assert await refused(jsapi(order)) == "调用支付JSAPI缺少参数：total_fee"
    assert sim.state.find_order(order["out_trade_no"]).trade_state == "NOTPAY"


@pytest.mark.gen_test
async def test_cashier_preflight_and_bad_json(sim):
    response = await sim.client.fetch(sim.base + "/cashier/pay", method="OPTIONS",
                                      allow_nonstandard_methods=True)
    assert response.code == 204
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    bad = await sim.client.fetch(sim.base + "/cashier/check", method="POST", body=b"{nope")
    assert json.loads(bad.body)["ok"] is False


# -- dashboard, control listing, mounting ------------------------------------------------


@pytest.mark.gen_test
async def test_dashboard_shows_orders_and_notify_replies(sim):
    sim.box.replies = [
        b"<xml><return_code>FAIL</return_code><return_msg>db&lt;down</return_msg></xml>"]
    order = await sim.paid_order(body="<b>Coaching</b>")
    await wait_for(lambda: len(sim.box.received) == 2)
    page = (await get(sim, "/")).body.decode()
    assert "SIMULATOR" in page and order["out_trade_no"] in page
    assert "&lt;b&gt;Coaching" in page and "<b>Coaching" not in page  # escaped
    assert "db&amp;lt;down" in page  # the merchant's FAIL reply, escaped
    assert API_KEY not in page and APP_SECRET not in page
    assert (await get(sim, "")).code == 301  # /_sim -> /_sim/
    status, body = await sim.control("orders", method="GET")
    assert status == 200 and body["orders"][0]["notifies"][0]["ok"] is False
    status, body = await sim.control("state", method="GET")
    assert status == 200 and body["now"] > 0
    status, body = await sim.control("reset")
    assert status == 200 and sim.state.orders == {}


def test_config_from_settings():
    ns = types.SimpleNamespace
    settings = ns(
        server=ns(public_url="https://shop.example/", prefix="/wxpay"),
        wechat=ns(appid=APPID, app_secret=APP_SECRET, mch_id="10000100", api_key=API_KEY),
        simulator=ns(pay_directories=[]),
    )
    config = SimulatorConfig.from_settings(settings, time_scale=0.5)
    assert config.pay_directories == ["https://shop.example/wxpay/pay/"]
    assert config.merchant("10000100").appids == [APPID] and config.accounts == {APPID: APP_SECRET}
    assert config.time_scale == 0.5 and config.close_min_age_seconds == 300
    settings.simulator.pay_directories = ["https://a.example/p/"]
    assert SimulatorConfig.from_settings(settings).pay_directories == ["https://a.example/p/"]


@pytest.mark.gen_test
async def test_run_simulator_serves_alone():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    task = asyncio.ensure_future(run_simulator(make_config(), "127.0.0.1", port))
    client = AsyncHTTPClient(force_instance=True)
    try:
        for _ in range(100):
            try:
                response = await client.fetch(f"http://127.0.0.1:{port}/jsbridge.js")
                break
            except OSError:
                await asyncio.sleep(0.01)
        assert response.code == 200
        assert f"http://127.0.0.1:{port}/cashier".encode() in response.body
    finally:
        client.close()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
