"""Issue 20 item 5: the bridge says ok before WeChat has the payment; the page still ends paid."""

import sqlite3

from test_browser import (  # noqa: F401  (fixtures and marks)
    expect_paid, pay_under_fault, pytestmark, server, visit,
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
    # The bridge answers ok; the page asks the server instead of believing it ...
    v, number = pay_under_fault(visit, server, "bridge_ok_early", seconds=DELAY)
    page = v.page
    # ... and at this point WeChat has no payment: orderquery NOTPAY, no notify, not PAID.
    sim_order = server.sim("GET", f"orders/{number}")["order"]
    assert sim_order["trade_state"] == "NOTPAY" and sim_order["notifies"] == []
    assert tornpay_state(server, number) != "PAID"
    assert "/result" not in page.url
    v.shot("ok-but-not-paid")
    expect_paid(page)  # the payment lands, the notify arrives, the page follows the server
    assert server.sim("GET", f"orders/{number}")["order"]["trade_state"] == "SUCCESS"
    v.check_clean()
