"""What the payer's pages ask of the core: an order by number, its state in words, plugin notes."""

import asyncio
import logging
from typing import Any, Optional

from tornpay.storage.models import Order, OrderState

logger = logging.getLogger(__name__)

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


async def result_note(ctx: Any, out_trade_no: str) -> Optional[str]:
    """The first note a plugin offers for this order's result page, or None.

    A plugin may offer ``tornpay_result_note(out_trade_no) -> str | None``
    (the booking plugin does: its booking's state). It is not a hook (SPEC §6
    keeps five) but a page extra, like ``tornpay_models``: it runs off the
    IOLoop, within the hook timeout, and a failure only loses the note.
    """
    loop = asyncio.get_running_loop()
    timeout = ctx.settings.deliveries.timeout_seconds
    for note in ctx.hooks.offered("tornpay_result_note"):
        try:
            text = await asyncio.wait_for(loop.run_in_executor(None, note, out_trade_no),
                                          timeout)
        except Exception:  # a plugin's page extra must never break the result page
            logger.exception("tornpay_result_note(%s) failed", out_trade_no)
            continue
        if text:
            return str(text)
    return None
