"""SPEC §9 in headless Chromium: JSAPI, NATIVE and MWEB each cancelled then paid, in both languages."""

import io
import json
import re

import pytest

from browser_helpers import DESKTOP, DESKTOP_UA, MOBILE, PHONE_UA, WAIT_MS, WECHAT_UA, \
    LoopbackGuard, Server, Shots, browser_marks, playwright_expect
from conftest import V3_TEST_KEYS

pytestmark = browser_marks(pytest)

expect = playwright_expect(pytest)
zxingcpp = pytest.importorskip("zxingcpp", reason="zxing-cpp is in the test extra")
Image = pytest.importorskip("PIL.Image", reason="Pillow is in the test extra")

ALICE = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
RESULT_URL = re.compile(r"/wxpay/orders/[A-Za-z0-9_-]+/result$")
BROWSERS = {  # trade type -> (user agent, viewport)
    "JSAPI": (WECHAT_UA, MOBILE), "NATIVE": (DESKTOP_UA, DESKTOP), "MWEB": (PHONE_UA, MOBILE)}
LANGS = {"zh_CN": ("zh-CN", "zh-CN"), "en_US": ("en-US", "en")}  # -> (browser locale, html lang)
TEXT = {
    "paid": {"zh_CN": "支付成功，谢谢！", "en_US": "Paid. Thank you!"},
    "cancelled": {"zh_CN": "您已取消此订单，未扣款。",
                  "en_US": "You cancelled this order; nothing was charged."},
    "fresh": {"zh_CN": "刷新二维码", "en_US": "Get a new QR code"},
}
# The README's screenshots (Chinese): name in the test -> file in docs/screenshots/.
PUBLISH = {
    "JSAPI": {"pay-sheet": "anybrowser-jsapi-pay.png", "paid": "anybrowser-jsapi-paid.png"},
    "NATIVE": {"qr": "anybrowser-native-qr.png", "paid": "anybrowser-native-paid.png"},
    "MWEB": {"cashier": "anybrowser-mweb-cashier.png", "paid": "anybrowser-mweb-paid.png"},
}


@pytest.fixture(scope="module")
def server(tmp_path_factory, request):
    # One server for the six runs: each run is its own browser context (own cookies).
    # Parametrized "v3": new orders in WeChat Pay API v3 (the shipped TEST-ONLY v3 keys).
    version = getattr(request, "param", "v2")
    srv = Server(tmp_path_factory.mktemp("anybrowser"),
                 wechat=dict(V3_TEST_KEYS, api_version=version)).start()
    yield srv
    srv.stop()


class Run:
    """One browser context for one trade type and language."""

    def __init__(self, chromium, server, trade_type, lang, name):
        ua, viewport = BROWSERS[trade_type]
        self.context = chromium.new_context(
            viewport=viewport, device_scale_factor=1, is_mobile=viewport is MOBILE,
            has_touch=viewport is MOBILE, locale=LANGS[lang][0], user_agent=ua)
        self.context.set_default_timeout(WAIT_MS)
        self.guard = LoopbackGuard(self.context)
        self.page = self.context.new_page()
        self.errors = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.server, self.lang, self.shots = server, lang, Shots(name)

    def checkout(self, product_id):
        # From the shop page, as a payer would: MWEB needs the shop as Referer.
        self.page.goto(self.server.base + "/")
        self.expect_lang()
        self.page.locator(f"li[data-product-id='{product_id}'] a.tornpay-buy").click()

    def expect_lang(self):
        expect(self.page.locator("html")).to_have_attribute("lang", LANGS[self.lang][1])

    def expect_result(self, status):
        page = self.page
        expect(page).to_have_url(RESULT_URL)
        expect(page.locator("#tornpay-result")).to_have_attribute("data-status", status)
        expect(page.locator("#tornpay-status")).to_have_text(TEXT[status][self.lang])
        self.expect_lang()

    def shot(self, name):
        return self.shots.take(self.page, name)

    def close(self):
        self.context.close()
        assert self.guard.refused == [], "requests left 127.0.0.1"
        assert self.errors == [], "script errors on the pages"


@pytest.fixture
def run(chromium, server, request):
    opened = []

    def open_(trade_type, lang):
        r = Run(chromium, server, trade_type, lang,
                request.node.name.replace("[", "-").rstrip("]"))
        opened.append(r)
        return r
    yield open_
    for r in opened:
        r.close()


def jsapi_cancel_then_pay(r):
    page = r.page
    r.checkout("coach-205")
    page.click(f"a.tornpay-sim-user[data-openid='{ALICE}']")
    expect(page.locator("#tornpay-sim-sheet")).to_be_visible()
    page.click("#tornpay-sim-cancel")
    page.click("#tornpay-cancel-button")
    r.expect_result("cancelled")
    r.checkout("coach-101")  # signed in now: straight to the pay page
    expect(page.locator("#tornpay-sim-sheet")).to_be_visible()
    r.expect_lang()
    r.shot("pay-sheet")
    page.click("#tornpay-sim-pay")


def qr_text(page):
    """Decode the QR code from a screenshot of the page, as a phone camera would."""
    png = page.screenshot()
    found = zxingcpp.read_barcode(Image.open(io.BytesIO(png)).convert("L"))
    assert found is not None, "no QR code found in the screenshot"
    return found.text


def native_cancel_then_pay(r):
    page = r.page
    r.checkout("coach-205")
    expect(page.locator("#tornpay-qr")).to_be_visible()
    r.expect_lang()
    code_url = json.loads(page.locator("#tornpay-native").text_content())["code_url"]
    assert qr_text(page) == code_url and code_url.startswith("weixin://wxpay/bizpayurl?pr=")
    # The order is cancelled in another tab: this page stops and offers a fresh code.
    other = r.context.new_page()
    other.goto(page.url)
    other.click("#tornpay-cancel-button")
    expect(other.locator("#tornpay-result")).to_have_attribute("data-status", "cancelled")
    other.close()
    fresh = page.locator("#tornpay-fresh-code")
    expect(fresh).to_be_visible()
    expect(fresh).to_have_text(TEXT["fresh"][r.lang])
    fresh.click()
    expect(page.locator("#tornpay-qr")).to_be_visible()
    new_code = json.loads(page.locator("#tornpay-native").text_content())["code_url"]
    assert new_code != code_url and qr_text(page) == new_code
    r.shot("qr")
    # The test user's phone scans it (the simulator's scan page) and pays.
    phone = r.context.new_page()
    phone.goto(f"{r.server.base}/_sim/scan")
    phone.fill("#tornpay-sim-code-url", new_code)
    phone.click("#tornpay-sim-scan-button")
    phone.click("#tornpay-sim-pay")
    expect(phone.locator("#tornpay-sim-done")).to_have_attribute("data-paid", "yes")
    phone.close()


def mweb_cancel_then_pay(r):
    page = r.page
    r.checkout("coach-205")
    expect(page.locator("#tornpay-sim-cashier")).to_be_visible()  # WeChat's H5 cashier
    expect(page).to_have_url(re.compile(r"/_sim/cgi-bin/mmpayweb-bin/checkmweb\?"))
    page.click("#tornpay-sim-cancel")
    expect(page).to_have_url(RESULT_URL)  # back, and the return proves nothing
    expect(page.locator("#tornpay-result")).to_have_attribute("data-status", "pending")
    page.click("#tornpay-cancel-button")
    r.expect_result("cancelled")
    r.checkout("coach-101")
    expect(page.locator("#tornpay-sim-cashier")).to_be_visible()
    r.shot("cashier")
    page.click("#tornpay-sim-pay")


FLOWS = {"JSAPI": jsapi_cancel_then_pay, "NATIVE": native_cancel_then_pay,
         "MWEB": mweb_cancel_then_pay}


@pytest.mark.parametrize("lang", list(LANGS))
@pytest.mark.parametrize("trade_type", list(FLOWS))
def test_cancel_then_pay(run, server, trade_type, lang):
    r = run(trade_type, lang)
    FLOWS[trade_type](r)
    r.expect_result("paid")
    # The booking plugin's on_paid lands after the notify; the page shows it in place.
    expect(r.page.locator("#tornpay-booking")).to_have_attribute("data-booking", "confirmed")
    r.shot("paid")
    number = r.page.url.rsplit("/", 2)[-2]
    assert server.sim("GET", f"orders/{number}")["order"]["trade_state"] == "SUCCESS"
    if lang == "zh_CN":
        r.shots.publish(PUBLISH[trade_type])


@pytest.mark.parametrize("server", ["v3"], indirect=True)
@pytest.mark.parametrize("trade_type", ["NATIVE", "MWEB"])
def test_cancel_then_pay_on_v3(run, server, trade_type):
    r = run(trade_type, "en_US")
    FLOWS[trade_type](r)
    r.expect_result("paid")
    number = r.page.url.rsplit("/", 2)[-2]
    order = server.sim("GET", f"orders/{number}")["order"]
    assert (order["trade_state"], order["api"]) == ("SUCCESS", "v3")
