"""Cross-connection safety of transitions and claims, on SQLite and (mark postgres) PostgreSQL."""

import asyncio
import collections
import datetime
import threading
import time

import peewee
import pytest

from helpers_orders import RecordingPlugin, make_settings, paid_fields
from proc_helpers import bind_db, database_url, make_prepaid, needs_pg, pg_schema
from tornpay.hooks import HookManager
from tornpay.orders import transitions as t
from tornpay.orders.dispatcher import Dispatcher, claim_due_deliveries
from tornpay.orders.reconciler import claim_stale_orders
from tornpay.storage import migrations
from tornpay.storage.db import database_proxy
from tornpay.storage.models import DONE, PAID, PENDING, Delivery, Event, Order, Refund, utcnow

BACKENDS = ["sqlite", pytest.param("postgres", marks=[pytest.mark.postgres, needs_pg])]


@pytest.fixture(params=BACKENDS)
def db(request, tmp_path):
    with database_url(request.param, tmp_path) as url:
        db = bind_db(url)
        yield db
        db.close()


def one_plugin(hook):
    return ["rec"]


def in_threads(n, target):
    """Run ``target(i)`` in ``n`` threads released together; each uses its own connection."""
    barrier = threading.Barrier(n)
    results, errors = [None] * n, []

    def run(i):
        try:
            barrier.wait()
            results[i] = target(i)
        except Exception as exc:  # reported below, with the thread's traceback lost
            errors.append(exc)
        finally:
            database_proxy.obj.close()  # this thread's connection

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert not errors, errors
    return results


@needs_pg
@pytest.mark.postgres
def test_schema_on_postgres():
    with pg_schema() as url:
        db = bind_db(url)
        try:
            columns = {c.name: c.data_type for c in db.get_columns("tornpay_order")}
            assert columns["created_at"] == "timestamp without time zone"
            assert columns["out_trade_no"] == "character varying"
            fks = db.get_foreign_keys("tornpay_refund")
            assert [(f.column, f.dest_table) for f in fks] == [("out_trade_no", "tornpay_order")]
            stamp = datetime.datetime(2024, 6, 1, 12, 31, 10, 123456)
            make_prepaid("P1", created_at=stamp)
            assert Order.get_by_id("P1").created_at == stamp  # naive UTC, microseconds kept
            with pytest.raises(peewee.IntegrityError):
                with db.atomic():
                    Refund.create(out_refund_no="R1", order="NOPE", refund_fee=1)
            bind_db(url)  # a second start changes nothing
            assert migrations.current_version(db) == migrations.latest_version()
        finally:
            database_proxy.obj.close()


@needs_pg
@pytest.mark.postgres
def test_processes_starting_together_create_the_schema_once():
    with pg_schema() as url:
        bind_db(url)  # bind once so threads share the Database object
        from tornpay.storage.models import ALL_MODELS

        tables = ["tornpay_schema_version"] + [m._meta.table_name for m in ALL_MODELS]
        database_proxy.obj.execute_sql(f"DROP TABLE {', '.join(tables)}")
        from tornpay.storage.db import create_tables
        in_threads(6, lambda i: create_tables())
        assert migrations.current_version(database_proxy.obj) == migrations.latest_version()
        assert [row.version for row in migrations.SchemaVersion.select()] == sorted(
            version for version, _, _ in migrations.MIGRATIONS)
        database_proxy.obj.close()


def test_payment_wins_once_across_connections(db):
    for i in range(20):
        make_prepaid(f"C{i}")

    def pay_all(worker):
        return [n for n in range(20) if t.mark_paid(f"C{n}", hooks=one_plugin,
                                                    **paid_fields(n))]

    wins = in_threads(8, pay_all)
    counts = collections.Counter(n for won in wins for n in won)
    assert sorted(counts) == list(range(20)) and set(counts.values()) == {1}
    assert Order.select().where(Order.state == PAID).count() == 20
    assert Event.select().count() == 20 and Delivery.select().count() == 20


def test_delivery_claims_are_exclusive_and_leases_expire(db):
    for i in range(60):
        make_prepaid(f"D{i}")
        t.mark_paid(f"D{i}", hooks=one_plugin, **paid_fields(i))

    def claim(worker):
        got = []
        while True:
            ids = claim_due_deliveries(f"owner-{worker}", lease_seconds=30, limit=7)
            if not ids:
                return got
            got.extend(ids)

    claimed = [d for ids in in_threads(6, claim) for d in ids]
    assert len(claimed) == 60 and len(set(claimed)) == 60
    assert claim_due_deliveries("late", lease_seconds=30) == []
    # A dead owner's short lease runs out and the rows come back.
    dead = Delivery.get_by_id(claimed[0]).lease_owner
    held = {d.id for d in Delivery.select().where(Delivery.lease_owner == dead)}
    Delivery.update(lease_until=utcnow() - datetime.timedelta(seconds=1)).where(
        Delivery.lease_owner == dead).execute()
    assert set(claim_due_deliveries("late", lease_seconds=30)) == held


def test_reconciler_claims_are_exclusive(db):
    old = utcnow() - datetime.timedelta(hours=2)
    for i in range(40):
        make_prepaid(f"R{i}", created_at=old)

    def claim(worker):
        got = []
        while True:
            nos = claim_stale_orders(f"owner-{worker}", reconcile_after=60, lease_seconds=30,
                                     limit=3)
            if not nos:
                return got
            got.extend(nos)

    claimed = [no for nos in in_threads(5, claim) for no in nos]
    assert sorted(claimed) == sorted(f"R{i}" for i in range(40))


def test_two_dispatchers_in_two_threads_deliver_once(db):
    calls, lock = [], threading.Lock()

    class Shared(RecordingPlugin):
        def on_paid(self, order):
            time.sleep(0.002)
            with lock:
                calls.append(order.delivery_id)

    for i in range(50):
        make_prepaid(f"W{i}")
        t.mark_paid(f"W{i}", hooks=one_plugin, **paid_fields(i))

    def run_dispatcher(worker):
        hooks = HookManager(make_settings())
        hooks.register(Shared(), name="rec")
        dispatcher = Dispatcher(hooks, make_settings(), owner_id=f"proc-{worker}")

        async def drain():
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                await dispatcher.run_once()
                if not Delivery.select().where(Delivery.state == PENDING).exists():
                    return
                await asyncio.sleep(0.01)

        try:
            asyncio.run(drain())
        finally:
            hooks.close()

    in_threads(2, run_dispatcher)
    assert len(calls) == 50 and len(set(calls)) == 50
    assert Delivery.select().where(Delivery.state == DONE).count() == 50
    assert set(Delivery.select(Delivery.attempts).tuples()) == {(1,)}
