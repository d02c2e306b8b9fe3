"""The dispatcher's bookkeeping of successful calls: one writer job per turn, failures kept apart."""

import pytest

from helpers_orders import AsyncRecordingPlugin, make_order, make_settings, paid_fields
from tornpay.hooks import HookManager
from tornpay.orders import dispatcher as dispatcher_module
from tornpay.orders import transitions as t
from tornpay.orders.dispatcher import Dispatcher
from tornpay.storage.models import DONE, PENDING, Delivery, DeliveryAttempt


@pytest.fixture
def hooks():
    manager = HookManager(make_settings())
    yield manager
    manager.close()


def pay_orders(hooks, n):
    rec = AsyncRecordingPlugin()
    hooks.register(rec, name="rec")
    for i in range(n):
        make_order(f"T{i}")
        t.mark_paid(f"T{i}", hooks=hooks, **paid_fields(i + 1))
    return rec


@pytest.fixture
def writes(monkeypatch):
    """The writer jobs the dispatcher hands in, by function name."""
    seen = []
    real = dispatcher_module.run_write

    async def counting(dbx, fn, *args, **kwargs):
        seen.append(fn.__name__)
        return await real(dbx, fn, *args, **kwargs)

    monkeypatch.setattr(dispatcher_module, "run_write", counting)
    return seen


@pytest.mark.gen_test
async def test_calls_done_together_share_one_writer_job(db, hooks, writes):
    rec = pay_orders(hooks, 5)
    d = Dispatcher(hooks, make_settings(), owner_id="me")
    assert await d.run_once() == 5
    assert len(rec.hooks_called("on_paid")) == 5
    assert writes.count("_done_many") == 1 and "_done" not in writes
    assert Delivery.select().where(Delivery.state == DONE).count() == 5
    rows = list(DeliveryAttempt.select())
    assert len(rows) == 5 and {r.outcome for r in rows} == {"done"}
    assert all(r.finished_at >= r.started_at for r in rows)
    assert Delivery.select().where(Delivery.lease_owner.is_null(False)).count() == 0


@pytest.mark.gen_test
async def test_one_failing_row_keeps_the_others_done(db, hooks, writes, monkeypatch, caplog):
    pay_orders(hooks, 4)
    d = Dispatcher(hooks, make_settings(), owner_id="me")
    bad = Delivery.select().join_from(Delivery, Delivery.event.rel_model).where(
        Delivery.event.rel_model.out_trade_no == "T2").get().id
    real_done = Dispatcher._done

    def flaky(self, delivery, *args):
        if delivery.id == bad:
            raise RuntimeError("disk said no")
        return real_done(self, delivery, *args)

    monkeypatch.setattr(Dispatcher, "_done", flaky)
    await d.run_once()
    # The batch failed as a whole, then each ran alone: only the bad one is left.
    assert writes.count("_done_many") == 1 and writes.count("flaky") == 4
    states = {r.id: r.state for r in Delivery.select()}
    assert states.pop(bad) == PENDING
    assert set(states.values()) == {DONE}
    assert DeliveryAttempt.select().count() == 3
    assert f"delivery {bad}: bookkeeping failed" in caplog.text
