"""``/metrics`` families of the daily bill, read from the database at each scrape."""

import logging

import peewee
from prometheus_client.core import GaugeMetricFamily

from tornpay.bills.reconcile import KINDS
from tornpay.storage.opsmodels import BillDifference, BillRun

logger = logging.getLogger(__name__)


class BillCollector:
    """Unsettled bill differences by kind, and the last reconciled day (any process's)."""

    def describe(self):
        return [GaugeMetricFamily("tornpay_bill_differences_unsettled",
                                  "Bill differences nobody settled, by kind", labels=["kind"]),
                GaugeMetricFamily("tornpay_bill_last_reconciled_day",
                                  "The last reconciled bill day, as YYYYMMDD")]

    def collect(self):
        unsettled = GaugeMetricFamily("tornpay_bill_differences_unsettled",
                                      "Bill differences nobody settled, by kind",
                                      labels=["kind"])
        try:
            counts = dict(BillDifference.select(BillDifference.kind,
                                                peewee.fn.COUNT(BillDifference.id))
                          .where(BillDifference.settled == False)  # noqa: E712
                          .group_by(BillDifference.kind).tuples())
            last = (BillRun.select(BillRun.bill_date).where(BillRun.state == "reconciled")
                    .order_by(BillRun.bill_date.desc()).scalar())
        except peewee.PeeweeException:
            logger.warning("bill metrics: database error", exc_info=True)
            return
        for kind in KINDS:
            unsettled.add_metric([kind], counts.get(kind, 0))
        yield unsettled
        if last:
            day = GaugeMetricFamily("tornpay_bill_last_reconciled_day",
                                    "The last reconciled bill day, as YYYYMMDD")
            day.add_metric([], int(last.replace("-", "")))
            yield day
