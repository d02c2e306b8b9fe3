"""Console pages for operations: failed deliveries and their retry, the daily bill reports."""

import logging

import tornado.web

from tornpay.console import queries
from tornpay.console.audit import OK, REFUSED
from tornpay.handlers.admin_base import ConsoleHandler, admin_enabled
from tornpay.orders.admin import Refused, retry_deliveries
from tornpay.orders.refunds import NotFound

logger = logging.getLogger(__name__)


class DeliveriesHandler(ConsoleHandler):
    """Deliveries in one state (failed by default), newest first."""

    async def get(self):
        state = self.get_query_argument("state", "failed")
        try:
            page = int(self.get_query_argument("page", "1"))
            rows, more = await self.ctx.db_read(queries.deliveries, state,
                                                max(1, min(page, 100000)))
        except (ValueError, queries.BadFilter):
            raise tornado.web.HTTPError(400) from None
        self.render("admin/deliveries.html", rows=rows, more=more, state=state, page=page,
                    states=queries.DELIVERY_STATES)


class RetryHandler(ConsoleHandler):
    """Make a failed delivery due again; the dispatcher delivers it (the CLI's retry)."""

    async def post(self, delivery_id):
        no = await self.ctx.db_read(queries.delivery_order_no, delivery_id)
        try:
            # The CLI's retry as one writer transaction (SPEC §12).
            line = await self.ctx.db_write(retry_deliveries, delivery_id)
        except (NotFound, Refused) as exc:
            await self.audit("retry_delivery", REFUSED, no, f"{delivery_id}: {exc}")
            self.set_status(409)
            self.render("admin/message.html", title=self._("Retry refused"), message=str(exc),
                        back="deliveries", status=409)
            return
        self.ctx.kick()
        await self.audit("retry_delivery", OK, no, delivery_id)
        self.render("admin/message.html", title=self._("Retry scheduled"), message=line,
                    back="deliveries", status=200)


class BillsHandler(ConsoleHandler):
    """Every daily bill run: fetched, reconciled, its differences."""

    async def get(self):
        self.render("admin/bills.html", runs=await self.ctx.db_read(queries.bill_runs))


class BillHandler(ConsoleHandler):
    """One day's reconciliation report and its differences."""

    async def get(self, day):
        run = next(iter(await self.ctx.db_read(queries.bill_runs, 1, day)), None)
        if run is None:
            raise tornado.web.HTTPError(404)
        found = await self.ctx.db_read(queries.bill_differences, run)
        self.render("admin/bill.html", run=run, found=found)


enabled = admin_enabled
default_handlers = [
    (r"/admin/deliveries", DeliveriesHandler, "tornpay-admin-deliveries"),
    (r"/admin/deliveries/([^/]{1,128})/retry", RetryHandler, "tornpay-admin-retry"),
    (r"/admin/bills", BillsHandler, "tornpay-admin-bills"),
    (r"/admin/bills/([0-9]{4}-[0-9]{2}-[0-9]{2})", BillHandler, "tornpay-admin-bill"),
]
