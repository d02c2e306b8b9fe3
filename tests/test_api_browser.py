"""docs/api-example.html pays through the JSON API in headless Chromium (simulated WeChat)."""

import os
import re

import pytest
import tornado.web

from browser_helpers import ALICE, DESKTOP, MOBILE, ROOT, WAIT_MS, WECHAT_UA, LoopbackGuard, \
    Server, browser_marks, playwright_expect

pytestmark = browser_marks(pytest)
expect = playwright_expect(pytest)

PAGE = os.path.join(ROOT, "docs", "api-example.html")
COOKIE_SECRET = "browser-test-cookie-secret-0123456789"  # browser_helpers.write_settings


@pytest.fixture
def server(tmp_path):
    srv = Server(tmp_path)
    # The example page lives in the estate's /shop/: a registered JSAPI directory too.
    srv.simulator["pay_directories"] = [srv.base + "/wxpay/pay/", srv.base + "/shop/"]
    srv.start()
    yield srv
    srv.stop()


def open_example(browser, server, openid=ALICE, desktop=False):
    if desktop:
        context = browser.new_context(viewport=DESKTOP)
    else:  # WeChat's in-app browser on a phone
        context = browser.new_context(viewport=MOBILE, is_mobile=True, has_touch=True,
                                      user_agent=WECHAT_UA)
    context.set_default_timeout(WAIT_MS)
    guard = LoopbackGuard(context)
    with open(PAGE, encoding="utf-8") as f:
        html = f.read()
    # Served as the estate would serve it: a static file on tornpay's origin.
    context.route(server.base + "/shop/api-example.html",
                  lambda route: route.fulfill(status=200, body=html,
                                              content_type="text/html; charset=utf-8"))
    if openid:  # signed in through WeChat's OAuth earlier
        signed = tornado.web.create_signed_value(COOKIE_SECRET, "tornpay_openid",
                                                 openid).decode()
        context.add_cookies([{"name": "tornpay_openid", "value": signed, "url": server.base}])
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server.base + "/shop/api-example.html")
    expect(page.locator("#pay[data-ready='1']")).to_be_attached()
    return context, page, guard, errors


def test_example_front_end_pays_and_cancels(server, chromium):
    context, page, guard, errors = open_example(chromium, server)
    page.click("#pay")
    page.click("#tornpay-sim-pay")  # the simulated WeChat cashier
    expect(page.locator("#status[data-state='PAID']")).to_contain_text("Paid")
    number = re.search(r"TP\w+", page.locator("#status").inner_text()).group(0)
    order = server.sim("GET", f"orders/{number}")["order"]
    assert order["trade_state"] == "SUCCESS" and order["total_fee"] == 1

    # A second order, given up from the page: cancelled through the API.
    page.click("#pay")
    page.click("#tornpay-sim-cancel")
    expect(page.locator("#cancel")).to_be_visible()
    page.click("#cancel")
    expect(page.locator("#status[data-state='CLOSED']")).to_be_visible()
    assert server.count_orders() == 2
    assert not errors and not guard.refused
    context.close()


def test_example_front_end_on_a_desktop_shows_the_native_code(server, chromium):
    context, page, guard, errors = open_example(chromium, server, openid=None, desktop=True)
    page.click("#pay")
    expect(page.locator("#qr")).to_contain_text("weixin://wxpay/bizpayurl?pr=")
    code_url = page.locator("#qr").inner_text()
    orders = server.sim("GET", "orders")["orders"]
    assert len(orders) == 1 and code_url.startswith("weixin://")
    order = orders[0]
    server.sim("POST", "pay", out_trade_no=order["out_trade_no"])  # scanned and paid
    expect(page.locator("#status[data-state='PAID']")).to_contain_text(
        order["out_trade_no"])
    assert not errors and not guard.refused
    context.close()
