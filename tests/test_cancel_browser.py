"""The pay page's "Cancel order" button in real headless Chromium, against a server process."""

import re

import pytest

from browser_helpers import ALICE, MOBILE, WAIT_MS, WECHAT_UA, LoopbackGuard, Server, \
    browser_marks, playwright_expect

pytestmark = browser_marks(pytest)
expect = playwright_expect(pytest)


def test_cancel_button_in_chromium(tmp_path, chromium):
    server = Server(tmp_path).start()
    try:
        context = chromium.new_context(viewport=MOBILE, is_mobile=True, has_touch=True,
                                       user_agent=WECHAT_UA)
        context.set_default_timeout(WAIT_MS)
        guard = LoopbackGuard(context)
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{server.base}/wxpay/checkout/coach-101")
        page.click(f"a.tornpay-sim-user[data-openid='{ALICE}']")
        expect(page.locator("#tornpay-sim-sheet")).to_be_visible()
        no = page.locator("#tornpay-pay").get_attribute("data-out-trade-no")
        page.click("#tornpay-sim-cancel")  # the payer closes WeChat's sheet first
        expect(page.locator("#tornpay-status")).to_have_text("Payment cancelled.")
        button = page.locator("#tornpay-cancel-order button")
        expect(button).to_have_text("Cancel order")
        button.click()
        expect(page).to_have_url(re.compile(rf"/wxpay/orders/{no}/result$"))
        result = page.locator("#tornpay-result")
        expect(result).to_have_attribute("data-status", "cancelled")
        expect(page.locator("#tornpay-status")).to_have_text(
            "You cancelled this order; nothing was charged.")
        expect(page.locator("#tornpay-booking")).to_have_attribute("data-booking",
                                                                   "released")
        # Too young for closeorder: WeChat's side stays open until the reconciler.
        assert server.sim("GET", f"orders/{no}")["order"]["trade_state"] == "NOTPAY"
        assert guard.refused == [] and errors == []
        context.close()
    finally:
        server.stop()
