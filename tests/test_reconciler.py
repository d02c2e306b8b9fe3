"""The reconciler against a fake pay client: pays, cancels, closes expired orders, backs off."""

import pytest

from helpers_orders import RecordingPlugin, make_order, make_settings
from tornpay.hooks import HookManager
from tornpay.orders.dispatcher import Dispatcher
from tornpay.orders.reconciler import Reconciler, claim_stale_orders
from tornpay.protocol.errors import BusinessError, TransportError
from tornpay.storage.models import CLOSED, CREATED, PAID, PAYERROR, PREPAID, Event, Order, utcnow

ORDERS = {"reconcile_after_seconds": 60, "reconcile_interval_seconds": 0.05,
          "min_close_age_seconds": 300}


class FakePayClient:
    """Answers order_query / close_order from scripted replies and records the calls."""

    def __init__(self, trade_state="NOTPAY", close_error=None, query_error=None, total_fee=100):
        self.trade_state, self.total_fee = trade_state, total_fee
        self.close_error, self.query_error = close_error, query_error
        self.calls = []

    async def order_query(self, out_trade_no=None, transaction_id=None, sign_type=None,
                          appid=None):
        self.calls.append(("order_query", out_trade_no))
        if self.query_error:
            raise self.query_error
        reply = {"out_trade_no": out_trade_no, "trade_state": self.trade_state}
        if self.trade_state == "SUCCESS":
            reply.update(transaction_id="4200000001", total_fee=str(self.total_fee),
                         cash_fee=str(self.total_fee), time_end="20240102030405",
                         bank_type="CMC")
        return reply

    async def close_order(self, out_trade_no, sign_type=None, appid=None):
        self.calls.append(("close_order", out_trade_no))
        if self.close_error:
            err, self.close_error = self.close_error, None
            if err.err_code == "ORDERPAID":
                self.trade_state = "SUCCESS"
            raise err
        self.trade_state = "CLOSED"
        return {"result_code": "SUCCESS"}


@pytest.fixture
def hooks():
    manager = HookManager(make_settings())
    manager.register(RecordingPlugin(), name="rec")
    yield manager
    manager.close()


def reconciler(client, hooks, kicks=None, **orders):
    settings = make_settings(orders=dict(ORDERS, **orders))
    on_change = None if kicks is None else (lambda: kicks.append(1))
    return Reconciler(client, hooks, settings, owner_id="r1", on_change=on_change)


def state(no="T1"):
    return Order.get_by_id(no).state


@pytest.mark.gen_test
async def test_success_pays_once(db, hooks):
    make_order(age_seconds=120)
    kicks = []
    client = FakePayClient("SUCCESS")
    r = reconciler(client, hooks, kicks)
    assert await r.run_once() == 1
    assert state() == PAID and Order.get_by_id("T1").transaction_id == "4200000001"
    assert kicks == [1]
    assert await r.run_once() == 0  # PAID orders are not queried again
    assert Event.select().where(Event.hook == "on_paid").count() == 1


@pytest.mark.gen_test
async def test_amount_mismatch_is_not_paid(db, hooks):
    make_order(age_seconds=120)
    await reconciler(FakePayClient("SUCCESS", total_fee=1), hooks).run_once()
    assert state() == PREPAID


@pytest.mark.gen_test
@pytest.mark.parametrize("trade_state,expected", [("CLOSED", CLOSED), ("REVOKED", CLOSED),
                                                  ("PAYERROR", PAYERROR)])
async def test_closed_or_payerror_cancels(db, hooks, trade_state, expected):
    make_order(age_seconds=120)
    await reconciler(FakePayClient(trade_state), hooks).run_once()
    assert state() == expected
    assert Event.get().hook == "on_cancel"


@pytest.mark.gen_test
async def test_young_orders_are_not_queried(db, hooks):
    make_order(age_seconds=10)
    client = FakePayClient()
    assert await reconciler(client, hooks).run_once() == 0
    assert client.calls == []


@pytest.mark.gen_test
async def test_notpay_past_expiry_and_old_enough_is_closed_expired(db, hooks):
    make_order(age_seconds=400, expire_in_seconds=350)
    client = FakePayClient("NOTPAY")
    await reconciler(client, hooks).run_once()
    assert ("close_order", "T1") in client.calls
    assert state() == CLOSED and Order.get_by_id("T1").close_reason == "expired"


@pytest.mark.gen_test
async def test_expired_but_too_young_is_not_closed(db, hooks):
    make_order(age_seconds=120, expire_in_seconds=60)
    client = FakePayClient("NOTPAY")
    await reconciler(client, hooks).run_once()
    assert ("close_order", "T1") not in client.calls
    order = Order.get_by_id("T1")
    assert order.state == PREPAID and order.lease_owner is None


@pytest.mark.gen_test
async def test_next_check_when_closeorder_becomes_allowed(db, hooks):
    make_order(age_seconds=290, expire_in_seconds=60)
    await reconciler(FakePayClient("NOTPAY"), hooks).run_once()
    # The normal 60 s backoff would overshoot the 300 s closeorder rule by 50 s.
    wait = (Order.get_by_id("T1").next_check_at - utcnow()).total_seconds()
    assert 8 < wait <= 10.5


@pytest.mark.parametrize("close_error,ends", [(BusinessError("ORDERPAID", "paid"), PAID),
                                              (BusinessError("ORDERCLOSED", "closed"), CLOSED)],
                         ids=["ORDERPAID", "ORDERCLOSED"])
@pytest.mark.gen_test
async def test_close_finds_order_paid_or_already_closed(db, hooks, close_error, ends):
    make_order(age_seconds=400, expire_in_seconds=350)
    client = FakePayClient("NOTPAY", close_error=close_error)
    await reconciler(client, hooks).run_once()
    assert state() == ends


@pytest.mark.gen_test
async def test_created_order_unknown_to_wechat_is_closed(db, hooks):
    make_order(state=CREATED, age_seconds=120, last_error="TransportError: timeout")
    client = FakePayClient(query_error=BusinessError("ORDERNOTEXIST", "no such order"))
    await reconciler(client, hooks).run_once()
    assert state() == CLOSED and Order.get_by_id("T1").close_reason == "closed"


@pytest.mark.gen_test
async def test_created_order_without_error_is_left_alone(db, hooks):
    make_order(state=CREATED, age_seconds=120)
    client = FakePayClient()
    assert await reconciler(client, hooks).run_once() == 0


@pytest.mark.gen_test
async def test_errors_back_off(db, hooks):
    make_order(age_seconds=120)
    client = FakePayClient(query_error=TransportError("timeout"))
    r = reconciler(client, hooks)
    await r.run_once()
    first = Order.get_by_id("T1")
    assert first.state == PREPAID and first.check_attempts == 1 and first.lease_owner is None
    assert await r.run_once() == 0  # not due again yet
    Order.update(next_check_at=utcnow()).execute()
    await r.run_once()
    second = Order.get_by_id("T1")
    assert second.check_attempts == 2
    assert (second.next_check_at - utcnow()).total_seconds() > 100  # 60 s, then 120 s


def test_claim_lease_excludes_other_owner(db):
    make_order(age_seconds=120)
    assert claim_stale_orders("a", 60, 60) == ["T1"]
    assert claim_stale_orders("b", 60, 60) == []


@pytest.mark.gen_test
async def test_reconciled_payment_is_delivered(db, hooks):
    make_order(age_seconds=120)
    d = Dispatcher(hooks, make_settings(), owner_id="d1")
    await reconciler(FakePayClient("SUCCESS"), hooks).run_once()
    assert await d.run_once() == 1
    assert len(hooks.get_plugin("rec").hooks_called("on_paid")) == 1


@pytest.mark.gen_test
async def test_start_stop(db, hooks):
    import asyncio

    make_order(age_seconds=120)
    r = reconciler(FakePayClient("SUCCESS"), hooks)
    r.start()
    for _ in range(100):
        if state() == PAID:
            break
        await asyncio.sleep(0.01)
    await r.stop()
    assert state() == PAID
