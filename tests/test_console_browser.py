"""The console in headless Chromium on a phone: sign in, search, the timeline, a refund."""

import os
import sqlite3
import subprocess
import sys
import time
import urllib.request

import pytest
import tornado.web

from browser_helpers import ALICE, MOBILE, WAIT_MS, LoopbackGuard, Server, Shots, browser_marks, \
    playwright_expect

pytestmark = browser_marks(pytest)
expect = playwright_expect(pytest)

SECRET = "browser-test-cookie-secret-0123456789"  # browser_helpers.write_settings's
PASSWORD = "console browser password"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def paid_order(server) -> str:
    """Check out coach-205 as Alice (signed cookie), pay at the simulator, wait for PAID."""
    cookie = tornado.web.create_signed_value(SECRET, "tornpay_openid", ALICE).decode()
    request = urllib.request.Request(server.base + "/wxpay/checkout/coach-205",
                                     headers={"Cookie": f"tornpay_openid={cookie}"})
    try:
        urllib.request.build_opener(_NoRedirect).open(request, timeout=10)
        raise AssertionError("checkout did not redirect")
    except urllib.error.HTTPError as exc:
        assert exc.code == 303
        number = exc.headers["Location"].rstrip("/").rsplit("/", 1)[-1]
    server.sim("POST", "pay", out_trade_no=number)
    deadline = time.monotonic() + 15
    while db(server, "SELECT state FROM tornpay_order WHERE out_trade_no = ?",
             number)[0] != "PAID":
        assert time.monotonic() < deadline, "order never PAID"
        time.sleep(0.05)
    return number


def db(server, sql, *args):
    conn = sqlite3.connect(os.path.join(server.directory, "tornpay.db"), timeout=5)
    try:
        return conn.execute(sql, args).fetchone()
    finally:
        conn.close()


def _env() -> dict:
    env = dict(os.environ)
    env.pop("PYTHONWARNINGS", None)
    return env


@pytest.fixture
def server(tmp_path, monkeypatch):
    monkeypatch.setenv("TORNPAY_ADMIN_ENABLED", "true")
    srv = Server(tmp_path).start()
    done = subprocess.run([sys.executable, "-m", "tornpay.cli", "admin", "set-password", "alice",
                           "--password-stdin", "--settings", srv.settings], input=PASSWORD + "\n",
                          env=_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    yield srv
    srv.stop()


@pytest.fixture
def page(chromium):
    context = chromium.new_context(viewport=MOBILE, device_scale_factor=1, is_mobile=True,
                                   has_touch=True, locale="zh-CN")
    context.set_default_timeout(WAIT_MS)
    guard = LoopbackGuard(context)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    assert guard.refused == [] and errors == []
    context.close()


def test_sign_in_search_timeline_refund(server, page):
    number = paid_order(server)
    shots = Shots("console")
    admin = server.base + "/wxpay/admin"
    page.goto(admin + "/orders?q=" + number)  # no session: the login page, no data
    expect(page).to_have_url(admin + "/login")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    assert number not in page.content()
    page.fill("#name", "alice")
    page.fill("#password", "wrong password")
    page.click("#tornpay-login button")
    expect(page.locator("#tornpay-login-error")).to_have_text("用户名或密码错误。")
    page.fill("#password", PASSWORD)
    shots.take(page, "login")
    page.click("#tornpay-login button")
    expect(page).to_have_url(admin + "/")
    shots.take(page, "summary")

    page.click("text=订单")
    page.fill("#q", number)
    page.click("#tornpay-order-filters button")
    rows = page.locator("#tornpay-orders tr[data-out-trade-no]")
    expect(rows).to_have_count(1)
    shots.take(page, "orders")
    rows.first.locator("a").click()

    expect(page).to_have_url(f"{admin}/orders/{number}")
    expect(page.locator("#tornpay-order")).to_have_attribute("data-state", "PAID")
    expect(page.locator("#tornpay-timeline li[data-kind='notify']")).to_contain_text("127.0.0.1")
    shots.take(page, "timeline")
    page.fill("#fee", "2500")
    page.fill("#reason", "课程取消")
    page.click("#tornpay-refund-form button")
    expect(page.locator("#tornpay-refund-confirm")).to_contain_text("¥25.00")
    shots.take(page, "refund-confirm")
    assert db(server, "SELECT COUNT(*) FROM tornpay_refund")[0] == 0
    page.click("#tornpay-refund-confirm-button")
    expect(page.locator("#tornpay-admin-message")).to_have_attribute("data-status", "200")
    assert db(server, "SELECT refund_fee, reason FROM tornpay_refund") == (2500, "课程取消")
    shots.take(page, "refund-sent")

    # The day's bill, with an order the merchant never heard of: reported in the console.
    server.sim("POST", "faults", name="bill_unknown_order", count=1)
    day = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 8 * 3600))
    done = subprocess.run([sys.executable, "-m", "tornpay.cli", "bill", "reconcile", "--date",
                           day, "--settings", server.settings], env=_env(), capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1 and "UNSETTLED  UNKNOWN_ORDER" in done.stdout, done.stderr
    page.click("text=对账单")
    page.click(f"#tornpay-bills a[href$='{day}']")
    expect(page.locator("#tornpay-differences tr[data-kind='UNKNOWN_ORDER']")).to_have_count(1)
    expect(page.locator("#tornpay-differences")).to_contain_text("本地无此订单")
    shots.take(page, "bill")
    page.click("#tornpay-logout")
    expect(page).to_have_url(admin + "/login")
    page.goto(f"{admin}/orders/{number}")
    expect(page).to_have_url(admin + "/login")
    shots.publish({"login": "console-1-login.png", "orders": "console-2-orders.png",
                   "timeline": "console-3-timeline.png",
                   "refund-confirm": "console-4-refund-confirm.png",
                   "bill": "console-5-bill.png"})
