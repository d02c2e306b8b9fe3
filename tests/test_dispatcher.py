"""The outbox dispatcher: once-only delivery, retries with backoff, timeouts, leases, isolation."""

import asyncio
import datetime
import logging
import threading
import time

import pytest

from helpers_orders import (AsyncRecordingPlugin, RecordingPlugin, in_threads, make_order,
                            make_settings, paid_fields)
from tornpay.hooks import HookManager
from tornpay.orders import attempts
from tornpay.orders import transitions as t
from tornpay.orders.delivery_views import list_deliveries
from tornpay.orders.dispatcher import Dispatcher, claim_due_deliveries, retry_delivery
from tornpay.orders.events import RefundView
from tornpay.storage.models import DONE, FAILED, PAID, PENDING, Delivery, utcnow


@pytest.fixture
def hooks():
    manager = HookManager(make_settings())
    yield manager
    manager.close()


def dispatcher(hooks, owner="me", **deliveries):
    return Dispatcher(hooks, make_settings(deliveries=deliveries), owner_id=owner)


def pay_t1(hooks, **plugins):
    """Register ``plugins`` (by name) and pay order T1: one on_paid delivery per plugin is due."""
    for name, plugin in plugins.items():
        hooks.register(plugin, name=name)
    make_order()
    t.mark_paid("T1", hooks=hooks, **paid_fields())


async def drain(d, rounds=50):
    for _ in range(rounds):
        await d.run_once()
        if not Delivery.select().where(Delivery.state == PENDING).exists():
            return
        await asyncio.sleep(0.01)


@pytest.mark.gen_test
async def test_hook_on_paid_once_for_many_duplicate_notifies(db, hooks):
    rec = RecordingPlugin()
    hooks.register(rec, name="rec")
    make_order()
    # Ten threads released together, each on its own connection: a real race.
    results = in_threads(10, lambda i: t.mark_paid("T1", hooks=hooks, **paid_fields()))
    assert results.count(True) == 1
    d = dispatcher(hooks)
    await drain(d)
    await drain(d)
    calls = rec.hooks_called("on_paid")
    assert len(calls) == 1
    order = calls[0]["order"]
    assert order.state == PAID and order.total_fee == 100
    assert order.delivery_id == Delivery.get().id
    assert Delivery.get().state == DONE and Delivery.get().attempts == 1


@pytest.mark.gen_test
async def test_hook_on_cancel_gets_reason(db, hooks):
    rec = AsyncRecordingPlugin()
    hooks.register(rec, name="rec")
    make_order()
    t.mark_closed("T1", "expired", hooks=hooks)
    await drain(dispatcher(hooks))
    (call,) = rec.hooks_called("on_cancel")
    assert call["reason"] == "expired" and call["order"].state == "CLOSED"


@pytest.mark.gen_test
async def test_hook_on_refund_gets_refund_view(db, hooks):
    rec = RecordingPlugin()
    hooks.register(rec, name="rec")
    make_order(state=PAID)
    with db.atomic():
        t.write_event("T1", "on_refund", {"refund": RefundView("R1", 40, "50").as_payload()},
                      hooks)
    await drain(dispatcher(hooks))
    (call,) = rec.hooks_called("on_refund")
    assert call["refund"] == RefundView("R1", 40, "50")


@pytest.mark.gen_test
async def test_raises_twice_then_succeeds(db, hooks):
    rec = RecordingPlugin(fail={"on_paid": 2})
    pay_t1(hooks, rec=rec)
    d = dispatcher(hooks)
    await drain(d)
    assert len(rec.hooks_called("on_paid")) == 3
    delivery = Delivery.get()
    assert (delivery.state, delivery.attempts) == (DONE, 3)
    ids = {c["order"].delivery_id for c in rec.hooks_called("on_paid")}
    assert ids == {delivery.id}  # stable across retries
    # Done: no stale error on the row; the history keeps both failures and the success.
    assert delivery.last_error is None
    history = [(a.outcome, a.error) for a in attempts.history([delivery.id])[delivery.id]]
    assert [h[0] for h in history] == ["error", "error", "done"]
    assert all("failing on purpose" in h[1] for h in history[:2]) and history[2][1] is None


@pytest.mark.gen_test
async def test_backoff_schedule(db, hooks):
    rec = RecordingPlugin(fail={"on_paid": 5})
    pay_t1(hooks, rec=rec)
    d = dispatcher(hooks, first_retry_seconds=10, max_retry_seconds=15)
    delays = []
    for _ in range(3):
        Delivery.update(next_attempt_at=utcnow()).execute()
        before = utcnow()
        await d.run_once()
        delays.append(round((Delivery.get().next_attempt_at - before).total_seconds()))
    assert delays == [10, 15, 15]


@pytest.mark.gen_test
async def test_hanging_plugin_times_out_while_another_is_prompt(db, hooks):
    prompt = []
    calls = {"hang": 0}

    async def hang(order):
        calls["hang"] += 1
        await asyncio.sleep(30)

    async def quick(order):
        prompt.append(time.monotonic())

    pay_t1(hooks, hang=type("H", (), {"on_paid": staticmethod(hang)})(),
           quick=type("Q", (), {"on_paid": staticmethod(quick)})())
    d = dispatcher(hooks, timeout_seconds=0.3)
    d.start()
    start = time.monotonic()
    try:
        while not prompt:
            await asyncio.sleep(0.01)
        assert prompt[0] - start < 0.2  # not held up by the hanging plugin
        while calls["hang"] < 2:
            await asyncio.sleep(0.02)
    finally:
        await d.stop(grace=0)
    hung = Delivery.get(Delivery.plugin == "hang")
    assert hung.state == PENDING and hung.attempts >= 1
    assert "timeout" in hung.last_error
    assert Delivery.get(Delivery.plugin == "quick").state == DONE


@pytest.mark.gen_test
async def test_blocking_sync_plugin_does_not_block_the_loop(db, hooks):
    release = threading.Event()
    other = []
    pay_t1(hooks, blocking=type("B", (), {"on_paid": lambda self, order: release.wait(5)})(),
           other=type("O", (), {"on_paid": lambda self, order: other.append(1)})())
    d = dispatcher(hooks, timeout_seconds=5)
    run = asyncio.ensure_future(d.run_once())
    for _ in range(100):
        if other:
            break
        await asyncio.sleep(0.01)  # the loop keeps turning
    assert other == [1] and not run.done()
    release.set()
    assert await run == 2
    assert Delivery.select().where(Delivery.state == DONE).count() == 2


@pytest.mark.gen_test
async def test_max_attempts_then_failed_then_retry(db, hooks):
    rec = RecordingPlugin(fail={"on_paid": 3})
    pay_t1(hooks, rec=rec)
    d = dispatcher(hooks, max_attempts=3)
    await drain(d)
    delivery = Delivery.get()
    assert (delivery.state, delivery.attempts) == (FAILED, 3)
    assert [row["state"] for row in list_deliveries(FAILED)] == [FAILED]
    assert await d.run_once() == 0  # parked: never picked up on its own
    assert retry_delivery() == 1
    await drain(d)
    assert Delivery.get().state == DONE
    assert len(rec.hooks_called("on_paid")) == 4
    assert retry_delivery(Delivery.get().id) == 0  # done is never repeated


@pytest.mark.gen_test
async def test_two_dispatchers_never_deliver_twice(db, hooks):
    rec = RecordingPlugin()
    hooks.register(rec, name="rec")
    for i in range(20):
        make_order(f"T{i}")
        t.mark_paid(f"T{i}", hooks=hooks, **paid_fields(i))
    a, b = dispatcher(hooks, owner="a"), dispatcher(hooks, owner="b")
    await asyncio.gather(drain(a), drain(b), drain(a), drain(b))
    ids = [c["order"].delivery_id for c in rec.hooks_called("on_paid")]
    assert len(ids) == 20 and len(set(ids)) == 20


def test_claim_respects_live_leases_and_reclaims_expired_ones(db, hooks):
    pay_t1(hooks, rec=RecordingPlugin())
    assert len(claim_due_deliveries("a", lease_seconds=60)) == 1
    assert claim_due_deliveries("b", lease_seconds=60) == []
    # Owner "a" died: once its lease has expired, "b" takes the row.
    Delivery.update(lease_until=utcnow() - datetime.timedelta(seconds=1)).execute()
    assert len(claim_due_deliveries("b", lease_seconds=60)) == 1
    assert Delivery.get().lease_owner == "b"


@pytest.mark.gen_test
async def test_leased_delivery_resumes_after_owner_died(db, hooks):
    rec = RecordingPlugin()
    pay_t1(hooks, rec=rec)
    claim_due_deliveries("dead-process", lease_seconds=0.2)
    d = dispatcher(hooks, owner="restarted")
    assert await d.run_once() == 0
    await asyncio.sleep(0.25)
    assert await d.run_once() == 1
    assert len(rec.hooks_called("on_paid")) == 1


@pytest.mark.gen_test
async def test_start_resumes_pending_and_kick_wakes(db, hooks):
    rec = AsyncRecordingPlugin()
    hooks.register(rec, name="rec")
    make_order("T1")
    t.mark_paid("T1", hooks=hooks, **paid_fields(1))  # pending from "before the restart"
    d = dispatcher(hooks, poll_interval_seconds=30)
    d.start()
    try:
        for _ in range(100):
            if rec.hooks_called("on_paid"):
                break
            await asyncio.sleep(0.01)
        make_order("T2")
        t.mark_paid("T2", hooks=hooks, **paid_fields(2))
        d.kick()
        for _ in range(100):
            if len(rec.hooks_called("on_paid")) == 2:
                break
            await asyncio.sleep(0.01)
    finally:
        await d.stop()
    assert len(rec.hooks_called("on_paid")) == 2


@pytest.mark.gen_test
async def test_events_of_one_order_reach_a_plugin_in_order(db, hooks):
    rec = RecordingPlugin(fail={"on_cancel": 1})
    hooks.register(rec, name="rec")
    make_order()
    t.mark_closed("T1", "expired", hooks=hooks)
    t.mark_paid("T1", hooks=hooks, **paid_fields())
    d = dispatcher(hooks)
    await drain(d)
    assert [h for h, _ in rec.calls] == ["on_cancel", "on_cancel", "on_paid"]


@pytest.mark.gen_test
async def test_stop_releases_leases(db, hooks):
    async def slow(order):
        await asyncio.sleep(10)

    pay_t1(hooks, slow=type("S", (), {"on_paid": staticmethod(slow)})())
    d = dispatcher(hooks, timeout_seconds=20)
    d.start()
    for _ in range(100):
        if Delivery.get().lease_owner:
            break
        await asyncio.sleep(0.01)
    await d.stop(grace=0.05)
    delivery = Delivery.get()
    assert (delivery.state, delivery.lease_owner, delivery.attempts) == (PENDING, None, 0)


@pytest.mark.gen_test
async def test_repeated_failure_logs_one_traceback_then_one_line_per_attempt(db, hooks, caplog):
    rec = RecordingPlugin(fail={"on_paid": 4})
    pay_t1(hooks, rec=rec)
    caplog.set_level(logging.INFO, logger="tornpay.orders.dispatcher")
    await drain(dispatcher(hooks, max_attempts=4))
    delivery = Delivery.get()
    assert delivery.state == FAILED
    mine = [r for r in caplog.records if r.name == "tornpay.orders.dispatcher"
            and delivery.id in r.getMessage() and r.levelno == logging.WARNING]
    assert len(mine) == 4  # one WARNING per failed attempt ...
    assert [bool(r.exc_info) for r in mine] == [True, False, False, False]  # ... one traceback
    assert all("\n" not in r.getMessage() for r in mine)
    assert "failing on purpose" in mine[-1].getMessage()
    # The database keeps every attempt with its error (retries included).
    assert [a.outcome for a in attempts.history([delivery.id])[delivery.id]] == ["error"] * 4
