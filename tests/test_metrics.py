"""/metrics: per-app Prometheus registry, notify counters, DB gauges at scrape, upstream latency."""

import pytest
from prometheus_client.parser import text_string_to_metric_families

from helpers_orders import make_db, make_order
from tornpay.metrics import Metrics
from tornpay.storage.models import (
    CLOSED, FAILED, PAID, PENDING, PREPAID, Delivery, Event, Notification,
)


def samples(text):
    """{(name, frozenset(labels)): value} of a Prometheus text exposition."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(data, name, **labels):
    return data[(name, frozenset(labels.items()))]


class _Ctx:
    def __init__(self, db):
        self.db = db


def test_database_gauges_are_computed_at_scrape(tmp_path):
    db = make_db(tmp_path)
    metrics = Metrics(_Ctx(db))
    before = samples(metrics.render().decode())
    assert value(before, "tornpay_orders", state=PAID) == 0
    assert value(before, "tornpay_deliveries", state=PENDING) == 0
    assert value(before, "tornpay_database_up") == 1

    make_order("P1", state=PAID)
    make_order("P2", state=PAID)
    make_order("Q1", state=PREPAID)
    make_order("C1", state=CLOSED)
    event = Event.create(id="e1", hook="on_paid", out_trade_no="P1")
    Delivery.create(id="e1:a", event=event, plugin="a", state=PENDING)
    Delivery.create(id="e1:b", event=event, plugin="b", state=FAILED)
    Notification.create(kind="pay", out_trade_no="P1", outcome="accepted")
    Notification.create(kind="pay", out_trade_no="P1", outcome="duplicate")

    after = samples(metrics.render().decode())
    assert value(after, "tornpay_orders", state=PAID) == 2
    assert value(after, "tornpay_orders", state=PREPAID) == 1
    assert value(after, "tornpay_orders", state=CLOSED) == 1
    assert value(after, "tornpay_deliveries", state=PENDING) == 1
    assert value(after, "tornpay_deliveries", state=FAILED) == 1
    assert value(after, "tornpay_deliveries_oldest_pending_age_seconds") >= 0
    assert value(after, "tornpay_notifications_recorded_total", kind="pay",
                 outcome="accepted") == 1
    db.close()


def test_notify_counters_and_upstream_histogram():
    metrics = Metrics(None)
    metrics.notify("accepted")
    metrics.notify("duplicate")
    metrics.notify("refused")
    metrics.notify("refused")
    metrics.notify("accepted", kind="refund")
    metrics.observe_upstream("unifiedorder", 0.03, "ok")
    metrics.observe_upstream("unifiedorder", 12.0, "timeout")
    data = samples(metrics.render().decode())
    assert value(data, "tornpay_notifies_received_total", kind="pay") == 4
    assert value(data, "tornpay_notifies_total", kind="pay", outcome="refused") == 2
    assert value(data, "tornpay_notifies_total", kind="refund", outcome="accepted") == 1
    assert value(data, "tornpay_notifies_total", kind="refund", outcome="refused") == 0
    assert value(data, "tornpay_upstream_seconds_count", api="unifiedorder", outcome="ok") == 1
    assert value(data, "tornpay_upstream_seconds_bucket", api="unifiedorder", outcome="ok",
                 le="0.05") == 1
    assert value(data, "tornpay_upstream_seconds_bucket", api="unifiedorder", outcome="timeout",
                 le="10.0") == 0


def test_two_apps_in_one_process_do_not_collide():
    # The global registry would raise "Duplicated timeseries" on the second app.
    first, second = Metrics(None), Metrics(None)
    first.notify("accepted")
    assert value(samples(second.render().decode()), "tornpay_notifies_total", kind="pay",
                 outcome="accepted") == 0
    assert value(samples(first.render().decode()), "tornpay_notifies_total", kind="pay",
                 outcome="accepted") == 1


def test_scrape_survives_a_dead_database(tmp_path, monkeypatch):
    db = make_db(tmp_path)

    def broken(*args, **kwargs):
        raise db.OperationalError("database is gone")

    monkeypatch.setattr(db, "execute_sql", broken)
    data = samples(Metrics(_Ctx(db)).render().decode())
    assert value(data, "tornpay_database_up") == 0
    assert ("tornpay_orders", frozenset({("state", PAID)})) not in data
    # Counters are still served.
    assert value(data, "tornpay_notifies_received_total", kind="pay") == 0


@pytest.mark.gen_test
async def test_metrics_endpoint(http_client, base_url, ctx):
    ctx.metrics.notify("refused")
    ctx._observe_upstream("orderquery", 0.2, "ok")  # the hook PayClient calls
    response = await http_client.fetch(base_url + "/metrics")
    assert response.code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    data = samples(response.body.decode())
    assert value(data, "tornpay_notifies_total", kind="pay", outcome="refused") == 1
    assert value(data, "tornpay_upstream_seconds_count", api="orderquery", outcome="ok") == 1
    assert value(data, "tornpay_orders", state=PAID) == 0
    assert value(data, "tornpay_database_up") == 1
    # Nothing of ours leaks into the process-global registry.
    from prometheus_client import REGISTRY
    assert REGISTRY.get_sample_value("tornpay_notifies_total",
                                     {"kind": "pay", "outcome": "refused"}) is None


@pytest.mark.gen_test
async def test_notify_replies_are_counted(http_client, base_url, ctx):
    response = await http_client.fetch(base_url + "/wxpay/notify", method="POST",
                                       body=b"<xml><return_code>SUCCESS</return_code></xml>")
    assert b"FAIL" in response.body
    response = await http_client.fetch(base_url + "/metrics")
    data = samples(response.body.decode())
    assert value(data, "tornpay_notifies_received_total", kind="pay") == 1
    assert value(data, "tornpay_notifies_total", kind="pay", outcome="refused") == 1
    assert value(data, "tornpay_notifications_recorded_total", kind="pay",
                 outcome="refused") == 1
