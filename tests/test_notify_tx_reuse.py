"""A signed notify reusing another order's transaction_id: refused once, clearly, no traceback."""

import logging

import pytest

from flow_helpers import (ALICE, Browser, location, notify_fields, order_row,
                                order_snapshot, out_trade_no_of, signed_notify)
from tornpay.protocol.xmlcodec import decode_xml
from tornpay.orders import transitions
from tornpay.storage.db import database_proxy, is_postgres
from tornpay.storage.models import Event, Notification

KEY = "192006250b4c09247ec02edce69f6a2d"
TX = "4200002315202406013425869417"


async def new_order(http_client, tp_settings, product="coach-205"):
    browser = Browser(http_client, tp_settings.server.public_url)
    browser.set_openid(tp_settings, ALICE)
    reply = await browser.get(f"/wxpay/checkout/{product}")
    assert reply.code == 303, reply.body
    return order_row(out_trade_no_of(location(reply)))


async def post(http_client, base_url, body):
    reply = await http_client.fetch(base_url + "/wxpay/notify", method="POST", body=body,
                                    headers={"Content-Type": "text/xml"}, raise_error=False)
    assert reply.code == 200, reply.body
    return decode_xml(reply.body)


async def two_orders_the_first_paid_by_tx(http_client, base_url, tp_settings):
    first = await new_order(http_client, tp_settings)
    # Another product: the same payer's open order for one product is reused.
    second = await new_order(http_client, tp_settings, "coach-101")
    ok = await post(http_client, base_url, signed_notify(notify_fields(first, transaction_id=TX),
                                                         KEY))
    assert ok["return_code"] == "SUCCESS"
    return first, second


@pytest.mark.gen_test
async def test_transaction_id_of_another_order_is_refused_with_one_alert(
        http_client, base_url, tp_settings, caplog):
    first, second = await two_orders_the_first_paid_by_tx(http_client, base_url, tp_settings)
    before = (order_snapshot(first.out_trade_no), order_snapshot(second.out_trade_no))
    events = Event.select().count()

    caplog.clear()
    caplog.set_level(logging.DEBUG)
    for _ in range(3):  # WeChat repeats it: each repeat is refused the same way
        reply = await post(http_client, base_url,
                           signed_notify(notify_fields(second, transaction_id=TX), KEY))
        assert reply["return_code"] == "FAIL"
        assert reply["return_msg"] == "transaction_id already used by another order"
    assert (order_snapshot(first.out_trade_no), order_snapshot(second.out_trade_no)) == before
    assert Event.select().count() == events
    refused = Notification.select().where((Notification.out_trade_no == second.out_trade_no)
                                          & (Notification.outcome == "refused"))
    assert refused.count() == 3 and first.out_trade_no in refused.first().reason

    mine = [r for r in caplog.records if r.name.startswith("tornpay")]
    assert not [r for r in mine if r.exc_info], "no traceback"
    alerts = [r for r in mine if "ALERT" in r.getMessage()]
    assert len(alerts) == 3 and all(r.levelno == logging.ERROR for r in alerts)
    assert all(second.out_trade_no in r.getMessage() and TX in r.getMessage() for r in alerts)
    # One line per notify: the ALERT, not an ALERT plus a "temporary failure" or a warning.
    per_notify = [r for r in mine if r.levelno >= logging.WARNING]
    assert per_notify == alerts


@pytest.mark.gen_test
async def test_a_payment_needs_no_savepoint_and_no_separate_plugin_lookup(
        http_client, base_url, tp_settings, monkeypatch):
    # Each statement is a round trip on PostgreSQL: the pay UPDATE's own guard
    # replaces the savepoint, and the Delivery INSERT looks the plugins up itself.
    order = await new_order(http_client, tp_settings)
    db = database_proxy.obj
    statements, real = [], db.execute_sql

    def spy(sql, params=None, *args, **kwargs):
        statements.append(sql)
        return real(sql, params, *args, **kwargs)

    monkeypatch.setattr(db, "execute_sql", spy)
    reply = await post(http_client, base_url, signed_notify(notify_fields(order), KEY))
    monkeypatch.undo()
    assert reply["return_code"] == "SUCCESS"
    assert order_row(order.out_trade_no).state == "PAID"
    pay = [s for s in statements
           if s.startswith('UPDATE "tornpay_order"') and '"transaction_id" = ' in s]
    assert len(pay) == 1 and "NOT EXISTS" in pay[0]
    assert not [s for s in statements if "SAVEPOINT" in s.upper()]
    assert not [s for s in statements if s.startswith("SELECT") and '"on_paid"' in s]
    assert [s for s in statements if s.startswith('INSERT INTO "tornpay_delivery" (')
            and "SELECT" in s]


@pytest.mark.gen_test
async def test_a_reuse_the_guard_did_not_see_changes_nothing(
        http_client, base_url, tp_settings, monkeypatch):
    # Two orders paid with one transaction_id in the same instant: the guard of
    # the later UPDATE cannot see the other's uncommitted row, and the unique
    # index stops it. Provoked here by switching the guard off.
    _, second = await two_orders_the_first_paid_by_tx(http_client, base_url, tp_settings)
    real = transitions.pay_in_transaction
    monkeypatch.setattr(transitions, "pay_in_transaction",
                        lambda *a, **kw: real(*a, **dict(kw, only_unused_transaction=False)))
    before = order_snapshot(second.out_trade_no), Event.select().count()
    reply = await post(http_client, base_url,
                       signed_notify(notify_fields(second, transaction_id=TX), KEY))
    assert reply["return_code"] == "FAIL"
    # SQLite undoes just the statement and refuses; PostgreSQL has aborted the
    # transaction, so it answers FAIL and WeChat's retry meets the guard.
    expected = ("temporary failure, retry" if is_postgres(database_proxy.obj)
                else "transaction_id already used by another order")
    assert reply["return_msg"] == expected
    assert (order_snapshot(second.out_trade_no), Event.select().count()) == before
