"""Compiled hot statements (storage.fastsql) store and find what the peewee queries do."""

import datetime
import logging
import types

import peewee
import pytest

from helpers_orders import make_settings
from proc_helpers import bind_db, database_url, notify_body
from tornpay.orders import dispatcher as d
from tornpay.orders import outbox, outbox_sql
from tornpay.orders import notify as n
from tornpay.orders import notify_apply, transition_sql
from tornpay.orders import transitions as t
from tornpay.orders.events import OrderView
from tornpay.storage import fastsql
from tornpay.storage.db import database_proxy, is_postgres
from tornpay.storage.models import (CLOSED, PAID, PENDING, PREPAID, Delivery, Event, KnownPlugin,
                                    Notification, Order, utcnow)


@pytest.fixture(params=["sqlite", "postgres"])
def db(request, tmp_path):
    with database_url(request.param, tmp_path) as url:
        database = bind_db(url)
        yield database
        database.close()


def raw(db, table, key_column, key):
    """The row as the driver returns it: what is stored, before any peewee decoding."""
    cursor = db.execute_sql(f'SELECT * FROM "{table}" WHERE "{key_column}" = {db.param}', (key,))
    return cursor.fetchone()


def order(no, state=PREPAID, **extra):
    now = datetime.datetime(2024, 1, 2, 3, 4, 5, 678)  # the same for every order: comparable rows
    return Order.create(out_trade_no=no, product_id="p", openid="o", body="b", total_fee=100,
                        state=state, created_at=now, updated_at=now,
                        expire_at=now + datetime.timedelta(hours=1), **extra)


def test_sql_in_each_databases_placeholder_style():
    stmt = fastsql.Statement("s", lambda: Order.select(Order.state).where(
        Order.out_trade_no == fastsql.param(Order.out_trade_no)).limit(fastsql.param("limit")))
    lite, _ = stmt.compiled(peewee.SqliteDatabase(":memory:"))
    pg, slots = stmt.compiled(peewee.PostgresqlDatabase("x"))
    assert lite.count("?") == 2 and "%s" not in lite
    assert pg.count("%s") == 2 and "?" not in pg
    assert [name for name, _ in slots] == ["out_trade_no", "limit"]


def test_a_frozen_timestamp_is_refused():
    # Notification.received_at defaults to utcnow(): left out, it would be
    # rendered once and written on every later call.
    stmt = fastsql.Statement("bad", lambda: Notification.insert(kind="pay", outcome="x"))
    with pytest.raises(ValueError, match="constant timestamp"):
        stmt.compiled(peewee.SqliteDatabase(":memory:"))


def test_event_and_deliveries_stored_as_peewee_stores_them(db):
    now = utcnow()
    outbox._INSERT_EVENT.execute(id="e1", hook="on_paid", out_trade_no="T1", payload="{}",
                            created_at=now)
    Event.create(id="e2", hook="on_paid", out_trade_no="T1", payload="{}", created_at=now)
    assert raw(db, "tornpay_event", "id", "e1")[1:] == raw(db, "tornpay_event", "id", "e2")[1:]
    # "a" is known (another process loaded it) and local too; "b" is only local.
    KnownPlugin.create(name="a", on_paid=True, seen_by="other")
    insert_deliveries = outbox._INSERT_DELIVERIES[("on_paid", 2)]
    insert_deliveries.execute(event="e1", now=now, prefix="e1:", plugin0="a", plugin1="b")
    Delivery.insert_many([{"id": f"e2:{p}", "event": "e2", "plugin": p, "attempts": 0,
                           "next_attempt_at": now, "created_at": now} for p in "ab"]).execute()
    for p in "ab":
        mine, theirs = (raw(db, "tornpay_delivery", "id", f"{e}:{p}") for e in ("e1", "e2"))
        assert mine[2:] == theirs[2:] and (mine[1], theirs[1]) == ("e1", "e2")
    assert Delivery.select().where(Delivery.event == "e1").count() == 2


def test_conditional_update_same_effect_and_as_conditional(db):
    order("A"), order("B"), order("C", state=PAID)
    now = utcnow()
    values = dict(state=PAID, transaction_id="4200", time_end="20240102030405", bank_type="CMC",
                  cash_fee=100, paid_at=now, last_error=None, updated_at=now)
    assert t._update("A", t.PAYABLE_STATES, **values)
    assert Order.update(**dict(values, transaction_id="4201")).where(
        (Order.out_trade_no == "B") & Order.state.in_(list(t.PAYABLE_STATES))).execute() == 1
    a, b = raw(db, "tornpay_order", "out_trade_no", "A"), raw(db, "tornpay_order",
                                                               "out_trade_no", "B")
    assert [x for x in a if x not in ("A", "4200")] == [x for x in b if x not in ("B", "4201")]
    # Not payable any more (or never): the compiled UPDATE changes nothing.
    assert not t._update("A", t.PAYABLE_STATES, **dict(values, transaction_id="4202"))
    assert not t._update("C", t.CLOSABLE_STATES, state=CLOSED, close_reason="closed")
    assert Order.get_by_id("A").transaction_id == "4200" and Order.get_by_id("C").state == PAID


def test_notification_row_as_peewee_writes_it(db):
    now = utcnow()
    notify_apply._INSERT_NOTIFICATION.execute(out_trade_no="T1", received_at=now,
                                              remote_ip="1.2.3.4", outcome="accepted", reason="")
    Notification.insert(kind="pay", out_trade_no="T1", received_at=now, remote_ip="1.2.3.4",
                        outcome="accepted", reason="").execute()
    first, second = Notification.select().order_by(Notification.id)
    cursor = db.execute_sql('SELECT * FROM "tornpay_notification" ORDER BY "id"')
    rows = cursor.fetchall()
    assert rows[0][1:] == rows[1][1:] and first.received_at == second.received_at == now


def reference_claim(now, limit):
    """The claim query as the dispatcher built it with peewee before fastsql."""
    free = Delivery.lease_until.is_null() | (Delivery.lease_until < now)
    Earlier, EarlierEvent, ThisEvent = Delivery.alias(), Event.alias(), Event.alias()
    blocked = (Earlier.select(Earlier.id)
               .join(EarlierEvent, on=(Earlier.event == EarlierEvent.id))
               .where((Earlier.plugin == Delivery.plugin) & (Earlier.state == PENDING)
                      & (EarlierEvent.out_trade_no == ThisEvent.out_trade_no)
                      & (Earlier.created_at < Delivery.created_at)))
    due = (Delivery.state == PENDING) & (Delivery.next_attempt_at <= now) & free
    return [r.id for r in (Delivery.select(Delivery.id)
                           .join(ThisEvent, on=(Delivery.event == ThisEvent.id))
                           .where(due & ~peewee.fn.EXISTS(blocked))
                           .order_by(Delivery.next_attempt_at, Delivery.created_at)
                           .limit(limit))]


def test_claim_finds_what_the_peewee_query_finds(db):
    base = utcnow() - datetime.timedelta(minutes=5)
    for i in range(6):
        created = base + datetime.timedelta(seconds=i)
        Event.create(id=f"e{i}", hook="on_paid", out_trade_no=f"T{i % 3}", created_at=created)
        Delivery.create(id=f"e{i}:p", event=f"e{i}", plugin="p", created_at=created,
                        next_attempt_at=created if i != 4 else base + datetime.timedelta(days=1),
                        lease_until=base if i == 1 else None, lease_owner="x" if i == 1 else None)
    now = utcnow()
    statement = outbox_sql.CLAIM_PG if is_postgres(db) else outbox_sql.CLAIM
    for limit in (1, 2, 10):
        mine = [r[0] for r in statement.all(now=now, limit=limit)]
        assert mine == reference_claim(now, limit)
    assert mine == ["e0:p", "e1:p", "e2:p"]  # e3..e5 wait for an earlier one of their order
    assert d.claim_due_deliveries("me", 60, limit=2, exclude={"e0:p"}) == ["e1:p", "e2:p"]
    assert d.claim_due_deliveries("other", 60) == ["e0:p"]  # the others are leased now


def test_a_claim_leases_and_loads_in_a_few_statements_whatever_its_size(db, monkeypatch):
    # 140 due deliveries: more than one padded id list (128), fewer than a lease each.
    base = utcnow() - datetime.timedelta(minutes=5)
    for i in range(140):
        order(f"T{i}", state=PAID)
        Event.create(id=f"e{i:03d}", hook="on_paid", out_trade_no=f"T{i}", created_at=base)
        Delivery.create(id=f"e{i:03d}:p", event=f"e{i:03d}", plugin="p", created_at=base,
                        next_attempt_at=base + datetime.timedelta(microseconds=i))
    Delivery.update(lease_owner="x", lease_until=utcnow() + datetime.timedelta(minutes=1)).where(
        Delivery.id == "e007:p").execute()  # held by a live process: not claimable
    statements = []
    real = db.execute_sql
    monkeypatch.setattr(db, "execute_sql", lambda sql, *a, **k: (statements.append(sql),
                                                                  real(sql, *a, **k))[1])
    with db.atomic():
        claimed = d.claim_and_load("me", 60, exclude={"e000:p"}, plugins=["p"])
    ids = [f"e{i:03d}:p" for i in range(1, 140) if i != 7][:d.BATCH]
    assert [delivery_id for delivery_id, _ in claimed] == ids  # in claim order
    # SQLite: was 2 per delivery (a lease and a load each). PostgreSQL leases
    # them in one statement and loads each by its key (claims.py says why).
    assert len(statements) <= (6 + d.BATCH if is_postgres(db) else 6)
    monkeypatch.setattr(db, "execute_sql", real)
    assert all(row == outbox_sql.load(delivery_id) for delivery_id, row in claimed)
    assert Delivery.select().where(Delivery.lease_owner == "me").count() == d.BATCH
    more = d.claim_due_deliveries("other", 60, limit=140)
    assert more == ["e000:p"] + [f"e{i:03d}:p" for i in range(1, 140) if i != 7][d.BATCH:]


def test_the_one_query_claim_finds_its_rows_by_key_on_sqlite(tmp_path):
    # Through the state index the lease would visit every pending delivery: a
    # whole backlog per claim while a plugin is down.
    db = bind_db(f"sqlite:///{tmp_path}/plan.db")
    for statement in (outbox_sql.LEASE_MANY[8], outbox_sql.LOAD_MINE[8]):
        text, _ = statement.compiled(db)
        plan = db.execute_sql("EXPLAIN QUERY PLAN " + text, ["x"] * text.count("?")).fetchall()
        assert "USING INDEX sqlite_autoindex_tornpay_delivery_1 (id=?)" in plan[0][3], plan


def test_done_and_retry_only_for_the_lease_owner(db):
    Event.create(id="e1", hook="on_paid", out_trade_no="T1")
    Delivery.create(id="e1:p", event="e1", plugin="p", attempts=1, lease_owner="me",
                    lease_until=utcnow())
    later = utcnow() + datetime.timedelta(minutes=1)
    assert outbox_sql.MARK_RETRY.rowcount(id="e1:p", owner="other", attempts=2,
                                          last_error="x", next_attempt_at=later) == 0
    assert outbox_sql.MARK_DONE.rowcount(id="e1:p", owner="me", done_at=later) == 1
    row = Delivery.get_by_id("e1:p")
    assert (row.state, row.attempts, row.done_at, row.lease_owner, row.lease_until) == (
        "done", 2, later, None, None)
    assert outbox_sql.MARK_FAILED.rowcount(id="e1:p", owner="me", attempts=3,
                                           last_error="x") == 0  # done is final


def test_load_gives_the_order_view_peewee_gives(db):
    order("T1", state=PAID, transaction_id="4200", paid_at=utcnow(), attach="a")
    Event.create(id="e1", hook="on_cancel", out_trade_no="T1", payload='{"reason": "expired"}')
    Delivery.create(id="e1:p", event="e1", plugin="p", attempts=2)
    row = outbox_sql.load("e1:p")
    assert (row.state, row.plugin, row.attempts, row.hook) == (PENDING, "p", 2, "on_cancel")
    kwargs = d.Dispatcher._hook_kwargs(row, "e1:p")
    assert kwargs == {"order": OrderView.from_row(Order.get_by_id("T1"), delivery_id="e1:p"),
                      "reason": "expired"}
    assert outbox_sql.load("nope") is None


def test_statements_follow_the_bound_database(tmp_path):
    first = bind_db(f"sqlite:///{tmp_path}/one.db")
    order("T1")
    assert n._LOOKUP.one(out_trade_no="T1") == ("T1", "MD5", 100, "v2", "")  # "": the OA's
    second = bind_db(f"sqlite:///{tmp_path}/two.db")
    assert n._LOOKUP.one(out_trade_no="T1") is None  # not the first database's rows
    assert database_proxy.obj is second and first is not second
    first.close(), second.close()


def test_hot_path_logs_one_info_line_per_payment(db, caplog):
    # The notify hot path's log budget: one INFO line naming the order per
    # accepted notify, a duplicate at DEBUG only.
    settings = make_settings(wechat={"appid": "wx2421b1c4370ec43b", "mch_id": "10000100",
                                     "app_secret": "s" * 16,
                                     "api_key": "mp-test-key-0123456789abcdef0123"})
    ctx = types.SimpleNamespace(settings=settings, hooks=lambda hook: ["p"], paid_cache=None,
                                kick=lambda: None)
    no = "TP" + "1" * 28
    order(no)
    body = notify_body(no, 100, "4200000000000000000000000001")
    with caplog.at_level(logging.DEBUG, logger="tornpay"):
        assert n.process_pay_notify(ctx, body, "127.0.0.1") == (True, "OK")
        assert n.process_pay_notify(ctx, body, "127.0.0.1") == (True, "OK")
    info = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert len(info) == 1 and no in info[0] and "PAID via notify" in info[0]
    assert any("duplicate" in r.getMessage() and no in r.getMessage()
               for r in caplog.records if r.levelno == logging.DEBUG)
    assert [x.outcome for x in Notification.select().order_by(Notification.id)] == [
        "accepted", "duplicate"]


def test_compiled_new_order_insert_stores_what_order_create_does(db):
    now = datetime.datetime(2024, 1, 2, 3, 4, 5, 678)
    values = dict(product_id="p", openid="o", body="示例", attach="a", total_fee=100,
                  fee_type="CNY", sign_type="HMAC-SHA256", state="CREATED",
                  spbill_create_ip="1.2.3.4", unified_request="<xml/>", created_at=now,
                  api_version="v3", updated_at=now,
                  expire_at=now + datetime.timedelta(hours=1), trade_type="NATIVE", payer="o",
                  appid="wx4f4bc4dec97d474b")
    Order.create(out_trade_no="VIA_PEEWEE", **values)
    transition_sql.INSERT_ORDER.execute(out_trade_no="VIA_FASTSQL", refunded_fee=0,
                                  reserved_refund_fee=0, check_attempts=0, **values)
    a = raw(db, "tornpay_order", "out_trade_no", "VIA_PEEWEE")
    b = raw(db, "tornpay_order", "out_trade_no", "VIA_FASTSQL")
    assert a[1:] == b[1:] and b[0] == "VIA_FASTSQL"
