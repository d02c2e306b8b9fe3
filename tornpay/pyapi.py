"""The Python API for estates (SPEC §13): create, read, query, close, cancel and refund orders.

Every method is a thin face over the core the pages and the CLI use
(``orders.service``, ``orders.admin``, ``orders.cancel``, ``orders.refunds``),
so the rules, states, outbox and hooks are the same. Estates are trusted
code: they may name a price; browsers never can (the JSON API has no price).
"""

import datetime
from dataclasses import dataclass
from typing import Any, Dict, Optional

from tornpay import errors
from tornpay.orders import admin, cancel, place
from tornpay.orders.refunds import NotFound, RefundError, request_refund
from tornpay.protocol.errors import WeChatError
from tornpay.storage.models import Order


@dataclass(frozen=True)
class PaymentOrder:
    """A snapshot of one order (not a live row); ``pay_params`` is set while it can be paid."""

    out_trade_no: str
    product_id: str
    trade_type: str  # JSAPI, NATIVE, MWEB or MINIPROGRAM
    appid: str
    openid: str
    body: str
    total_fee: int  # fen
    attach: str
    state: str
    transaction_id: Optional[str]
    refunded_fee: int  # fen, refunds WeChat reported SUCCESS
    created_at: datetime.datetime  # naive UTC
    paid_at: Optional[datetime.datetime]  # naive UTC
    # JSAPI: getBrandWCPayRequest's six; MINIPROGRAM: wx.requestPayment's five;
    # NATIVE: {"code_url"}; MWEB: {"mweb_url"}; None unless PREPAID.
    pay_params: Optional[Dict[str, str]] = None


@dataclass(frozen=True)
class RefundResult:
    """One refund request: PROCESSING (accepted), SUCCESS, or REQUESTED (outcome unknown).

    A REQUESTED refund is re-sent byte for byte by tornpay's follow-up until
    WeChat answers; ``on_refund`` fires once WeChat reports SUCCESS.
    """

    out_refund_no: str
    out_trade_no: str
    refund_fee: int  # fen
    state: str
    refund_id: Optional[str]
    last_error: Optional[str]


class OrderAPI:
    """Mixed into :class:`tornpay.Embedded`; needs ``self.ctx`` (the running context)."""

    ctx: Any

    async def create_order(self, product_id: Optional[str] = None, payer: str = "", *,
                           trade_type: str = place.JSAPI, client_ip: str = "127.0.0.1",
                           attach: Optional[str] = None, body: Optional[str] = None,
                           total_fee: Optional[int] = None) -> PaymentOrder:
        """Create an order and its WeChat prepay; the result carries ``pay_params``.

        Priced by ``resolve_product(product_id, payer)`` unless ``body`` and
        ``total_fee`` (int fen) are given: a price the estate computed.
        ``payer`` is the openid (JSAPI: under the Official Account;
        MINIPROGRAM: under the Mini Program). ``client_ip`` goes to WeChat as
        ``spbill_create_ip``: pass the payer's. Raises UnknownProduct,
        TradeTypeNotEnabled, InvalidRequest, TooManyOpenOrders, WeChatRefused.
        """
        price = None
        if body is not None or total_fee is not None:
            price = place.estate_price(body, total_fee, attach)
        elif not product_id:
            raise errors.InvalidRequest("give product_id, or body and total_fee")
        order = await place.place_order(self.ctx, payer=payer, trade_type=trade_type,
                                        product_id=product_id, client_ip=client_ip,
                                        attach=attach, price=price)
        return self._view(order)

    async def get_order(self, out_trade_no: str) -> PaymentOrder:
        """The order as stored here (no call to WeChat); OrderNotFound if there is none."""
        return self._view(await _load(self.ctx, out_trade_no))

    async def query(self, out_trade_no: str) -> PaymentOrder:
        """Ask WeChat (orderquery), apply its answer like a notify would, return the order."""
        await _load(self.ctx, out_trade_no)
        try:
            await admin.query_order(self.ctx, out_trade_no)
        except WeChatError as exc:
            raise errors.wechat_refusal(exc, out_trade_no) from None
        return self._view(await _load(self.ctx, out_trade_no))

    async def close(self, out_trade_no: str) -> PaymentOrder:
        """Close an unpaid order at WeChat, then here (``on_cancel`` reason ``closed``).

        WeChat refuses orders younger than ``orders.min_close_age_seconds``:
        InvalidState then (use :meth:`cancel` for a payer who gives up). If
        WeChat says it was paid meanwhile, the payment is applied instead.
        """
        await _load(self.ctx, out_trade_no)
        try:
            await admin.close_order(self.ctx, out_trade_no)
        except admin.Refused as exc:
            raise errors.InvalidState(str(exc), out_trade_no) from None
        except WeChatError as exc:
            raise errors.wechat_refusal(exc, out_trade_no) from None
        return self._view(await _load(self.ctx, out_trade_no))

    async def cancel(self, out_trade_no: str) -> PaymentOrder:
        """The payer gives up: closed here at once (``on_cancel`` ``user_cancelled``), at
        WeChat now or once it allows. InvalidState if it is no longer open."""
        await _load(self.ctx, out_trade_no)
        outcome = await cancel.cancel_order(self.ctx, out_trade_no)
        order = await _load(self.ctx, out_trade_no)
        if outcome == cancel.NOT_CANCELLABLE:
            raise errors.InvalidState(f"order {out_trade_no} is {order.state}; only an unpaid "
                                      "open order can be cancelled", out_trade_no)
        return self._view(order)

    async def refund(self, out_trade_no: str, fee: Optional[int] = None,
                     reason: Optional[str] = None) -> RefundResult:
        """Refund ``fee`` fen (None: all that is left) of a paid order.

        Raises OrderNotFound, InvalidState (not paid, more than is left, bad
        amount: nothing changed) or WeChatRefused (refused: the amount is
        released). A timeout returns state REQUESTED: tornpay re-sends it.
        """
        try:
            refund = await request_refund(self.ctx, out_trade_no, fee, reason or "")
        except NotFound as exc:
            raise errors.OrderNotFound(str(exc), out_trade_no) from None
        except RefundError as exc:  # RefundRefused: state or amount
            raise errors.InvalidState(str(exc), out_trade_no) from None
        if refund.state == "FAILED":
            raise errors.WeChatRefused(f"WeChat refused the refund: {refund.last_error}",
                                       _err_code(refund.last_error or ""),
                                       out_trade_no=out_trade_no)
        return RefundResult(refund.out_refund_no, out_trade_no, refund.refund_fee,
                            refund.state, refund.refund_id, refund.last_error)

    def _view(self, order: Order) -> PaymentOrder:
        settings = self.ctx.settings
        return PaymentOrder(
            out_trade_no=order.out_trade_no, product_id=order.product_id,
            trade_type=place.api_trade_type(settings, order),
            appid=order.appid or settings.wechat.appid, openid=order.openid, body=order.body,
            total_fee=order.total_fee, attach=order.attach or "", state=order.state,
            transaction_id=order.transaction_id, refunded_fee=order.refunded_fee,
            created_at=order.created_at, paid_at=order.paid_at,
            pay_params=place.pay_params(self.ctx, order))


def _get(out_trade_no: str) -> Optional[Order]:
    return Order.get_or_none(Order.out_trade_no == out_trade_no)


async def _load(ctx: Any, out_trade_no: str) -> Order:
    # On a database reader thread: the estate's IOLoop never waits on a lock (SPEC §12).
    order = await ctx.db_read(_get, out_trade_no)
    if order is None:
        raise errors.OrderNotFound(f"order {out_trade_no} not found", out_trade_no)
    return order


def _err_code(last_error: str) -> str:
    # A BusinessError reads "ERR_CODE: description"; a ProtocolError has no code.
    head = last_error.split(":", 1)[0].strip()
    return head if head and head.replace("_", "").isalnum() and head.isupper() else "FAIL"
