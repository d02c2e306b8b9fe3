"""What the payer's pages ask of the core: an order by number, its state in words, plugin notes."""

import asyncio
import collections
import logging
from typing import Optional

from tornpay.interfaces import CoreContext
from tornpay.orders.service import check_once
from tornpay.storage import models
from tornpay.storage.dbjobs import is_busy, run_read
from tornpay.storage.models import Order, OrderState

logger = logging.getLogger(__name__)

PAID_STATES = (OrderState.PAID, OrderState.PARTIAL_REFUNDED, OrderState.REFUNDED)
ENDED_STATES = (OrderState.CLOSED, OrderState.PAYERROR)  # unpaid and never payable again
PAYABLE_STATE = OrderState.PREPAID
# MWEB orders already asked about once on the payer's return (bounded: oldest dropped).
_ASKED_ON_RETURN: "collections.OrderedDict[str, None]" = collections.OrderedDict()
_ASKED_MAX = 10000


def database_busy(exc: BaseException) -> bool:
    """True when ``exc`` means the database could not be had in time (nothing was written)."""
    return is_busy(exc)


def utcnow():
    """Naive UTC now, the storage convention (for the pages' countdowns)."""
    return models.utcnow()


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


async def back_from_cashier(ctx: CoreContext, order: Order) -> Order:
    """An MWEB payer back from WeChat's H5 cashier, no notify yet: one orderquery, not per poll."""
    if order.trade_type != "MWEB" or order.state != PAYABLE_STATE \
            or order.out_trade_no in _ASKED_ON_RETURN:
        return order
    _ASKED_ON_RETURN[order.out_trade_no] = None
    while len(_ASKED_ON_RETURN) > _ASKED_MAX:
        _ASKED_ON_RETURN.popitem(last=False)
    await check_once(ctx, order.out_trade_no)
    return await run_read(ctx.dbx, find_order, order.out_trade_no) or order


async def result_note(ctx: CoreContext, out_trade_no: str) -> Optional[str]:
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
