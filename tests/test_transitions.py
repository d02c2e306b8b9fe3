"""The state transitions: each one, conditional updates winning once, outbox rows written."""

import asyncio
import json
import logging

import pytest

from helpers_orders import make_order, paid_fields
from tornpay.orders.trade_state import apply_trade_state
from tornpay.orders import transitions as t
from tornpay.orders.events import RefundView
from tornpay.storage.models import (CLOSED, CREATED, PAID, PAYERROR, PREPAID, Delivery, Event,
                                    Order)


def names(hook):
    return ["a", "b"] if hook in ("on_paid", "on_cancel", "on_refund") else []


def state(no="T1"):
    return Order.get_by_id(no).state


def test_mark_prepaid_then_refresh(db):
    make_order(state=CREATED, last_error="timeout")
    assert t.mark_prepaid("T1", "wx1", "<xml/>")
    order = Order.get_by_id("T1")
    assert (order.state, order.prepay_id, order.last_error) == (PREPAID, "wx1", None)
    assert t.mark_prepaid("T1", "wx2", "<xml/>")
    assert Order.get_by_id("T1").prepay_id == "wx2"


def test_mark_prepaid_refused_when_paid(db):
    make_order(state=PAID)
    assert not t.mark_prepaid("T1", "wx1", "<xml/>")


def test_record_error(db):
    make_order(state=CREATED)
    t.record_error("T1", "SYSTEMERROR")
    assert Order.get_by_id("T1").last_error == "SYSTEMERROR"


def test_mark_paid_once_with_event_and_deliveries(db):
    make_order()
    assert t.mark_paid("T1", hooks=names, **paid_fields())
    assert not t.mark_paid("T1", hooks=names, **paid_fields())
    order = Order.get_by_id("T1")
    assert order.state == PAID and order.transaction_id == "42000000000000000001"
    assert order.cash_fee == 100 and order.bank_type == "CMC"
    assert str(order.paid_at) == "2024-01-01 19:04:05"  # Beijing time_end in UTC
    event = Event.get()
    assert event.hook == "on_paid" and json.loads(event.payload) == {"source": "notify"}
    assert sorted(d.id for d in Delivery.select()) == [f"{event.id}:a", f"{event.id}:b"]


def test_event_ids_are_unique_and_in_time_order(db):
    # Time-ordered keys append to the event and delivery indexes (fewer pages
    # written per commit, bench/README.md); the random tail keeps them unique.
    import re
    import time

    from tornpay.orders.outbox import new_event_id

    ids = []
    for _ in range(3):
        ids += [new_event_id() for _ in range(200)]
        time.sleep(0.002)
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids) and len(set(ids)) == len(ids)
    assert [i[:14] for i in ids] == sorted(i[:14] for i in ids)
    assert ids[0][:14] < ids[200][:14] < ids[400][:14]


def test_mark_paid_accepts_hook_manager_like_object(db):
    make_order()

    class Hooks:
        def plugin_names(self, hook):
            return ["only"]

    assert t.mark_paid("T1", hooks=Hooks(), **paid_fields())
    assert [d.plugin for d in Delivery.select()] == ["only"]


def test_mark_paid_after_local_close_keeps_the_payment(db, caplog):
    make_order()
    assert t.mark_closed("T1", "expired", hooks=names)
    with caplog.at_level(logging.WARNING):
        assert t.mark_paid("T1", hooks=names, **paid_fields())
    assert state() == PAID
    assert "after it was closed locally" in caplog.text
    assert [e.hook for e in Event.select().order_by(Event.created_at)] == ["on_cancel", "on_paid"]


def test_paying_learns_a_missing_payer_and_keeps_a_known_one(db):
    make_order("N1", openid="", trade_type="NATIVE")
    make_order("J1", openid="o-buyer")
    for number in ("N1", "J1"):
        assert t.mark_paid(number, hooks=names, openid="o-scanner", **paid_fields(
            transaction_id=f"42000000000000000000000000{number}"))
    assert Order.get_by_id("N1").openid == "o-scanner"  # SPEC §9: learnt from the payment
    assert Order.get_by_id("J1").openid == "o-buyer"
    make_order("N2", openid="", trade_type="NATIVE")
    assert t.mark_paid("N2", hooks=names, openid=None, **paid_fields(
        transaction_id="4200000000000000000000000N2"))
    order = Order.get_by_id("N2")
    assert (order.state, order.openid, order.transaction_id) == (
        PAID, "", "4200000000000000000000000N2")
    assert not t.mark_paid("N2", hooks=names, **paid_fields())  # already paid: no second move


def test_mark_paid_from_payerror(db):
    make_order()
    assert t.mark_payerror("T1", hooks=names)
    assert state() == PAYERROR
    assert t.mark_paid("T1", hooks=names, **paid_fields())


def test_mark_closed_once(db):
    make_order()
    assert t.mark_closed("T1", "user_cancelled", hooks=names)
    assert not t.mark_closed("T1", "expired", hooks=names)
    assert state() == CLOSED
    event = Event.get()
    assert event.hook == "on_cancel" and json.loads(event.payload) == {"reason": "user_cancelled"}
    assert Delivery.select().count() == 2


def test_mark_closed_rejects_unknown_reason(db):
    make_order()
    with pytest.raises(ValueError):
        t.mark_closed("T1", "bored", hooks=names)


def test_paid_order_cannot_be_closed_or_payerror(db):
    make_order(state=PAID)
    assert not t.mark_closed("T1", "expired", hooks=names)
    assert not t.mark_payerror("T1", hooks=names)
    assert Event.select().count() == 0


def test_write_event_for_refund(db):
    make_order(state=PAID)
    refund = RefundView("R1", 50, "5000")
    with db.atomic():
        event_id = t.write_event("T1", "on_refund", {"refund": refund.as_payload()}, names)
    assert json.loads(Event.get_by_id(event_id).payload)["refund"]["refund_fee"] == 50
    assert Delivery.select().count() == 2


@pytest.mark.gen_test
async def test_interleaved_duplicate_payments_on_one_loop_pay_once(db):
    # Interleaved on one IOLoop, not parallel: test_concurrent_threads_pay_once races threads.
    make_order()

    async def notify(i):
        await asyncio.sleep(0)
        return t.mark_paid("T1", hooks=names, **paid_fields())

    results = await asyncio.gather(*(notify(i) for i in range(20)))
    assert results.count(True) == 1
    assert Event.select().where(Event.hook == "on_paid").count() == 1
    assert Delivery.select().count() == 2


def test_concurrent_threads_pay_once(db):
    from concurrent.futures import ThreadPoolExecutor

    make_order()

    def pay(_):
        try:
            return t.mark_paid("T1", hooks=names, **paid_fields())
        finally:
            db.close()

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(pay, range(16)))
    assert results.count(True) == 1
    assert Event.select().count() == 1


@pytest.mark.parametrize("fields,expected", [
    ({"trade_state": "SUCCESS", "total_fee": "100", "transaction_id": "42", "time_end":
      "20240102030405", "bank_type": "CMC", "cash_fee": "100"}, PAID),
    ({"trade_state": "CLOSED"}, CLOSED),
    ({"trade_state": "REVOKED"}, CLOSED),
    ({"trade_state": "PAYERROR"}, PAYERROR),
    ({"trade_state": "NOTPAY"}, PREPAID),
    ({"trade_state": "USERPAYING"}, PREPAID),
])
def test_apply_trade_state(db, fields, expected):
    make_order()
    assert apply_trade_state("T1", dict(fields, out_trade_no="T1"), names) == \
        fields["trade_state"]
    assert state() == expected


def test_apply_trade_state_amount_mismatch(db, caplog):
    make_order()
    fields = {"trade_state": "SUCCESS", "total_fee": "1", "transaction_id": "42"}
    assert apply_trade_state("T1", fields, names) == "AMOUNT_MISMATCH"
    assert state() == PREPAID
    assert "ALERT" in caplog.text


def test_apply_trade_state_transaction_of_another_order(db, caplog):
    make_order("T0")
    assert t.mark_paid("T0", **paid_fields(7), hooks=names)
    make_order()
    fields = {"trade_state": "SUCCESS", "total_fee": "100", "out_trade_no": "T1",
              "transaction_id": paid_fields(7)["transaction_id"]}
    for _ in range(2):  # the reconciler asks again: each answer is refused the same way
        assert apply_trade_state("T1", fields, names) == "TRANSACTION_REUSED"
    assert state() == PREPAID and Event.select().count() == 1
    alerts = [r for r in caplog.records if "ALERT" in r.getMessage()]
    assert len(alerts) == 2 and all("T0" in r.getMessage() and not r.exc_info for r in alerts)
