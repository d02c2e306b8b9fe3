"""SPEC §9 over HTTP: NATIVE and MWEB checkouts, payer cookie, simulator scan and checkmweb."""

import html
import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from wechatpy.pay.utils import calculate_signature

from helpers_orders import RecordingPlugin
from flow_helpers import Browser, location, order_row, out_trade_no_of, wait_for
from tornpay.orders import tradetypes
from tornpay.protocol.xmlcodec import decode_xml, encode_xml
from tornpay.protocol.sign import make_sign

DESKTOP = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"
PHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
         "Mobile/15E148 Safari/604.1")
WECHAT = PHONE + " MicroMessenger/8.0.47"
NATIVE_RE = re.compile(r'<script type="application/json" id="tornpay-native">(.*?)</script>')
XSRF_RE = re.compile(r'name="_xsrf" value="([^"]+)"')
PHONE_IP = "198.51.100.23"
CHEN = "oUpF8uKtgdlYLszMjFH2Yf8DKWcw"


@pytest.fixture
def tp_overrides():
    return {"orders": {"trade_types": ["JSAPI", "NATIVE", "MWEB"]},
            "simulator": {"require_client_cert": False}}


@pytest.fixture
def browser(http_client, tp_settings):
    return Browser(http_client, tp_settings.server.public_url)


@pytest.fixture
def rec(ctx):
    plugin = RecordingPlugin()
    ctx.hooks.register(plugin, name="rec")
    return plugin


@pytest.mark.parametrize("ua, expected", [(WECHAT, "JSAPI"), (PHONE, "MWEB"), (DESKTOP, "NATIVE"),
                                          ("", "NATIVE"), ("okhttp Android 14", "MWEB")])
def test_browser_picks_the_trade_type(ua, expected):
    assert tradetypes.choose(ua, "", ["JSAPI", "NATIVE", "MWEB"]) == expected
    assert tradetypes.choose(ua, "native", ["JSAPI", "NATIVE"]) == "NATIVE"
    with pytest.raises(tradetypes.TradeTypeRefused):
        tradetypes.choose(ua, "MWEB", ["JSAPI", "NATIVE"])


async def native_order(browser):
    start = await browser.get("/wxpay/checkout/coach-205", headers={"User-Agent": DESKTOP})
    assert start.code == 303, start.body
    assert start.headers["Location"].startswith("/wxpay/pay/")  # no OAuth
    no = out_trade_no_of(location(start))
    page = await browser.get(location(start))
    assert page.code == 200, page.body
    return no, page.body.decode()


@pytest.mark.gen_test
async def test_native_checkout_shows_the_code_and_pays_by_scan(browser, http_client, ctx, rec,
                                                               tp_settings):
    no, text = await native_order(browser)
    order = order_row(no)
    assert (order.trade_type, order.openid, order.state) == ("NATIVE", "", "PREPAID")
    sent = decode_xml(order.unified_request.encode())
    assert sent["trade_type"] == "NATIVE" and sent["product_id"] == "coach-205"
    assert "openid" not in sent
    code_url = json.loads(NATIVE_RE.search(text).group(1))["code_url"]
    assert code_url == order.code_url and code_url.startswith("weixin://wxpay/bizpayurl?pr=")
    assert 'id="tornpay-qr"' in text and "data:image/svg+xml" in text
    assert "payer" in " ".join(browser.cookies)
    # Owner only: another browser gets 403 and nothing about the order.
    stranger = Browser(http_client, tp_settings.server.public_url)
    refused = await stranger.get(f"/wxpay/orders/{no}")
    assert refused.code == 403 and b"coach" not in refused.body
    assert (await stranger.get(f"/wxpay/pay/{no}")).code == 403

    scan = await browser.get(f"/_sim/scan?code_url={code_url}&user={CHEN}")
    assert scan.code == 200 and "&yen;99.00" in scan.body.decode()
    token = XSRF_RE.search(scan.body.decode()).group(1)
    paid = await browser.fetch("/_sim/scan", method="POST", body=f"_xsrf={token}&action=pay&"
                               f"code_url={code_url}&user={CHEN}")
    assert paid.code == 200 and 'data-paid="yes"' in paid.body.decode(), paid.body

    async def state():
        data = json.loads((await browser.get(f"/wxpay/orders/{no}")).body)
        return data["state"] == "PAID" and data
    data = await wait_for(state)
    assert data["trade_type"] == "NATIVE"
    await wait_for(lambda: rec.hooks_called("on_paid"))
    view = rec.hooks_called("on_paid")[0]["order"]
    assert view.trade_type == "NATIVE" and view.out_trade_no == no
    # The payer is known once WeChat says who paid: the notify's openid is kept.
    assert view.openid == CHEN and order_row(no).openid == CHEN
    # A second scan of a paid code is refused like WeChat does.
    again = await browser.get(f"/_sim/scan?code_url={code_url}")
    assert "该订单已支付" in again.body.decode()


@pytest.mark.gen_test
async def test_sim_refuses_an_expired_or_unknown_code(browser, ctx):
    no, text = await native_order(browser)
    code_url = json.loads(NATIVE_RE.search(text).group(1))["code_url"]
    unknown = await browser.get("/_sim/scan?code_url=weixin://wxpay/bizpayurl?pr=nope")
    assert "二维码已过期，请重新生成" in unknown.body.decode()
    ctx.simulator.advance(2 * 3600 + 1)
    expired = await browser.get(f"/_sim/scan?code_url={code_url}")
    assert "二维码已过期，请重新生成" in expired.body.decode()


@pytest.mark.gen_test
async def test_reconciler_pays_a_native_order_whose_notify_was_lost(browser, ctx):
    no, _ = await native_order(browser)
    sim_order = ctx.simulator.find_order(out_trade_no=no)
    sim_order.openid = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
    ctx.simulator.pay(sim_order, notify=False)
    assert await ctx.reconciler.check(no) == "SUCCESS"
    assert order_row(no).state == "PAID" and order_row(no).trade_type == "NATIVE"
    assert order_row(no).openid == "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"  # from orderquery


async def mweb_start(browser):
    start = await browser.get("/wxpay/checkout/coach-101",
                              headers={"User-Agent": PHONE, "X-Real-IP": PHONE_IP})
    assert start.code == 303, start.body
    return start.headers["Location"]


@pytest.mark.gen_test
async def test_mweb_checkout_goes_to_the_cashier_and_back(browser, ctx, tp_settings):
    mweb = await mweb_start(browser)
    parts = urlsplit(mweb)
    assert parts.path == "/_sim/cgi-bin/mmpayweb-bin/checkmweb"
    query = parse_qs(parts.query)
    result = query["redirect_url"][0]
    assert "&redirect_url=http%3A%2F%2F127.0.0.1%3A" in mweb  # percent-encoded, absolute
    no = result.rsplit("/", 2)[-2]
    assert result == f"{tp_settings.server.public_url}/wxpay/orders/{no}/result"
    order = order_row(no)
    sent = decode_xml(order.unified_request.encode())
    # The test server runs without xheaders: the payer's address is the socket's.
    assert order.trade_type == "MWEB" and sent["spbill_create_ip"] == "127.0.0.1"
    assert json.loads(sent["scene_info"]) == {"h5_info": {
        "type": "Wap", "wap_url": tp_settings.server.public_url, "wap_name": "127.0.0.1"}}
    shop = tp_settings.server.public_url + "/"
    phone = {"User-Agent": PHONE, "X-Real-IP": PHONE_IP}
    cases = [({}, "商家参数格式有误"), ({"Referer": "http://evil.example/"}, "商家存在未配置的参数"),
             ({"Referer": shop, "User-Agent": WECHAT}, "请在微信外打开订单")]
    for extra, text in cases:
        page = await browser.get(mweb, headers=dict(phone, **extra))
        assert text in page.body.decode(), extra
    cashier = await browser.get(mweb, headers=dict(phone, Referer=shop))
    body = cashier.body.decode()
    assert 'id="tornpay-sim-cashier"' in body, body
    fields = {n: html.unescape(v) for n, v in
              re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', body)}
    fields.update(action="pay")
    from urllib.parse import urlencode
    back = await browser.fetch(mweb.split("?")[0], method="POST", body=urlencode(fields),
                               headers=phone)
    assert back.code == 302 and back.headers["Location"] == result

    async def paid():
        page = await browser.get(result, headers=phone)
        return 'data-status="paid"' in page.body.decode()
    await wait_for(paid)


@pytest.mark.gen_test
async def test_mweb_return_asks_wechat_once_while_pending(browser, ctx, spy):
    mweb = await mweb_start(browser)
    result = parse_qs(urlsplit(mweb).query)["redirect_url"][0]
    asked = spy(ctx.reconciler, "check")
    for _ in range(3):
        page = await browser.get(result, headers={"User-Agent": PHONE})
        assert 'data-status="pending"' in page.body.decode()
        assert "请勿重复支付".encode() in page.body or b"do not pay twice" in page.body
    assert len(asked) == 1
    # Cancel from the result page: closed, nothing charged.
    token = XSRF_RE.search(page.body.decode()).group(1)
    no = result.rsplit("/", 2)[-2]
    done = await browser.fetch(f"/wxpay/orders/{no}/cancel", method="POST", body=f"_xsrf={token}")
    assert done.code == 303 and order_row(no).state == "CLOSED"


@pytest.mark.gen_test
async def test_disabled_trade_type_gets_a_clear_page(browser, ctx):
    ctx.settings.orders.trade_types = ["JSAPI", "NATIVE"]
    page = await browser.get("/wxpay/checkout/coach-101?trade_type=MWEB",
                             headers={"Accept-Language": "zh-CN"})
    assert page.code == 400 and "不支持此支付方式".encode() in page.body
    assert b'<html lang="zh-CN">' in page.body


@pytest.mark.gen_test
async def test_pages_follow_accept_language_then_default(browser, ctx):
    en = await browser.get("/", headers={"Accept-Language": "en-US,en;q=0.9"})
    zh = await browser.get("/", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert b'<html lang="en">' in en.body and b"Pay with WeChat" in en.body
    assert b'<html lang="zh-CN">' in zh.body and "微信支付".encode() in zh.body
    ctx.settings.server.default_locale = "zh_CN"
    other = await browser.get("/", headers={"Accept-Language": "fr"})
    assert b"<html lang=\"zh-CN\">" in other.body and b"&yen;99.00" in other.body


@pytest.mark.gen_test
async def test_simulator_native_and_mweb_replies_verify_with_wechatpy(http_client, tp_settings):
    key = tp_settings.wechat.api_key
    base = {"appid": "wxd930ea5d5a258f4f", "mch_id": "10000100", "nonce_str": "n" * 16,
            "body": "示例商城-年度会员", "total_fee": "9900", "spbill_create_ip": PHONE_IP,
            "notify_url": tp_settings.server.public_url + "/wxpay/notify"}
    for extra in ({"trade_type": "NATIVE", "product_id": "VIP-12M", "out_trade_no": "TPN1"},
                  {"trade_type": "MWEB", "out_trade_no": "TPM1", "scene_info": json.dumps(
                      {"h5_info": {"type": "Wap", "wap_url": "https://m.example",
                                   "wap_name": "示例商城"}}, ensure_ascii=False)}):
        fields = dict(base, **extra)
        fields["sign"] = make_sign(fields, key, "MD5")
        reply = await http_client.fetch(tp_settings.server.public_url + "/_sim/pay/unifiedorder",
                                        method="POST", body=encode_xml(fields))
        got = decode_xml(reply.body)
        assert got["result_code"] == "SUCCESS", got
        sign = got.pop("sign")
        assert calculate_signature(got, key) == sign  # wechatpy, independently
        assert ("code_url" in got) == (extra["trade_type"] == "NATIVE")
        assert ("mweb_url" in got) == (extra["trade_type"] == "MWEB")


@pytest.mark.gen_test
async def test_native_payer_cookie_is_the_payer_for_reuse_and_limits(browser, ctx, http_client,
                                                                     tp_settings):
    first, _ = await native_order(browser)
    again, _ = await native_order(browser)
    assert again == first  # the same browser's open order for the same product is reused
    mweb = await browser.get("/wxpay/checkout/coach-205", headers={"User-Agent": PHONE})
    assert mweb.code == 303 and "checkmweb" in mweb.headers["Location"]  # never another type's
    ctx.settings.orders.max_open_per_payer = 2
    refused = await browser.get("/wxpay/checkout/coach-101", headers={"User-Agent": DESKTOP})
    assert refused.code == 429  # two open orders already: NATIVE and MWEB of this cookie
    other = Browser(http_client, tp_settings.server.public_url)
    fine = await other.get("/wxpay/checkout/coach-101", headers={"User-Agent": DESKTOP})
    assert fine.code == 303  # another browser is another payer


@pytest.mark.gen_test
async def test_cross_site_native_checkout_is_confirmed_first_keeping_the_trade_type(browser):
    headers = {"User-Agent": PHONE, "Sec-Fetch-Site": "cross-site"}
    page = await browser.get("/wxpay/checkout/coach-101?trade_type=NATIVE", headers=headers)
    text = page.body.decode()
    assert page.code == 200 and 'id="tornpay-confirm"' in text and order_count() == 0
    action = html.unescape(re.search(r'<form method="post" action="([^"]+)"', text).group(1))
    assert action.endswith("?trade_type=NATIVE")
    token = XSRF_RE.search(text).group(1)
    done = await browser.fetch(action, method="POST", body=f"_xsrf={token}",
                               headers={"User-Agent": PHONE})
    assert done.code == 303 and done.headers["Location"].startswith("/wxpay/pay/")
    assert order_row(out_trade_no_of(location(done))).trade_type == "NATIVE"


def order_count():
    from tornpay.storage.models import Order
    return Order.select().count()


@pytest.mark.gen_test
async def test_native_page_offers_a_fresh_code_once_the_code_is_dead(browser):
    no, _ = await native_order(browser)
    from tornpay.storage.models import Order
    old = order_row(no).prepay_at.replace(year=2020)
    Order.update(prepay_at=old).where(Order.out_trade_no == no).execute()  # issued 2h+ ago
    text = (await browser.get(f"/wxpay/pay/{no}", headers={"User-Agent": DESKTOP})).body.decode()
    assert 'id="tornpay-qr"' not in text
    assert json.loads(NATIVE_RE.search(text).group(1)) == {"code_url": None}
    fresh = html.unescape(re.search(r'id="tornpay-fresh-code" href="([^"]+)"', text).group(1))
    assert fresh == "/wxpay/checkout/coach-205?trade_type=NATIVE"
    again = await browser.get(fresh, headers={"User-Agent": DESKTOP})
    assert again.code == 303 and out_trade_no_of(location(again)) != no


@pytest.mark.gen_test
async def test_mweb_pay_again_relaunches_the_same_order_with_a_fresh_mweb_url(browser):
    first = await mweb_start(browser)
    result = parse_qs(urlsplit(first).query)["redirect_url"][0]
    no = result.rsplit("/", 2)[-2]
    again = await browser.get(f"/wxpay/pay/{no}", headers={"User-Agent": PHONE})
    assert again.code == 303
    second = again.headers["Location"]
    assert parse_qs(urlsplit(second).query)["redirect_url"] == [result]
    assert parse_qs(urlsplit(second).query)["package"] != parse_qs(urlsplit(first).query)[
        "package"]  # a fresh 5-minute mweb_url for the same out_trade_no
