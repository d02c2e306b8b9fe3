"""The standalone simulator plays NATIVE and MWEB; wechatpy checks its replies and notifies."""

import json
import re
from urllib.parse import quote, urlencode, urlsplit

import pytest
import xmltodict
from wechatpy.pay.utils import calculate_signature, calculate_signature_hmac

from sim_helpers import (  # noqa: F401  (fixtures)
    API_KEY, app, box, signed, sim, sim_config, state, wait_for,
)
from tornpay.protocol.sign import HMAC_SHA256, MD5

WECHATPY = {MD5: calculate_signature, HMAC_SHA256: calculate_signature_hmac}
SCENE = json.dumps({"h5_info": {"type": "Wap", "wap_url": "http://127.0.0.1",
                                "wap_name": "示例商城"}}, ensure_ascii=False, separators=(",", ":"))
BOB = "oUpF8uN95-Ptaags6E_roPHg7AG0"


def genuine(fields, sign_type):
    """wechatpy's own signature over every field but sign (it never sees our decoder)."""
    rest = {k: v for k, v in fields.items() if k != "sign"}
    return fields["sign"] == WECHATPY[sign_type](rest, API_KEY)


async def unified(sim, trade_type, sign_type):
    extra = ({"product_id": "VIP-12M"} if trade_type == "NATIVE" else {"scene_info": SCENE})
    params = sim.order_params(trade_type=trade_type, openid=None, **extra)
    reply = await sim.raw("/pay/unifiedorder", signed(params, API_KEY, sign_type))
    fields = {k: (v or "") for k, v in dict(xmltodict.parse(reply.body)["xml"]).items()}
    assert fields["result_code"] == "SUCCESS", fields
    assert genuine(fields, sign_type) and fields["trade_type"] == trade_type
    return params, fields


async def last_notify(sim):
    await wait_for(lambda: sim.box.received)
    raw = sim.box.received[-1][1]
    return {k: (v or "") for k, v in dict(xmltodict.parse(raw)["xml"]).items()}


@pytest.mark.parametrize("sign_type", [MD5, HMAC_SHA256])
@pytest.mark.gen_test
async def test_native_code_url_scan_pay_and_notify(sim, sign_type):
    params, reply = await unified(sim, "NATIVE", sign_type)
    code_url = reply["code_url"]
    assert re.fullmatch(r"weixin://wxpay/bizpayurl\?pr=[A-Za-z0-9]{9}", code_url)
    # Re-entry with the same parameters: the same live code.
    again = await sim.raw("/pay/unifiedorder", signed(params, API_KEY, sign_type))
    assert xmltodict.parse(again.body)["xml"]["code_url"] == code_url
    listed = await sim.raw("/scan", b"", method="GET")
    assert code_url in listed.body.decode()
    page = await sim.raw(f"/scan?code_url={quote(code_url)}&user={BOB}", b"", method="GET")
    assert 'id="tornpay-sim-cashier"' in page.body.decode()
    other = await sim.raw(f"/scan?code_url={quote(code_url)}", b"", method="GET")
    assert "商家订单信息有误，请重新下单支付" in other.body.decode()  # a second WeChat user
    paid = await sim.raw("/scan", urlencode({"code_url": code_url, "user": BOB,
                                             "action": "pay"}).encode())
    assert 'data-paid="yes"' in paid.body.decode()
    notify = await last_notify(sim)
    assert genuine(notify, sign_type)
    assert (notify["trade_type"], notify["openid"], notify["out_trade_no"]) == (
        "NATIVE", BOB, params["out_trade_no"])
    sim.state.advance(2 * 3600)
    expired = await sim.raw(f"/scan?code_url={quote(code_url)}&user={BOB}", b"", method="GET")
    assert "二维码已过期，请重新生成" in expired.body.decode()


@pytest.mark.parametrize("sign_type", [MD5, HMAC_SHA256])
@pytest.mark.gen_test
async def test_mweb_cashier_checks_then_pays_and_returns(sim, sign_type):
    params, reply = await unified(sim, "MWEB", sign_type)
    mweb = urlsplit(reply["mweb_url"])
    assert mweb.path == "/cgi-bin/mmpayweb-bin/checkmweb"
    assert re.fullmatch(r"prepay_id=wx\w+&package=\d{10}", mweb.query)
    back = "http://127.0.0.1/wxpay/orders/x/result"
    path = f"{mweb.path}?{mweb.query}&redirect_url={quote(back, safe='')}"
    fetch = sim.client.fetch
    url = sim.base + path

    async def get(**headers):
        response = await fetch(url, headers=headers, raise_error=False)
        return response.body.decode()
    assert "商家参数格式有误，请联系商家解决" in await get()
    assert "商家存在未配置的参数，请联系商家解决" in await get(Referer="http://evil.example/")
    assert "请在微信外打开订单，进行支付" in await get(Referer="http://127.0.0.1/",
                                                 **{"User-Agent": "MicroMessenger/8.0"})
    assert 'id="tornpay-sim-cashier"' in await get(Referer="http://127.0.0.1/")
    paid = await fetch(sim.base + mweb.path, method="POST", follow_redirects=False,
                       raise_error=False, body=urlencode({
                           "prepay_id": re.search(r"prepay_id=(\w+)", mweb.query).group(1),
                           "package": mweb.query.rsplit("=", 1)[1], "redirect_url": back,
                           "user": BOB, "action": "pay"}))
    assert paid.code == 302 and paid.headers["Location"] == back
    notify = await last_notify(sim)
    assert genuine(notify, sign_type) and notify["trade_type"] == "MWEB"
    sim.state.advance(301)
    assert "支付请求已失效，请重新发起支付" in await get(Referer="http://127.0.0.1/")


@pytest.mark.gen_test
async def test_native_without_product_id_and_mweb_without_scene_info_are_refused(sim):
    for over in ({"trade_type": "NATIVE", "openid": None},
                 {"trade_type": "MWEB", "openid": None, "scene_info": "{not json"}):
        reply = await sim.api("/pay/unifiedorder", sim.order_params(**over))
        assert reply["result_code"] == "FAIL" and reply["err_code"] in (
            "LACK_PARAMS", "INVALID_REQUEST"), reply


def test_native_code_urls_per_order_alive_then_renewed(io_loop):
    from sim_helpers import make_config
    from tornpay.simulator import h5native
    from tornpay.simulator.records import Order
    from tornpay.simulator.state import SimulatorState

    state = SimulatorState(make_config())

    def order(no):
        return Order(mch_id="10000100", appid="wx", out_trade_no=no, request={}, sign_type=MD5,
                     created_at=state.now(), total_fee=1, openid="", notify_url="",
                     body="b", trade_type="NATIVE")

    first = h5native.reply_fields(state, order("A"), {}, "")["code_url"]
    others = {h5native.reply_fields(state, order(f"B{i}"), {}, "")["code_url"]
              for i in range(50)}
    # Each order has its own code; re-entry (after many others) finds its live one.
    assert first not in others and len(others) == 50
    assert h5native.reply_fields(state, order("A"), {}, "")["code_url"] == first
    state.advance(h5native.CODE_URL_TTL)
    renewed = h5native.reply_fields(state, order("A"), {}, "")["code_url"]
    assert renewed != first
    assert h5native.reply_fields(state, order("A"), {}, "")["code_url"] == renewed
    io_loop.run_sync(state.aclose)
