"""What the payer's pages ask of the core: an order by number, and its state in words."""

from typing import Optional

from tornpay.storage.models import Order, OrderState

PAID_STATES = (OrderState.PAID, OrderState.PARTIAL_REFUNDED, OrderState.REFUNDED)
ENDED_STATES = (OrderState.CLOSED, OrderState.PAYERROR)  # unpaid and never payable again
PAYABLE_STATE = OrderState.PREPAID


def find_order(out_trade_no: str) -> Optional[Order]:
    """The order, or None."""
    return Order.get_or_none(Order.out_trade_no == out_trade_no)


def page_status(order: Order) -> str:
    """``paid``, ``cancelled`` or ``pending``: what the result page tells the payer."""
    if order.state in PAID_STATES:
        return "paid"
    if order.state in ENDED_STATES:
        return "cancelled"
    return "pending"
