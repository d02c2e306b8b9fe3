"""The JSON API for browser front ends: create, read, cancel; owners, XSRF, stable error codes."""

import asyncio
import json

import pytest

from api_helpers import ApiBrowser, error_code
from flow_helpers import ALICE, BOB, wait_for
from tornpay.protocol.sign import verify_sign
from tornpay.storage.models import Order
from conftest import TEST_API_KEY


@pytest.fixture
def tp_overrides():
    return {"plugins": ["tornpay.plugins.catalog"]}


@pytest.fixture
def alice(http_client, base_url, tp_settings):
    browser = ApiBrowser(http_client, base_url)
    browser.set_openid(tp_settings, ALICE)
    return browser


async def create(browser, product_id="coach-101", **extra):
    await browser.session()
    return await browser.api("POST", "/orders", dict(extra, product_id=product_id))


@pytest.mark.gen_test(timeout=30)
async def test_jsapi_order_price_from_the_server_only(alice, http_client, base_url):
    session = await alice.session()
    assert session["signed_in"] and session["trade_types"] == ["JSAPI"]
    status, answer = await alice.api("POST", "/orders", {
        "product_id": "coach-205", "total_fee": 1, "body": "cheap", "price": 1})
    assert status == 201, answer
    assert (answer["total_fee"], answer["state"], answer["trade_type"]) == (9900, "PREPAID",
                                                                            "JSAPI")
    params = answer["pay_params"]
    assert set(params) == {"appId", "timeStamp", "nonceStr", "package", "signType", "paySign"}
    signed = dict({k: v for k, v in params.items() if k != "paySign"}, sign=params["paySign"])
    assert verify_sign(signed, TEST_API_KEY, params["signType"])
    row = Order.get_by_id(answer["out_trade_no"])
    assert (row.total_fee, row.body, row.openid) == (9900, "Group clinic", ALICE)
    # The pay page's bridge pays it; the API shows the change to its owner only.
    await http_client.fetch(base_url + "/_sim/control/pay", method="POST",
                            body=json.dumps({"out_trade_no": answer["out_trade_no"]}))

    async def paid():
        _, order = await alice.api("GET", "/orders/" + answer["out_trade_no"])
        return order["state"] == "PAID"
    for _ in range(200):
        if await paid():
            break
        await wait_for(lambda: True, timeout=0.05)
    assert await paid()


@pytest.mark.gen_test(timeout=30)
async def test_xsrf_header_required_for_cookie_sessions(alice):
    await alice.session()
    status, answer = await alice.api("POST", "/orders", {"product_id": "coach-101"},
                                     xsrf=False)
    assert (status, error_code(answer)) == (403, "xsrf_failed")
    status, answer = await alice.api("POST", "/orders", {"product_id": "coach-101"},
                                     headers={"X-XSRFToken": "2|00|forged|1"}, xsrf=False)
    assert (status, error_code(answer)) == (403, "xsrf_failed")
    assert Order.select().count() == 0


@pytest.mark.gen_test(timeout=30)
async def test_only_the_owner_reads_or_cancels(alice, http_client, base_url, tp_settings):
    status, answer = await create(alice)
    assert status == 201
    number = answer["out_trade_no"]
    bob = ApiBrowser(http_client, base_url)
    bob.set_openid(tp_settings, BOB)
    await bob.session()
    for method, path in (("GET", f"/orders/{number}"), ("POST", f"/orders/{number}/cancel")):
        status, refused = await bob.api(method, path)
        assert (status, error_code(refused)) == (403, "not_owner")
        assert number not in json.dumps(refused["error"]["message"])
    stranger = ApiBrowser(http_client, base_url)
    status, refused = await stranger.api("GET", f"/orders/{number}")
    assert (status, error_code(refused)) == (401, "not_signed_in")
    status, refused = await alice.api("GET", "/orders/TP0000000000000000000000000000")
    assert (status, error_code(refused)) == (404, "not_found")
    assert Order.get_by_id(number).state == "PREPAID"

    status, cancelled = await alice.api("POST", f"/orders/{number}/cancel")
    assert status == 200 and cancelled["state"] == "CLOSED"
    assert cancelled["outcome"] in ("cancelled", "cancelled_locally")
    status, again = await alice.api("POST", f"/orders/{number}/cancel")
    assert (status, error_code(again)) == (409, "invalid_state")


@pytest.mark.gen_test(timeout=30)
async def test_error_codes(alice, http_client, base_url):
    status, answer = await create(alice, product_id="no-such-product")
    assert (status, error_code(answer)) == (404, "unknown_product")
    for trade_type in ("MINIPROGRAM", "BITCOIN"):
        status, answer = await create(alice, trade_type=trade_type)
        assert (status, error_code(answer)) == (400, "trade_type_not_enabled")
    status, answer = await create(alice, code="0a1b2c")  # no Mini Program configured
    assert (status, error_code(answer)) == (400, "trade_type_not_enabled")
    status, answer = await alice.api("POST", "/orders", ["coach-101"])
    assert (status, error_code(answer)) == (400, "invalid_request")
    assert Order.select().count() == 0
    await http_client.fetch(base_url + "/_sim/control/faults", method="POST",
                            body=json.dumps({"name": "systemerror", "endpoint": "unifiedorder"}))
    status, answer = await create(alice)
    assert (status, error_code(answer)) == (502, "wechat_error")
    assert answer["error"]["wechat_code"] == "SYSTEMERROR" and answer["error"]["retryable"]


@pytest.mark.parametrize("tp_overrides", [{"plugins": ["tornpay.plugins.catalog"],
                                           "orders": {"max_open_per_payer": 1}}])
@pytest.mark.gen_test(timeout=30)
async def test_open_order_limit_and_reuse(alice):
    status, first = await create(alice, "coach-101")
    assert status == 201
    status, again = await create(alice, "coach-101")  # the same open order, offered again
    assert status == 201 and again["out_trade_no"] == first["out_trade_no"]
    assert again["pay_params"]["package"] == first["pay_params"]["package"]
    status, refused = await create(alice, "coach-205")
    assert (status, error_code(refused)) == (429, "too_many_open_orders")
    assert Order.select().count() == 1


ANY_BROWSER = {"plugins": ["tornpay.plugins.catalog"],
               "orders": {"trade_types": ["JSAPI", "NATIVE", "MWEB"]}}
PHONE_UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148 Safari/604.1"
DESKTOP_UA = "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 Safari/537.36"
WECHAT_UA = PHONE_UA + " MicroMessenger/8.0.44"


@pytest.mark.parametrize("tp_overrides", [ANY_BROWSER])
@pytest.mark.gen_test(timeout=30)
async def test_native_order_owned_by_the_payer_cookie(http_client, base_url, tp_overrides):
    desktop = ApiBrowser(http_client, base_url)
    session = await desktop.session()
    assert session["trade_types"] == ["JSAPI", "NATIVE", "MWEB"] and not session["signed_in"]
    status, answer = await desktop.api("POST", "/orders", {"product_id": "coach-205"},
                                       headers={"User-Agent": DESKTOP_UA})
    assert status == 201, answer
    assert answer["trade_type"] == "NATIVE" and answer["total_fee"] == 9900
    assert answer["pay_params"]["code_url"].startswith("weixin://wxpay/bizpayurl?pr=")
    assert "tornpay_payer" in desktop.cookies
    number = answer["out_trade_no"]
    row = Order.get_by_id(number)
    assert (row.trade_type, row.openid, row.code_url) == ("NATIVE", "",
                                                          answer["pay_params"]["code_url"])
    other = ApiBrowser(http_client, base_url)
    await other.session()
    status, refused = await other.api("POST", "/orders", {"product_id": "coach-101",
                                                          "trade_type": "NATIVE"})
    assert status == 201  # another browser, another payer cookie, its own order
    status, refused = await other.api("GET", f"/orders/{number}")
    assert (status, error_code(refused)) == (403, "not_owner")
    await http_client.fetch(base_url + "/_sim/control/pay", method="POST",
                            body=json.dumps({"out_trade_no": number}))
    for _ in range(250):
        status, order = await desktop.api("GET", f"/orders/{number}")
        if order["state"] == "PAID":
            break
        await asyncio.sleep(0.02)
    assert (status, order["state"], order["trade_type"]) == (200, "PAID", "NATIVE")


@pytest.mark.parametrize("tp_overrides", [ANY_BROWSER])
@pytest.mark.gen_test(timeout=30)
async def test_trade_type_follows_the_browser_and_mweb_gets_its_url(
        http_client, base_url, tp_overrides, tp_settings):
    phone = ApiBrowser(http_client, base_url)
    await phone.session()
    status, answer = await phone.api("POST", "/orders", {"product_id": "coach-101"},
                                     headers={"User-Agent": PHONE_UA})
    assert status == 201 and answer["trade_type"] == "MWEB", answer
    assert "mweb_url" in answer["pay_params"] and answer["pay_params"]["mweb_url"]
    assert Order.get_by_id(answer["out_trade_no"]).spbill_create_ip == "127.0.0.1"
    # Asked again: the open order is offered again, with a fresh mweb_url.
    status, again = await phone.api("POST", "/orders", {"product_id": "coach-101"},
                                    headers={"User-Agent": PHONE_UA})
    assert again["out_trade_no"] == answer["out_trade_no"] and again["pay_params"]["mweb_url"]
    in_wechat = ApiBrowser(http_client, base_url)
    in_wechat.set_openid(tp_settings, ALICE)
    await in_wechat.session()
    status, answer = await in_wechat.api("POST", "/orders", {"product_id": "coach-101"},
                                         headers={"User-Agent": WECHAT_UA})
    assert status == 201 and answer["trade_type"] == "JSAPI"
    assert set(answer["pay_params"]) >= {"appId", "paySign"}
