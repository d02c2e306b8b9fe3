"""SPEC §12: database waits never stall the IOLoop; group commit keeps every notify exactly-once."""

import asyncio
import contextlib
import subprocess
import sys
import threading

import peewee
import pytest
from tornado.httpclient import AsyncHTTPClient

from flow_helpers import (ALICE, Browser, notify_fields, order_snapshot, signed_notify,
                          wait_for)
from helpers_orders import make_order
from tornpay.orders import notify as notify_module
from tornpay.protocol.xmlcodec import decode_xml
from tornpay.storage.db import database_proxy, is_sqlite
from tornpay.storage.models import Event, Notification, Order

KEY = "192006250b4c09247ec02edce69f6a2d"

# Another process takes SQLite's write lock as the CLI, a backup or a plugin can.
HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("ROLLBACK")
"""


@contextlib.contextmanager
def external_lock(ctx):
    """Hold the write lock from another process (SQLite) or connection (PostgreSQL)."""
    url = ctx.settings.database.url
    if is_sqlite(ctx.db):
        proc = subprocess.Popen([sys.executable, "-c", HOLDER, url[len("sqlite:///"):]],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline().strip() == "locked"
            yield
        finally:
            proc.stdin.write("\n")
            proc.stdin.close()
            proc.wait(10)
            proc.stdout.close()
        return
    import psycopg2  # PostgreSQL: the orders table locked against writes, not reads

    conn = psycopg2.connect(url)
    try:
        conn.cursor().execute(f'LOCK TABLE "{Order._meta.table_name}" IN EXCLUSIVE MODE')
        yield
    finally:
        conn.rollback()
        conn.close()


def notify_body(out_trade_no):
    order = Order.get_by_id(out_trade_no)
    transaction_id = "42000023152024" + str(abs(hash(out_trade_no)) % 10 ** 14).zfill(14)
    return signed_notify(notify_fields(order, transaction_id=transaction_id), KEY)


@pytest.fixture
def send(http_server, base_url):
    client = AsyncHTTPClient(force_instance=True, max_clients=200)

    async def post(body):
        reply = await client.fetch(base_url + "/wxpay/notify", method="POST", body=body,
                                   headers={"Content-Type": "text/xml"}, raise_error=False,
                                   request_timeout=60)
        assert reply.code == 200, reply.body
        return decode_xml(reply.body)

    yield post
    client.close()


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("tp_overrides", [{"database": {"wait_timeout": 30}}])
async def test_pages_answer_while_a_notify_waits_for_a_lock(ctx, send, http_client, base_url):
    make_order("LOCK1", total_fee=9900)
    with external_lock(ctx):
        pending = asyncio.ensure_future(send(notify_body("LOCK1")))
        # The notify is waiting on the lock.
        await wait_for(lambda: ctx.dbx.submitted >= 1, timeout=30)
        for path in ("/", "/healthz", "/metrics"):
            reply = await http_client.fetch(base_url + path, raise_error=False)
            assert reply.code == 200, (path, reply.code)
        # The pages answered while the notify was still waiting on the lock.
        assert not pending.done()
        assert Order.get_by_id("LOCK1").state == "PREPAID"
    assert (await pending)["return_code"] == "SUCCESS"
    assert Order.get_by_id("LOCK1").state == "PAID"


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("tp_overrides", [{"database": {"wait_timeout": 0.3}}])
async def test_notify_that_cannot_get_the_database_fails_and_changes_nothing(ctx, send):
    make_order("LOCK2", total_fee=9900)
    body = notify_body("LOCK2")
    before = order_snapshot("LOCK2")
    with external_lock(ctx):
        reply = await send(body)
        assert reply == {"return_code": "FAIL", "return_msg": "temporary failure, retry"}
    assert order_snapshot("LOCK2") == before
    assert Event.select().count() == 0
    assert Notification.select().where(Notification.out_trade_no == "LOCK2").count() == 0
    # WeChat's retry, once the lock is gone, pays it once.
    assert (await send(body))["return_code"] == "SUCCESS"
    assert Order.get_by_id("LOCK2").state == "PAID"


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("tp_overrides", [{"database": {"wait_timeout": 0.3}}])
async def test_checkout_that_cannot_get_the_database_asks_to_try_again(ctx, http_client,
                                                                       tp_settings):
    browser = Browser(http_client, tp_settings.server.public_url)
    browser.set_openid(tp_settings, ALICE)
    with external_lock(ctx):
        reply = await browser.get("/wxpay/checkout/coach-101",
                                  headers={"Accept-Language": "zh-CN"})
    assert reply.code == 503 and "请稍后再试" in reply.body.decode()
    assert Order.select().count() == 0
    # Once the lock is gone the same request makes the order.
    assert (await browser.get("/wxpay/checkout/coach-101")).code == 303


@contextlib.contextmanager
def writer_held(ctx):
    """Occupy the writer so the next notifies queue up and are committed as groups."""
    gate = threading.Event()
    blocker = asyncio.ensure_future(ctx.dbx.write(gate.wait, 30))
    try:
        yield blocker
    finally:
        gate.set()


def check_paid_once(numbers, posts):
    for number in numbers:
        assert Order.get_by_id(number).state == "PAID"
        assert Event.select().where((Event.out_trade_no == number)
                                    & (Event.hook == "on_paid")).count() == 1
        outcomes = [n.outcome for n in Notification.select().where(
            Notification.out_trade_no == number)]
        assert outcomes.count("accepted") == 1 and len(outcomes) == posts


@pytest.mark.gen_test(timeout=90)
@pytest.mark.parametrize("grouped", [True, False])
@pytest.mark.parametrize("tp_overrides", [{"database": {"wait_timeout": 30, "pool_size": 4}}])
async def test_concurrent_duplicates_pay_once(ctx, send, grouped):
    numbers = [f"DUP{i:03d}" for i in range(20)]
    for number in numbers:
        make_order(number, total_fee=9900)
    bodies = [notify_body(number) for number in numbers for _ in range(3)]
    held = writer_held(ctx) if grouped else contextlib.nullcontext()
    with held:
        replies = [asyncio.ensure_future(send(body)) for body in bodies]
        if grouped:
            await wait_for(lambda: ctx.dbx.submitted >= len(bodies) + 1, timeout=30)
    replies = await asyncio.gather(*replies)
    assert all(r == {"return_code": "SUCCESS", "return_msg": "OK"} for r in replies)
    check_paid_once(numbers, 3)
    if grouped and ctx.dbx.group_max > 1:
        assert ctx.dbx.commits < ctx.dbx.jobs  # several notifies shared a commit


@pytest.mark.gen_test(timeout=90)
@pytest.mark.parametrize("tp_overrides", [{"database": {"wait_timeout": 30, "pool_size": 1}}])
async def test_a_failing_notify_never_takes_its_group_down(ctx, send, monkeypatch):
    numbers = [f"GRP{i:03d}" for i in range(10)]
    for number in numbers + ["BAD", "ONCE"]:
        make_order(number, total_fee=9900)
    real = notify_module.transitions.pay_in_transaction
    once_failed = []  # ONCE's own flag: BAD failing first must not spare ONCE its failure

    def flaky(out_trade_no, **kwargs):
        if out_trade_no == "BAD" or (out_trade_no == "ONCE" and not once_failed):
            if out_trade_no == "ONCE":
                once_failed.append(out_trade_no)
            real(out_trade_no, **kwargs)  # its writes happen, then the item fails
            raise peewee.OperationalError("injected failure")
        return real(out_trade_no, **kwargs)

    monkeypatch.setattr(notify_module.transitions, "pay_in_transaction", flaky)
    before = order_snapshot("BAD")
    everyone = numbers[:5] + ["BAD", "ONCE"] + numbers[5:]
    with writer_held(ctx):
        replies = [asyncio.ensure_future(send(notify_body(n))) for n in everyone]
        await wait_for(lambda: ctx.dbx.submitted >= len(everyone) + 1, timeout=30)
    replies = dict(zip(everyone, await asyncio.gather(*replies)))
    failure = {"return_code": "FAIL", "return_msg": "temporary failure, retry"}
    assert replies.pop("BAD") == failure
    assert once_failed == ["ONCE"]
    once = replies.pop("ONCE")
    if ctx.dbx.group_max > 1:  # SQLite: ONCE failed inside its group, then passed alone
        assert once["return_code"] == "SUCCESS"
    else:  # PostgreSQL commits each notify alone: its failure is its own answer
        assert once == failure
        assert (await send(notify_body("ONCE")))["return_code"] == "SUCCESS"  # WeChat's retry
    assert all(r["return_code"] == "SUCCESS" for r in replies.values())
    assert order_snapshot("BAD") == before
    assert Event.select().where(Event.out_trade_no == "BAD").count() == 0
    assert Notification.select().where(Notification.out_trade_no == "BAD").count() == 0
    check_paid_once(numbers + ["ONCE"], 1)
    if ctx.dbx.group_max > 1:  # SQLite: the others still shared commits
        assert ctx.dbx.commits < ctx.dbx.jobs


@pytest.mark.gen_test(timeout=30)
async def test_a_job_atomic_alone_is_its_own_transaction(ctx, http_server, monkeypatch):
    # http_server: it owns (and closes) the port pytest-tornado bound for ctx's base_url.
    # Its own db.atomic() is the whole transaction: on PostgreSQL no BEGIN of
    # the executor's around it, so no savepoint (two round trips) inside.
    db, in_job = database_proxy.obj, threading.local()
    statements, real = [], db.execute_sql

    def spy(sql, params=None, *args, **kwargs):
        if getattr(in_job, "active", False):  # not the registry's or the dispatcher's
            statements.append(sql.upper())
        return real(sql, params, *args, **kwargs)

    def note(reason, fail=False):
        in_job.active = True
        try:
            with db.atomic():
                for outcome in ("x", "y"):
                    Notification.create(kind="pay", out_trade_no="ALONE", remote_ip="",
                                        outcome=outcome, reason=reason)
                if fail:
                    raise RuntimeError("the second half failed")
        finally:
            in_job.active = False

    monkeypatch.setattr(db, "execute_sql", spy)
    await ctx.dbx.write(note, "kept", atomic_alone=True)
    with pytest.raises(RuntimeError):
        await ctx.dbx.write(note, "undone", fail=True, atomic_alone=True)
    monkeypatch.undo()
    rows = Notification.select().where(Notification.out_trade_no == "ALONE")
    assert sorted(r.reason for r in rows) == ["kept", "kept"]  # all or nothing, each time
    assert len([s for s in statements if s.startswith("INSERT")]) == 4
    if not is_sqlite(db):  # SQLite runs it in its group's transaction, as before
        assert [s for s in statements if "SAVEPOINT" in s] == []
