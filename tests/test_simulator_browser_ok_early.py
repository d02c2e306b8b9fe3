"""Issue 20 item 5: the bridge says ok before WeChat has the payment; the page still ends paid."""

import sqlite3

from browser_helpers import MOBILE  # noqa: F401
from test_browser import (  # noqa: F401  (fixtures and marks)
    browser, expect, expect_paid, out_trade_no, pytestmark, server, sign_in, visit,
)

DELAY = 6.0  # seconds between the bridge's ok and the payment landing at the simulator


def tornpay_state(server, number):
    conn = sqlite3.connect(f"{server.directory}/tornpay.db", timeout=5)
    try:
        return conn.execute("SELECT state FROM tornpay_order WHERE out_trade_no = ?",
                            (number,)).fetchone()[0]
    finally:
        conn.close()


def test_ok_before_the_payment_lands_still_ends_paid(visit, server):
    server.start()
    server.sim("POST", "faults", name="bridge_ok_early", count=1, seconds=DELAY)
    v = visit()
    page = v.page
    sign_in(v, server, "coach-101")
    number = out_trade_no(page)
    page.click("#tornpay-sim-pay")
    # The bridge answered ok; the page asks the server instead of believing it ...
    expect(page.locator("#tornpay-status")).to_have_text("Confirming your payment\u2026")
    # ... and at this point WeChat has no payment: orderquery NOTPAY, no notify, not PAID.
    sim_order = server.sim("GET", f"orders/{number}")["order"]
    assert sim_order["trade_state"] == "NOTPAY" and sim_order["notifies"] == []
    assert tornpay_state(server, number) != "PAID"
    assert "/result" not in page.url
    v.shot("ok-but-not-paid")
    expect_paid(page)  # the payment lands, the notify arrives, the page follows the server
    assert server.sim("GET", f"orders/{number}")["order"]["trade_state"] == "SUCCESS"
    v.check_clean()
