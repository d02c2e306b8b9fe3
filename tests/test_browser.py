"""End-to-end: the shop, OAuth, pay page and result page in real headless Chromium."""

import json
import re

import pytest

from browser_helpers import ALICE, DESKTOP, MOBILE, WAIT_MS, WECHAT_UA, LoopbackGuard, Server, \
    Shots, browser_marks, playwright_expect
from conftest import V3_TEST_KEYS

pytestmark = browser_marks(pytest)
expect = playwright_expect(pytest)

BOB = "oUpF8uN95-Ptaags6E_roPHg7AG0"
PAY_URL = re.compile(r"/wxpay/pay/[A-Za-z0-9_-]+$")
RESULT_URL = re.compile(r"/wxpay/orders/[A-Za-z0-9_-]+/result$")


@pytest.fixture
def server(tmp_path, api_version):
    srv = Server(tmp_path, wechat=dict(V3_TEST_KEYS, api_version=api_version))
    yield srv
    srv.stop()


class Visit:
    """One browser context: its page, the loopback guard, script errors and screenshots."""

    def __init__(self, browser, name, viewport):
        self.context = browser.new_context(viewport=viewport, device_scale_factor=1,
                                           is_mobile=viewport is MOBILE, has_touch=True,
                                           locale="en-US", user_agent=WECHAT_UA)
        self.context.set_default_timeout(WAIT_MS)
        self.guard = LoopbackGuard(self.context)
        self.page = self.context.new_page()
        self.errors = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.shots = Shots(name)

    def shot(self, name):
        return self.shots.take(self.page, name)

    def check_clean(self):
        assert self.guard.refused == [], "requests left 127.0.0.1"
        assert self.guard.seen, "the guard saw no request at all"
        assert self.errors == [], "script errors on the pages"


@pytest.fixture
def visit(chromium, request):
    opened = []

    def open_(viewport=MOBILE):
        v = Visit(chromium, request.node.name.replace("[", "-").rstrip("]"), viewport)
        opened.append(v)
        return v

    yield open_
    for v in opened:
        v.context.close()


def assert_banner(page):
    """Every page, ours and the simulator's, says SIMULATOR where a person sees it."""
    expect(page.get_by_text("SIMULATOR").first).to_be_visible()


def sign_in(v, server, product_id, openid=ALICE):
    """Shop checkout link -> simulator authorize page -> pick a user -> pay page with the sheet."""
    page = v.page
    page.goto(f"{server.base}/wxpay/checkout/{product_id}")
    expect(page).to_have_url(re.compile(r"/_sim/connect/oauth2/authorize\?"))
    page.click(f"a.tornpay-sim-user[data-openid='{openid}']")
    expect(page).to_have_url(PAY_URL)
    expect(page.locator("#tornpay-sim-sheet")).to_be_visible()


PAGE_BUDGET = 32 * 1024  # bytes of HTML, CSS and scripts a page may load: phones on slow links


def page_weight(page):
    """Bytes the current page loaded (document and subresources), from the Resource Timing API."""
    return page.evaluate(
        "performance.getEntries().filter(e => 'decodedBodySize' in e)"
        ".reduce((sum, e) => sum + e.decodedBodySize, 0)")


def jsapi(page):
    return json.loads(page.locator("#tornpay-jsapi").text_content())


def out_trade_no(page):
    return page.locator("#tornpay-pay").get_attribute("data-out-trade-no")


def expect_paid(page):
    expect(page).to_have_url(RESULT_URL)
    expect(page.locator("#tornpay-result")).to_have_attribute("data-status", "paid")
    expect(page.locator("#tornpay-status")).to_have_text("Paid. Thank you!")
    # The booking plugin's on_paid lands after the notify; the page shows it without a reload.
    expect(page.locator("#tornpay-booking")).to_have_attribute("data-booking", "confirmed")
    expect(page.locator("#tornpay-booking")).to_contain_text("Your booking is confirmed.")


@pytest.mark.parametrize("viewport,api_version", [("mobile", "v2"), ("desktop", "v2"),
                                                  ("mobile", "v3")])
def test_shop_to_paid_result(visit, server, viewport, api_version):
    """(a) shop -> Pay with WeChat -> authorize -> pay sheet -> Pay -> result paid + booking."""
    server.start()
    v = visit(MOBILE if viewport == "mobile" else DESKTOP)
    page = v.page

    page.goto(server.base + "/")
    assert_banner(page)
    expect(page.locator("#tornpay-shop li")).to_have_count(2)
    weights = {"shop": page_weight(page)}
    v.shot("shop")
    page.locator("li[data-product-id='coach-101']").get_by_text("Pay with WeChat").click()

    expect(page).to_have_url(re.compile(r"/_sim/connect/oauth2/authorize\?"))
    assert_banner(page)
    weights["authorize"] = page_weight(page)
    v.shot("authorize")
    page.click(f"a.tornpay-sim-user[data-openid='{ALICE}']")

    expect(page).to_have_url(PAY_URL)
    sheet = page.locator("#tornpay-sim-sheet")
    expect(sheet).to_be_visible()
    expect(page.locator("#tornpay-sim-amount")).to_have_text("\u00a50.01")
    expect(page.locator("#tornpay-sim-body")).to_have_text("Private coaching, 1 hour")
    assert_banner(page)
    weights["pay"] = page_weight(page)
    v.shot("pay-sheet")
    page.click("#tornpay-sim-pay")

    expect_paid(page)
    assert_banner(page)
    weights["result"] = page_weight(page)
    v.shot("result-paid")
    assert server.count_orders() == 1
    assert all(0 < w < PAGE_BUDGET for w in weights.values()), weights

    # The result page leads to the simulator's own record of the order and its notifies.
    page.click("#tornpay-sim-link")
    expect(page).to_have_url(server.base + "/_sim/")
    assert_banner(page)
    expect(page.locator("body")).to_contain_text("SUCCESS")
    v.shot("simulator-dashboard")
    page.go_back()
    expect(page).to_have_url(RESULT_URL)
    page.click("#tornpay-shop-link")
    expect(page).to_have_url(server.base + "/")

    v.check_clean()
    if api_version != "v2":
        assert server.order_api_versions() == ["v3"]  # paid through the v3 gateway
    elif viewport == "mobile":
        v.shots.publish({"shop": "1-shop.png", "authorize": "2-authorize.png",
                         "pay-sheet": "3-pay-sheet.png", "result-paid": "4-result-paid.png"})
    else:
        v.shots.publish({"simulator-dashboard": "5-simulator-dashboard.png"})


def test_cancel_then_pay_again(visit, server):
    """(b) Cancel on the pay sheet keeps the order payable; the second try pays it."""
    server.start()
    v = visit()
    page = v.page
    sign_in(v, server, "coach-205", openid=BOB)
    number = out_trade_no(page)
    v.shot("pay-sheet")

    page.click("#tornpay-sim-cancel")
    expect(page.locator("#tornpay-sim-sheet")).to_have_count(0)
    expect(page.locator("#tornpay-status")).to_have_text("Payment cancelled.")
    button = page.locator("#tornpay-pay-button")
    expect(button).to_be_enabled()
    expect(button).to_have_text("Pay again")
    assert_banner(page)
    v.shot("cancelled")
    # Nothing paid or closed on either side: a cancel on the sheet is only the payer's hint.
    assert server.sim("GET", f"orders/{number}")["order"]["trade_state"] == "NOTPAY"

    button.click()
    expect(page.locator("#tornpay-sim-sheet")).to_be_visible()
    expect(page.locator("#tornpay-sim-amount")).to_have_text("\u00a599.00")
    v.shot("pay-sheet-again")
    page.click("#tornpay-sim-pay")
    expect_paid(page)
    assert number in page.url
    v.shot("result-paid")
    assert server.count_orders() == 1
    v.check_clean()


def test_refresh_pay_page_mid_flow(visit, server):
    """(c) A refresh re-signs the same prepay_id: no second order, fresh paySign, still payable."""
    server.start()
    v = visit()
    page = v.page
    sign_in(v, server, "coach-101")
    url, number, before = page.url, out_trade_no(page), jsapi(page)
    v.shot("pay-sheet")

    page.reload()
    expect(page.locator("#tornpay-sim-sheet")).to_be_visible()
    after = jsapi(page)
    assert page.url == url and out_trade_no(page) == number
    assert after["package"] == before["package"]  # the same prepay_id, no new unified order
    assert after["nonceStr"] != before["nonceStr"]
    assert after["paySign"] != before["paySign"]
    assert server.count_orders() == 1
    assert len(server.sim("GET", "orders")["orders"]) == 1
    assert_banner(page)
    v.shot("pay-sheet-after-refresh")

    page.click("#tornpay-sim-pay")
    expect_paid(page)
    v.shot("result-paid")
    assert server.count_orders() == 1
    v.check_clean()


def pay_under_fault(visit, server, fault, **options):
    """Start the server with one simulator ``fault``, sign in and tap Pay on the sheet: the page
    says it is confirming with the server. Returns the visit and the order's number."""
    server.start()
    server.sim("POST", "faults", name=fault, count=1, **options)
    v = visit()
    sign_in(v, server, "coach-101")
    number = out_trade_no(v.page)
    v.page.click("#tornpay-sim-pay")
    expect(v.page.locator("#tornpay-status")).to_have_text("Confirming your payment\u2026")
    return v, number


def test_result_page_turns_paid_without_reload(visit, server):
    """(d) The notify lands while the result page is open: it turns to paid in place."""
    # Paid at WeChat, but no notify yet: the pay page waits for the server's word.
    v, number = pay_under_fault(visit, server, "notify_drop")
    page = v.page
    v.shot("confirming")

    page.goto(f"{server.base}/wxpay/orders/{number}/result")
    result = page.locator("#tornpay-result")
    expect(result).to_have_attribute("data-status", "pending")
    expect(page.locator("#tornpay-booking")).to_have_attribute("data-booking", "reserved")
    assert_banner(page)
    v.shot("result-pending")
    page.evaluate("window.__tornpayNoReload = 42")

    server.sim("POST", "notify/resend", out_trade_no=number)
    expect_paid(page)
    assert page.evaluate("window.__tornpayNoReload") == 42, "the page reloaded itself"
    expect(page).to_have_title("Order paid")
    v.shot("result-paid")
    v.check_clean()


def test_banner_on_error_pages(visit, server):
    """(e) The SIMULATOR banner is on error pages too (the flow tests check every other page)."""
    server.start()
    v = visit()
    page = v.page
    response = page.goto(f"{server.base}/wxpay/pay/NOSUCHORDER")
    assert response.status == 404
    expect(page.locator("#tornpay-error")).to_be_visible()
    assert_banner(page)
    v.shot("not-found")
    response = page.goto(f"{server.base}/wxpay/checkout/no-such-product")
    assert response.status == 404
    assert_banner(page)
    v.check_clean()


def test_unregistered_pay_directory_fails(visit, server):
    """(f) A pay page outside the registered directory fails as WeChat does: 当前页面的URL未注册."""
    server.simulator["pay_directories"] = [f"{server.base}/somewhere/else/"]
    server.start()
    v = visit()
    page = v.page
    page.goto(f"{server.base}/wxpay/checkout/coach-101")
    page.click(f"a.tornpay-sim-user[data-openid='{ALICE}']")
    expect(page).to_have_url(PAY_URL)
    status = page.locator("#tornpay-status")
    expect(status).to_contain_text("当前页面的URL未注册")
    expect(status).to_have_class(re.compile(r"\bfailed\b"))
    expect(page.locator("#tornpay-sim-sheet")).to_have_count(0)
    expect(page.locator("#tornpay-pay-button")).to_have_text("Try again")
    assert_banner(page)
    v.shot("url-not-registered")
    v.shots.publish({"url-not-registered": "6-url-not-registered.png"})
    number = out_trade_no(page)
    assert server.sim("GET", f"orders/{number}")["order"]["trade_state"] == "NOTPAY"
    v.check_clean()
