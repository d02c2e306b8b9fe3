"""A plugin the server loads and the CLI does not: on_cancel goes to $TORNPAY_TEST_RECORD.cancel."""

import json
import os


def on_cancel(order, reason):
    with open(os.environ["TORNPAY_TEST_RECORD"] + ".cancel", "a") as f:
        f.write(json.dumps([order.out_trade_no, reason, order.delivery_id, os.getpid()]) + "\n")
