"""GET /orders/{out_trade_no} (JSON for the pay page's polling), its /result page, POST /cancel."""

import logging

from tornpay.handlers.base import BaseHandler, PageError
from tornpay.handlers.pay import OUT_TRADE_NO, OwnedOrderMixin
from tornpay.orders.cancel import cancel_order
from tornpay.orders.pages import back_from_cashier, database_busy, page_status, result_note
from tornpay.orders.service import order_json
from tornpay.i18n import fen_to_yuan

logger = logging.getLogger(__name__)


class OrderJSONHandler(OwnedOrderMixin, BaseHandler):
    """The owner's view of one order; the only proof of payment the pay page trusts."""

    async def get(self, out_trade_no: str) -> None:
        self.set_header("Cache-Control", "no-store")
        self.write(order_json(await self.owned_order(out_trade_no)))

    def write_error(self, status_code, **kwargs):
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = exc.message if isinstance(exc, PageError) else "error"
        if database_busy(exc):  # the pay page polls again later
            status_code, message = 503, "busy"
            self.set_status(503)
        self.finish({"error": message, "status": status_code})


class OrderResultHandler(OwnedOrderMixin, BaseHandler):
    """Paid, pending or cancelled, in words; refreshes itself while pending."""

    async def get(self, out_trade_no: str) -> None:
        self.set_header("Cache-Control", "no-store")
        order = await self.owned_order(out_trade_no)
        order = await back_from_cashier(self.ctx, order)
        note = await result_note(self.ctx, order.out_trade_no)  # the booking plugin's, say
        self.render("result.html", order=order, status=page_status(order),
                    yuan=fen_to_yuan(order.total_fee), booking=note,
                    pay_url=f"{self.ctx.prefix}/pay/{order.out_trade_no}")


class OrderCancelHandler(OwnedOrderMixin, BaseHandler):
    """The payer gives up an unpaid order (the pay page's form); 303 to the result page."""

    async def post(self, out_trade_no: str) -> None:
        if not self.application.settings.get("xsrf_cookies"):
            # An estate may run without xsrf_cookies; this form is still protected.
            self.check_xsrf_cookie()
        order = await self.owned_order(out_trade_no)
        outcome = await cancel_order(self.ctx, order.out_trade_no)
        logger.info("order %s: cancel by payer -> %s", order.out_trade_no, outcome)
        self.redirect(f"{self.ctx.prefix}/orders/{order.out_trade_no}/result", status=303)


default_handlers = [
    (r"/orders/" + OUT_TRADE_NO, OrderJSONHandler, "tornpay-order"),
    (r"/orders/" + OUT_TRADE_NO + r"/result", OrderResultHandler, "tornpay-order-result"),
    (r"/orders/" + OUT_TRADE_NO + r"/cancel", OrderCancelHandler, "tornpay-order-cancel"),
]
