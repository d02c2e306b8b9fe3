"""GET /orders/{out_trade_no} (JSON for the pay page's polling), its /result page, POST /cancel."""

import collections
import logging

from tornpay.handlers.base import BaseHandler, PageError
from tornpay.handlers.pay import OUT_TRADE_NO, PAID_STATES, OwnedOrderMixin
from tornpay.orders.cancel import cancel_order
from tornpay.orders.service import check_once, order_json
from tornpay.storage.models import CLOSED, PAYERROR, PREPAID, Order

logger = logging.getLogger(__name__)

BOOKING_PLUGIN = "tornpay.plugins.booking"
# MWEB orders already asked about once on the payer's return (bounded: oldest dropped).
_ASKED_ON_RETURN: "collections.OrderedDict[str, None]" = collections.OrderedDict()
_ASKED_MAX = 10000


class OrderJSONHandler(OwnedOrderMixin, BaseHandler):
    """The owner's view of one order; the only proof of payment the pay page trusts."""

    def get(self, out_trade_no: str) -> None:
        self.set_header("Cache-Control", "no-store")
        self.write(order_json(self.owned_order(out_trade_no)))

    def write_error(self, status_code, **kwargs):
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = exc.message if isinstance(exc, PageError) else "error"
        self.finish({"error": message, "status": status_code})


class OrderResultHandler(OwnedOrderMixin, BaseHandler):
    """Paid, pending or cancelled, in words; refreshes itself while pending."""

    async def get(self, out_trade_no: str) -> None:
        self.set_header("Cache-Control", "no-store")
        order = self.owned_order(out_trade_no)
        if order.trade_type == "MWEB" and order.state == PREPAID:
            order = await self._ask_wechat_once(order)
        if order.state in PAID_STATES:
            status = "paid"
        elif order.state in (CLOSED, PAYERROR):
            status = "cancelled"
        else:
            status = "pending"
        self.render("result.html", order=order, status=status,
                    yuan="%d.%02d" % divmod(order.total_fee, 100),
                    booking=self._booking(order), pay_url=f"{self.ctx.prefix}/pay/"
                    f"{order.out_trade_no}")

    async def _ask_wechat_once(self, order):
        """Back from WeChat's H5 cashier with no notify yet: orderquery once, never per poll."""
        if order.out_trade_no in _ASKED_ON_RETURN:
            return order
        _ASKED_ON_RETURN[order.out_trade_no] = None
        while len(_ASKED_ON_RETURN) > _ASKED_MAX:
            _ASKED_ON_RETURN.popitem(last=False)
        await check_once(self.ctx, order.out_trade_no)
        return Order.get_by_id(order.out_trade_no)

    def _booking(self, order):
        plugin = self.ctx.hooks.get_plugin(BOOKING_PLUGIN)
        helper = getattr(plugin, "booking_status", None)
        if helper is None:
            return None
        try:
            return helper(order.out_trade_no)
        except Exception:  # a plugin's page extra must never break the result page
            logger.exception("booking_status(%s) failed", order.out_trade_no)
            return None


class OrderCancelHandler(OwnedOrderMixin, BaseHandler):
    """The payer gives up an unpaid order (the pay page's form); 303 to the result page."""

    async def post(self, out_trade_no: str) -> None:
        if not self.application.settings.get("xsrf_cookies"):
            # An estate may run without xsrf_cookies; this form is still protected.
            self.check_xsrf_cookie()
        order = self.owned_order(out_trade_no)
        outcome = await cancel_order(self.ctx, order.out_trade_no)
        logger.info("order %s: cancel by payer -> %s", order.out_trade_no, outcome)
        self.redirect(f"{self.ctx.prefix}/orders/{order.out_trade_no}/result", status=303)


default_handlers = [
    (r"/orders/" + OUT_TRADE_NO, OrderJSONHandler, "tornpay-order"),
    (r"/orders/" + OUT_TRADE_NO + r"/result", OrderResultHandler, "tornpay-order-result"),
    (r"/orders/" + OUT_TRADE_NO + r"/cancel", OrderCancelHandler, "tornpay-order-cancel"),
]
