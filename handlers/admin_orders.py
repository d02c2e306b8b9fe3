"""Console pages about orders: the summary, the search, an order's timeline, the refund form."""

import logging

import tornado.web

from tornpay.console import queries, timeline
from tornpay.console.audit import FAILED, OK, REFUSED
from tornpay.handlers.admin_base import ConsoleHandler, admin_enabled
from tornpay.handlers.pay import OUT_TRADE_NO
from tornpay.orders.admin import refund_and_report
from tornpay.orders.refunds import NotFound, RefundError
from tornpay.protocol.errors import WeChatError

logger = logging.getLogger(__name__)


class SummaryHandler(ConsoleHandler):
    """Orders today by state, failed deliveries, the last reconciliation."""

    async def get(self):
        self.render("admin/summary.html", s=await self.ctx.db_read(queries.summary))


class OrdersHandler(ConsoleHandler):
    """Orders filtered by state, trade type, Beijing dates and q (order no, transaction, openid)."""

    async def get(self):
        args = {k: self.get_query_argument(k, "") for k in
                ("state", "trade_type", "since", "until", "q", "page")}
        try:
            f = queries.OrderFilter.parse(**args)
        except queries.BadFilter as exc:
            self.set_status(400)
            self.render("admin/message.html", title=self._("Bad filter"),
                        message=self._("Bad filter") + f": {exc}", back="orders", status=400)
            return
        rows, more = await self.ctx.db_read(queries.search_orders, f)
        self.render("admin/orders.html", f=f, rows=rows, more=more, states=queries.ORDER_STATES,
                    trade_types=queries.TRADE_TYPES)


class OrderHandler(ConsoleHandler):
    """One order's timeline and, when refundable, the refund form."""

    async def get(self, out_trade_no):
        try:
            t = await self.ctx.db_read(timeline.timeline, out_trade_no)
        except NotFound:
            raise tornado.web.HTTPError(404) from None
        self.render("admin/order.html", t=t, order=t["order"])


class RefundHandler(ConsoleHandler):
    """POST without confirm=1: what will happen; with it: the refund, via the CLI's core."""

    async def post(self, out_trade_no):
        try:
            t = await self.ctx.db_read(timeline.timeline, out_trade_no, with_audit=False)
        except NotFound:
            raise tornado.web.HTTPError(404) from None
        order, left = t["order"], t["refundable"]
        fee = timeline.parse_fee(self.get_body_argument("fee", ""), left)
        reason = self.get_body_argument("reason", "").strip()
        back = f"orders/{out_trade_no}"
        if fee is None or len(reason.encode("utf-8")) > 80:
            await self.audit("refund", REFUSED, out_trade_no, "bad fee or reason")
            self.set_status(400)
            self.render("admin/message.html", title=self._("Refund refused"), back=back,
                        status=400, message=self._("The amount must be a whole number of fen "
                                                   "from 1 to %(left)s; the reason at most 80 "
                                                   "bytes.") % {"left": left})
            return
        if self.get_body_argument("confirm", "") != "1":
            self.render("admin/refund_confirm.html", order=order, fee=fee, reason=reason,
                        left=left)
            return
        await self._refund(order, fee, reason, back)

    async def _refund(self, order, fee, reason, back):
        no = order.out_trade_no
        try:
            line = await refund_and_report(self.ctx, no, fee, reason, None)
        except (RefundError, WeChatError) as exc:
            await self.audit("refund", FAILED, no, f"{fee} fen: {exc}")
            self.set_status(409)
            self.render("admin/message.html", title=self._("Refund not made"), back=back,
                        status=409, message=str(exc))
            return
        await self.audit("refund", OK, no, line)
        self.render("admin/message.html", title=self._("Refund sent"), message=line, back=back,
                    status=200)


enabled = admin_enabled
default_handlers = [
    (r"/admin/", SummaryHandler, "tornpay-admin"),
    (r"/admin/orders", OrdersHandler, "tornpay-admin-orders"),
    (r"/admin/orders/" + OUT_TRADE_NO, OrderHandler, "tornpay-admin-order"),
    (r"/admin/orders/" + OUT_TRADE_NO + "/refund", RefundHandler, "tornpay-admin-refund"),
]
