"""GET /pay/{out_trade_no}: the pay page (JSAPI, NATIVE QR, MWEB relaunch) in {prefix}/pay/."""

import logging

from tornpay.handlers.base import OPENID_COOKIE, PAYER_COOKIE, BaseHandler, PageError
from tornpay.handlers import paypages
from tornpay.i18n import fen_to_yuan
from tornpay.orders.service import (CheckoutError, jsapi_params, prepay_is_stale,
                                    refresh_prepay_id)
from tornpay.protocol.ids import is_valid_out_trade_no
from tornpay.orders.pages import ENDED_STATES, PAID_STATES, PAYABLE_STATE, find_order

logger = logging.getLogger(__name__)

OUT_TRADE_NO = r"([A-Za-z0-9_-]{1,32})"
# What pay.js may say, handed to it translated in a JSON island.
PAY_JS_TEXTS = (
    "Paid. Thank you!", "This order was closed; nothing was charged.",
    "WeChat has not confirmed the payment yet. Check again in a moment on the result page.",
    "Please open this page in WeChat to pay.", "Waiting for WeChat Pay\u2026",
    "Confirming your payment\u2026", "Payment cancelled.", "Pay again", "Payment failed: ",
    "Try again",
)


class OwnedOrderMixin:
    """Load an order only for the payer whose signed openid cookie matches it."""

    async def owned_order(self, out_trade_no: str):
        if not is_valid_out_trade_no(out_trade_no):
            raise PageError(404, "There is no such order.", title="Order not found")
        # On a database reader thread (SPEC §12); DbBusy shows the "try again" page.
        order = await self.ctx.db_read(find_order, out_trade_no)
        if order is None:
            raise PageError(404, "There is no such order.", title="Order not found")
        if order.trade_type == "JSAPI":
            who, owner = self.get_tp_cookie(OPENID_COOKIE), order.openid
        else:  # NATIVE and MWEB: the browser that checked out (SPEC §9)
            who, owner = self.get_tp_cookie(PAYER_COOKIE), order.payer
        if not who or who != owner:
            # Same answer whether or not the cookie is there: nothing about the order leaks.
            raise PageError(403, "This order belongs to another WeChat user."
                            if order.trade_type == "JSAPI" else
                            "This order was started in another browser.", title="Not your order")
        return order

    def success_url(self, order) -> str:
        return self.ctx.settings.result_url(order.out_trade_no)


class PayHandler(OwnedOrderMixin, BaseHandler):
    """Render the pay page with JSAPI parameters signed fresh on every load (refresh-safe)."""

    async def get(self, out_trade_no: str) -> None:
        self.set_header("Cache-Control", "no-store")
        order = await self.owned_order(out_trade_no)
        if order.state in PAID_STATES:
            self.redirect(self.success_url(order))
            return
        if order.state in ENDED_STATES:
            raise PageError(410, "This order is closed and can no longer be paid. Please start "
                            "again from the shop.", title="Order closed")
        if order.state != PAYABLE_STATE or not order.prepay_id:  # CREATED: unified order failed
            raise PageError(409, "This order has no WeChat payment yet. Please start again "
                            "from the shop.", title="Payment not ready")
        if order.trade_type == "NATIVE":
            paypages.render_native(self, order)
            return
        if order.trade_type == "MWEB":
            await paypages.relaunch_mweb(self, order)
            return
        if prepay_is_stale(order):
            # A payer back after two hours: same order, fresh WeChat session.
            try:
                order = await refresh_prepay_id(self.ctx, order)
            except CheckoutError:
                # The query may have moved it.
                order = await self.ctx.db_read(find_order, order.out_trade_no)
                if order.state in PAID_STATES:
                    self.redirect(self.success_url(order))
                    return
                raise PageError(410, "This payment session has expired and WeChat will not "
                                "renew it. Please start again from the shop.",
                                title="Payment expired") from None
        settings = self.ctx.settings
        bridge = None
        if self.ctx.simulator is not None:
            from tornpay.simulator.config import public_base_url

            # simulator.public_url: a shared standalone simulator (staging, several processes).
            bridge = public_base_url(settings) + "/jsbridge.js"
        self.render("pay.html", order=order, params=jsapi_params(self.ctx, order),
                    yuan=fen_to_yuan(order.total_fee), bridge_url=bridge,
                    poll_url=f"{self.ctx.prefix}/orders/{order.out_trade_no}",
                    success_url=self.success_url(order),
                    texts={text: self.locale.translate(text) for text in PAY_JS_TEXTS})


default_handlers = [
    (r"/pay/" + OUT_TRADE_NO, PayHandler, "tornpay-pay"),
]
