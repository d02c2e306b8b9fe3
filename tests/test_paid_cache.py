"""Repeats of a committed payment answered from the paid cache: same checks, never ahead of it."""

import contextlib
import datetime
import logging

import peewee
import pytest

from flow_helpers import notify_fields, order_snapshot, signed_notify
from helpers_orders import make_order
from test_db_executor import KEY, external_lock, send  # noqa: F401 (send: a fixture)
from tornpay.orders import notify as notify_module
from tornpay.orders import transitions
from tornpay.orders.paid_cache import PaidCache
from tornpay.protocol.wechat_time import beijing_to_utc
from tornpay.storage.db import is_sqlite
from tornpay.storage.models import Event, Notification, Order

OK = {"return_code": "SUCCESS", "return_msg": "OK"}
TX = "4200002315202406013425869417"


def body_for(number, key=KEY, **changes):
    return signed_notify(notify_fields(Order.get_by_id(number), transaction_id=TX, **changes),
                         key)


def outcomes(number):
    return [(n.outcome, n.reason) for n in Notification.select().where(
        Notification.out_trade_no == number).order_by(Notification.id)]


@contextlib.contextmanager
def audit_rows_locked(ctx):
    """Writes to the notification table wait (SQLite: the whole file is locked)."""
    if is_sqlite(ctx.db):
        with external_lock(ctx):
            yield
        return
    import psycopg2

    conn = psycopg2.connect(ctx.settings.database.url)
    try:
        conn.cursor().execute(
            f'LOCK TABLE "{Notification._meta.table_name}" IN EXCLUSIVE MODE')
        yield
    finally:
        conn.rollback()
        conn.close()


@pytest.fixture
def pipeline_runs(monkeypatch):
    """How many notifies went through the full pipeline on a writer (not the cache)."""
    calls = []
    real = notify_module.apply_pay_notify

    def counted(*args, **kwargs):
        calls.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(notify_module, "apply_pay_notify", counted)
    return calls


@pytest.mark.gen_test(timeout=60)
async def test_a_repeat_is_answered_from_the_cache_and_keeps_its_audit_row(ctx, send,
                                                                          pipeline_runs):
    make_order("C1", total_fee=9900)
    body = body_for("C1")
    assert await send(body) == OK
    assert ctx.paid_cache.get("C1").transaction_id == TX
    assert len(pipeline_runs) == 1
    assert await send(body) == OK
    assert await send(body) == OK
    assert len(pipeline_runs) == 1 and ctx.paid_cache.hits == 2  # no lookup, no update
    assert [o for o, _ in outcomes("C1")] == ["accepted", "duplicate", "duplicate"]
    assert Event.select().where(Event.out_trade_no == "C1").count() == 1


@pytest.mark.gen_test(timeout=60)
async def test_a_cached_order_still_refuses_a_tampered_amount(ctx, send, caplog):
    make_order("C2", total_fee=9900)
    assert await send(body_for("C2")) == OK
    paid = order_snapshot("C2")
    # The amount changed after signing: the signature check refuses it.
    tampered = body_for("C2").replace(b"<total_fee>9900</total_fee>", b"<total_fee>1</total_fee>")
    assert b"<total_fee>1</total_fee>" in tampered
    assert await send(tampered) == {"return_code": "FAIL", "return_msg": "signature failed"}
    # The signature itself tampered with: refused too.
    forged = body_for("C2").replace(b"<sign>", b"<sign>0").replace(b"</sign>", b"</sign>")
    assert await send(forged) == {"return_code": "FAIL", "return_msg": "signature failed"}
    # Correctly signed with another amount: refused, with exactly one ALERT line.
    with caplog.at_level(logging.ERROR, logger="tornpay"):
        reply = await send(body_for("C2", total_fee=1))
    assert reply == {"return_code": "FAIL", "return_msg": "total_fee mismatch"}
    assert len([r for r in caplog.records if "ALERT" in r.getMessage()]) == 1
    # Another mch_id, correctly signed: refused.
    reply = await send(body_for("C2", mch_id="10000999"))
    assert reply == {"return_code": "FAIL", "return_msg": "mch_id mismatch"}
    assert ctx.paid_cache.hits == 0
    assert order_snapshot("C2") == paid


@pytest.mark.gen_test(timeout=60)
async def test_a_second_payment_of_a_cached_order_still_raises_the_alert(ctx, send, caplog):
    make_order("C3", total_fee=9900)
    assert await send(body_for("C3")) == OK
    other = signed_notify(notify_fields(Order.get_by_id("C3"),
                                        transaction_id="4200009999202406019999999999"), KEY)
    with caplog.at_level(logging.ERROR, logger="tornpay"):
        assert await send(other) == OK  # acknowledged, as the database path answers it
    assert any("ALERT order C3" in r.getMessage() for r in caplog.records)
    assert "other transaction_id" in outcomes("C3")[-1][1]
    assert ctx.paid_cache.hits == 0 and Order.get_by_id("C3").transaction_id == TX


@pytest.mark.gen_test(timeout=60)
async def test_the_cache_never_answers_for_a_payment_not_committed(ctx, send, monkeypatch):
    make_order("C4", total_fee=9900)
    body = body_for("C4")
    before = order_snapshot("C4")
    real = transitions.pay_in_transaction

    def written_then_failed(out_trade_no, **kwargs):
        real(out_trade_no, **kwargs)  # PAID, event and deliveries written, then rolled back
        raise peewee.OperationalError("disk I/O error")

    monkeypatch.setattr(notify_module.transitions, "pay_in_transaction", written_then_failed)
    for _ in range(2):  # WeChat's retry finds it neither paid nor cached
        assert await send(body) == {"return_code": "FAIL",
                                    "return_msg": "temporary failure, retry"}
        assert ctx.paid_cache.get("C4") is None
    assert order_snapshot("C4") == before and ctx.paid_cache.hits == 0
    monkeypatch.setattr(notify_module.transitions, "pay_in_transaction", real)
    assert await send(body) == OK
    assert Order.get_by_id("C4").state == "PAID" and ctx.paid_cache.get("C4") is not None
    assert ctx.paid_cache.hits == 0  # paid by the pipeline, remembered only after its commit


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("tp_overrides", [{"database": {"wait_timeout": 0.3}}])
async def test_a_cached_repeat_that_cannot_store_its_row_answers_fail(ctx, send):
    make_order("C5", total_fee=9900)
    body = body_for("C5")
    assert await send(body) == OK
    with audit_rows_locked(ctx):
        # Its audit row cannot be written: FAIL, so WeChat repeats it later.
        assert await send(body) == {"return_code": "FAIL",
                                    "return_msg": "temporary failure, retry"}
    assert [o for o, _ in outcomes("C5")] == ["accepted"]
    assert await send(body) == OK
    assert [o for o, _ in outcomes("C5")] == ["accepted", "duplicate"]


@pytest.mark.gen_test(timeout=60)
async def test_an_order_paid_elsewhere_is_learnt_from_the_database(ctx, send, pipeline_runs):
    make_order("C6", total_fee=9900)
    # Paid by another process (or the reconciler): this process's cache knows nothing.
    assert transitions.mark_paid("C6", transaction_id=TX, time_end=None, bank_type=None,
                                 cash_fee=None, source="orderquery", hooks=ctx.hooks)
    body = body_for("C6")
    assert await send(body) == OK and ctx.paid_cache.hits == 0
    assert await send(body) == OK and ctx.paid_cache.hits == 1
    assert len(pipeline_runs) == 1
    assert [o for o, _ in outcomes("C6")] == ["duplicate", "duplicate"]


@pytest.mark.gen_test(timeout=60)
async def test_one_info_line_per_notify(ctx, send, caplog):
    make_order("C7", total_fee=9900)
    body = body_for("C7")
    with caplog.at_level(logging.INFO):
        assert await send(body) == OK
        assert await send(body) == OK
    lines = [r.getMessage() for r in caplog.records
             if r.levelno == logging.INFO and ("notify" in r.getMessage())]
    assert len(lines) == 2, lines
    assert "order C7: PAID via notify" in lines[0]
    assert lines[1].startswith("200 POST /wxpay/notify")


def test_the_cache_is_bounded_oldest_first():
    cache = PaidCache(size=3)
    for i in range(5):
        cache.add(f"N{i}", "MD5", 100, "", f"tx{i}")
    assert len(cache) == 3
    assert cache.get("N0") is None and cache.get("N1") is None
    assert cache.get("N4").transaction_id == "tx4"
    assert cache.get(None) is None


def test_time_end_read_directly_matches_strptime():
    beijing = datetime.timezone(datetime.timedelta(hours=8))
    for text in ("20240601123110", "20240229235959", "20231231235959", "19991231160000"):
        slow = datetime.datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=beijing)
        assert beijing_to_utc(text) == slow.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    assert beijing_to_utc("20230229000000") is None  # no such day
    assert beijing_to_utc("2024-06-01 12:31:10") == datetime.datetime(2024, 6, 1, 4, 31, 10)

