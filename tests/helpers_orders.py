"""Shared helpers for the orders-core tests: database, settings, orders, recording plugins."""

import datetime
import threading

from tornpay.settings import settings_from_dict
from tornpay.storage.db import bind, create_tables, open_database
from tornpay.storage.models import CREATED, PREPAID, Order, utcnow

WECHAT = {"appid": "wx0000000000000000", "app_secret": "s" * 16, "mch_id": "10000100",
          "api_key": "k" * 32}
FAST_DELIVERIES = {"timeout_seconds": 0.5, "first_retry_seconds": 0.0,
                   "max_retry_seconds": 0.0, "max_attempts": 5, "poll_interval_seconds": 0.02}


def make_settings(deliveries=None, orders=None, **top):
    data = {"server": {"cookie_secret": "orders-test-cookie-secret-0123456789"},
            "wechat": dict(WECHAT),
            "deliveries": dict(FAST_DELIVERIES, **(deliveries or {})),
            "orders": dict(orders or {}), "plugins": []}
    data.update(top)
    return settings_from_dict(data, env={})


def make_db(tmp_path, extra_models=()):
    from proc_helpers import suite_database_url  # SQLite, or PostgreSQL in .ci/run's re-run

    db = bind(open_database(suite_database_url(tmp_path)))
    create_tables(extra_models)
    return db


def make_order(out_trade_no="T1", state=PREPAID, total_fee=100, product_id="coach-101",
               openid="o-payer", age_seconds=0.0, expire_in_seconds=1800.0, **extra):
    created = utcnow() - datetime.timedelta(seconds=age_seconds)
    return Order.create(out_trade_no=out_trade_no, product_id=product_id, openid=openid,
                        body="Coaching", total_fee=total_fee, state=state,
                        created_at=created, updated_at=created,
                        expire_at=created + datetime.timedelta(seconds=expire_in_seconds),
                        prepay_id="wx_prepay" if state != CREATED else None, **extra)


def paid_fields(n=1, **kw):
    fields = {"transaction_id": f"4200000000{n:010d}", "time_end": "20240102030405",
              "bank_type": "CMC", "cash_fee": 100, "source": "notify"}
    fields.update(kw)
    return fields


class RecordingPlugin:
    """Records every durable-hook call; ``fail`` maps hook -> number of calls that raise."""

    def __init__(self, fail=None):
        self.calls = []
        self.fail = dict(fail or {})
        self.lock = threading.Lock()

    def _record(self, hook, **kw):
        with self.lock:
            self.calls.append((hook, kw))
            if self.fail.get(hook, 0) > 0:
                self.fail[hook] -= 1
                raise RuntimeError(f"{hook} failing on purpose")

    def on_paid(self, order):
        self._record("on_paid", order=order)

    def on_cancel(self, order, reason):
        self._record("on_cancel", order=order, reason=reason)

    def on_refund(self, order, refund):
        self._record("on_refund", order=order, refund=refund)

    def hooks_called(self, hook):
        return [kw for h, kw in self.calls if h == hook]


class AsyncRecordingPlugin(RecordingPlugin):
    """Same as RecordingPlugin but with ``async def`` hooks."""

    async def on_paid(self, order):
        self._record("on_paid", order=order)

    async def on_cancel(self, order, reason):
        self._record("on_cancel", order=order, reason=reason)

    async def on_refund(self, order, refund):
        self._record("on_refund", order=order, refund=refund)
