"""Console pages for operations: failed deliveries and their retry, the daily bill reports."""

import logging

import tornado.web

from tornpay.console import queries
from tornpay.console.audit import OK, REFUSED
from tornpay.handlers.admin_base import ConsoleHandler, admin_enabled
from tornpay.orders.admin import Refused, retry_deliveries
from tornpay.orders.refunds import NotFound
from tornpay.storage.models import Delivery
from tornpay.storage.opsmodels import BillDifference

logger = logging.getLogger(__name__)


class DeliveriesHandler(ConsoleHandler):
    """Deliveries in one state (failed by default), newest first."""

    def get(self):
        state = self.get_query_argument("state", "failed")
        try:
            page = int(self.get_query_argument("page", "1"))
            rows, more = queries.deliveries(state, max(1, min(page, 100000)))
        except (ValueError, queries.BadFilter):
            raise tornado.web.HTTPError(400) from None
        self.render("admin/deliveries.html", rows=rows, more=more, state=state, page=page,
                    states=queries.DELIVERY_STATES)


class RetryHandler(ConsoleHandler):
    """Make a failed delivery due again; the dispatcher delivers it (the CLI's retry)."""

    def post(self, delivery_id):
        row = Delivery.get_or_none(Delivery.id == delivery_id)
        no = row.event.out_trade_no if row is not None else None
        try:
            line = retry_deliveries(delivery_id)
        except (NotFound, Refused) as exc:
            self.audit("retry_delivery", REFUSED, no, f"{delivery_id}: {exc}")
            self.set_status(409)
            self.render("admin/message.html", title=self._("Retry refused"), message=str(exc),
                        back="deliveries", status=409)
            return
        if self.ctx.dispatcher is not None:
            self.ctx.dispatcher.kick()
        self.audit("retry_delivery", OK, no, delivery_id)
        self.render("admin/message.html", title=self._("Retry scheduled"), message=line,
                    back="deliveries", status=200)


class BillsHandler(ConsoleHandler):
    """Every daily bill run: fetched, reconciled, its differences."""

    def get(self):
        self.render("admin/bills.html", runs=queries.bill_runs())


class BillHandler(ConsoleHandler):
    """One day's reconciliation report and its differences."""

    def get(self, day):
        run = next(iter(queries.bill_runs(1, day)), None)
        if run is None:
            raise tornado.web.HTTPError(404)
        found = list(BillDifference.select().where(BillDifference.run == run)
                     .order_by(BillDifference.settled, BillDifference.id).limit(1000))
        self.render("admin/bill.html", run=run, found=found)


enabled = admin_enabled
default_handlers = [
    (r"/admin/deliveries", DeliveriesHandler, "tornpay-admin-deliveries"),
    (r"/admin/deliveries/([^/]{1,128})/retry", RetryHandler, "tornpay-admin-retry"),
    (r"/admin/bills", BillsHandler, "tornpay-admin-bills"),
    (r"/admin/bills/([0-9]{4}-[0-9]{2}-[0-9]{2})", BillHandler, "tornpay-admin-bill"),
]
