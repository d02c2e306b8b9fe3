"""Prometheus metrics of one tornpay app, in a registry of its own (never the global one)."""

import logging
from typing import Any, Optional

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

logger = logging.getLogger(__name__)

# What we answered WeChat: SUCCESS (new or duplicate) or FAIL; duplicates are told apart
# in tornpay_notifications_recorded_total, read from the Notification table.
# accepted (paid now), duplicate (already paid), ignored (result_code FAIL),
# refused (a check failed), error (database trouble: WeChat will retry).
NOTIFY_OUTCOMES = ("accepted", "duplicate", "ignored", "refused", "error")
# WeChat answers in tens of milliseconds when healthy; timeouts sit at wechat.timeout (10s).
UPSTREAM_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

__all__ = ["Metrics", "CONTENT_TYPE_LATEST"]


class Metrics:
    """Counters fed by the code paths, plus gauges read from the database at each scrape.

    ``ctx`` is the app's Context (any object with a ``db`` attribute) or None;
    the database gauges are skipped without a context or a database.
    """

    def __init__(self, ctx: Any = None):
        self.ctx = ctx
        self.registry = CollectorRegistry(auto_describe=True)
        self.notifies_received = Counter(
            "tornpay_notifies_received", "Notify POSTs received from WeChat", ["kind"],
            registry=self.registry)
        self.notifies = Counter(
            "tornpay_notifies",
            "Notify POSTs by what we answered (accepted = SUCCESS, refused = FAIL)",
            ["kind", "outcome"], registry=self.registry)
        self.upstream = Histogram(
            "tornpay_upstream_seconds", "Latency of WeChat API calls", ["api", "outcome"],
            buckets=UPSTREAM_BUCKETS, registry=self.registry)
        # Pre-created so dashboards see 0, not "no data", before the first notify;
        # kept, so a notify counts without two label lookups.
        self._notify_series = {
            (kind, outcome): (self.notifies_received.labels(kind=kind),
                              self.notifies.labels(kind=kind, outcome=outcome))
            for kind in ("pay", "refund") for outcome in NOTIFY_OUTCOMES}
        self.registry.register(_DatabaseCollector(self))

    # -- fed by the code paths ----------------------------------------------

    def notify(self, outcome: str, kind: str = "pay") -> None:
        """Count one notify: ``outcome`` accepted (SUCCESS) or refused (FAIL); kind pay/refund."""
        series = self._notify_series.get((kind, outcome))
        if series is None:
            series = (self.notifies_received.labels(kind=kind),
                      self.notifies.labels(kind=kind, outcome=outcome))
        series[0].inc()
        series[1].inc()

    def observe_upstream(self, api: str, seconds: float, outcome: str) -> None:
        """One WeChat call (``unifiedorder``, ``orderquery``, ...) and how it ended."""
        self.upstream.labels(api=api, outcome=outcome).observe(seconds)

    # -- exposition ------------------------------------------------------------

    def render(self) -> bytes:
        """The Prometheus text exposition of this app's registry."""
        return generate_latest(self.registry)

    @property
    def content_type(self) -> str:
        return CONTENT_TYPE_LATEST


class _DatabaseCollector:
    """Orders by state, deliveries by state and stored notifies, counted at scrape time."""

    def __init__(self, metrics: Metrics):
        self.metrics = metrics

    def describe(self):
        # Declared up front so registration does not run queries (auto_describe would).
        return [
            GaugeMetricFamily("tornpay_orders", "Orders by state", labels=["state"]),
            GaugeMetricFamily("tornpay_deliveries", "Hook deliveries by state", labels=["state"]),
            GaugeMetricFamily("tornpay_deliveries_oldest_pending_age_seconds",
                              "Age of the oldest pending hook delivery"),
            CounterMetricFamily("tornpay_notifications_recorded",
                                "Notifies stored in the database, by kind and outcome",
                                labels=["kind", "outcome"]),
            GaugeMetricFamily("tornpay_database_up", "1 when the metrics queries succeeded"),
        ]

    def collect(self):
        ctx = self.metrics.ctx
        db = None if ctx is None else ctx.db
        up = GaugeMetricFamily("tornpay_database_up", "1 when the metrics queries succeeded")
        if db is None:
            return
        try:
            families = list(_database_families(db))
        except Exception:  # a scrape must answer even when the database does not
            logger.warning("metrics: database queries failed", exc_info=True)
            up.add_metric([], 0)
            yield up
            return
        yield from families
        up.add_metric([], 1)
        yield up


def _database_families(db):
    from peewee import fn

    from tornpay.storage.models import (
        DONE, FAILED, ORDER_STATES, PENDING, Delivery, Notification, Order, utcnow,
    )

    orders = GaugeMetricFamily("tornpay_orders", "Orders by state", labels=["state"])
    counts = dict(Order.select(Order.state, fn.COUNT(Order.out_trade_no))
                  .group_by(Order.state).tuples().bind(db))
    for state in ORDER_STATES:
        orders.add_metric([state], counts.get(state, 0))
    yield orders

    deliveries = GaugeMetricFamily("tornpay_deliveries", "Hook deliveries by state",
                                   labels=["state"])
    counts = dict(Delivery.select(Delivery.state, fn.COUNT(Delivery.id))
                  .group_by(Delivery.state).tuples().bind(db))
    for state in (PENDING, FAILED, DONE):
        deliveries.add_metric([state], counts.get(state, 0))
    yield deliveries

    oldest: Optional[Any] = (Delivery.select(fn.MIN(Delivery.created_at))
                             .where(Delivery.state == PENDING).scalar(database=db))
    age = GaugeMetricFamily("tornpay_deliveries_oldest_pending_age_seconds",
                            "Age of the oldest pending hook delivery")
    age.add_metric([], _age_seconds(oldest, utcnow()))
    yield age

    recorded = CounterMetricFamily("tornpay_notifications_recorded",
                                   "Notifies stored in the database, by kind and outcome",
                                   labels=["kind", "outcome"])
    rows = (Notification.select(Notification.kind, Notification.outcome, fn.COUNT(Notification.id))
            .group_by(Notification.kind, Notification.outcome).tuples().bind(db))
    for kind, outcome, count in rows:
        recorded.add_metric([kind, outcome], count)
    yield recorded


def _age_seconds(then, now) -> float:
    if then is None:
        return 0.0
    if isinstance(then, str):  # SQLite may hand back the stored text for an aggregate
        import datetime

        then = datetime.datetime.fromisoformat(then)
    return max(0.0, (now - then).total_seconds())
