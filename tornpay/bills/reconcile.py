"""Compare a parsed bill with our orders and refunds (addendum §6); settle what can be settled.

Classes: PAID_AT_WECHAT (A1: billed as paid, unpaid here: settled through
``orderquery`` exactly as the reconciler does, so ``on_paid`` fires once),
UNKNOWN_ORDER (A2), MISSING_IN_BILL (B: paid here on the day, not billed),
AMOUNT_DIFFERS (C1, never corrected automatically), TRANSACTION_DIFFERS (F),
REFUND_UNKNOWN (D1), REFUND_MISSING (D2) and REFUND_DIFFERS (D3).
"""

import datetime
import logging
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional

from tornpay.interfaces import CoreContext
from tornpay.bills.parse import Bill
from tornpay.console.queries import beijing_day_utc
from tornpay.orders.admin import query_order
from tornpay.protocol.errors import WeChatError
from tornpay.storage.dbjobs import run_read
from tornpay.storage.models import PAID, PARTIAL_REFUNDED, REFUNDED, Order, Refund, RefundState

logger = logging.getLogger(__name__)

PAID_STATES = (PAID, PARTIAL_REFUNDED, REFUNDED)
ACCEPTED_REFUNDS = (RefundState.PROCESSING, RefundState.SUCCESS, RefundState.CHANGE,
                    RefundState.REFUNDCLOSE)  # WeChat took them
KINDS = ("PAID_AT_WECHAT", "UNKNOWN_ORDER", "MISSING_IN_BILL", "AMOUNT_DIFFERS",
         "TRANSACTION_DIFFERS", "REFUND_UNKNOWN", "REFUND_MISSING", "REFUND_DIFFERS")
CHUNK = 500  # ids per IN (...) query


@dataclass
class Difference:
    """One disagreement between the bill and us."""

    kind: str
    out_trade_no: Optional[str] = None
    out_refund_no: Optional[str] = None
    bill_fee: Optional[int] = None
    our_fee: Optional[int] = None
    settled: bool = False
    detail: str = ""


def _by_key(model: Any, field: Any, keys: Iterable[str]) -> Dict[str, Any]:
    keys = list(keys)
    found: Dict[str, Any] = {}
    for i in range(0, len(keys), CHUNK):
        for row in model.select().where(field.in_(keys[i:i + CHUNK])):
            found[getattr(row, field.name)] = row
    return found


def _matched(billed: Dict[str, Any], field: Any):
    """``(key, billed line, our row or None)`` for every line of the bill."""
    ours = _by_key(field.model, field, billed)
    return [(key, line, ours.get(key)) for key, line in billed.items()]


async def _settle(ctx: CoreContext, order: Order) -> Difference:
    """A1: ask WeChat and apply the answer through the reconciler's path."""
    no = order.out_trade_no
    diff = Difference("PAID_AT_WECHAT", no, bill_fee=order.total_fee, our_fee=order.total_fee)
    try:
        trade_state = await query_order(ctx, no)
    except (WeChatError, LookupError, ValueError) as exc:
        diff.detail = f"was {order.state}; orderquery failed: {exc}"
        return diff
    now = (await run_read(ctx.dbx, Order.get_by_id, no)).state
    diff.settled = now in PAID_STATES
    diff.detail = f"was {order.state}; orderquery {trade_state}; now {now}"
    return diff


def _payments_read(billed: Dict[str, Any], day: datetime.date):
    """Our orders of the billed lines, and the orders paid here on ``day`` (one reader job)."""
    start, end = beijing_day_utc(day)
    paid_here = Order.select().where(Order.state.in_(PAID_STATES) & (Order.paid_at >= start)
                                     & (Order.paid_at < end))
    return _matched(billed, Order.out_trade_no), list(paid_here)


async def compare_payments(ctx: CoreContext, bill: Bill, day: datetime.date) -> List[Difference]:
    billed = {p.out_trade_no: p for p in bill.payments}
    diffs = []
    # The reads on a database reader thread (SPEC §12); settling (orderquery) in between.
    matched, paid_here = await run_read(ctx.dbx, _payments_read, billed, day)
    for no, p, order in matched:
        if order is None:
            diffs.append(Difference("UNKNOWN_ORDER", no, bill_fee=p.total_fee, detail=(
                f"appid {p.appid}, transaction_id {p.transaction_id}")))
        elif p.total_fee != order.total_fee:
            diffs.append(Difference("AMOUNT_DIFFERS", no, bill_fee=p.total_fee,
                                    our_fee=order.total_fee, detail=f"here {order.state}"))
        elif order.state not in PAID_STATES:
            diffs.append(await _settle(ctx, order))
        elif order.transaction_id and order.transaction_id != p.transaction_id:
            diffs.append(Difference("TRANSACTION_DIFFERS", no, bill_fee=p.total_fee,
                                    our_fee=order.total_fee, detail=(
                                        f"bill {p.transaction_id}, here {order.transaction_id}")))
    for order in paid_here:
        if order.out_trade_no not in billed:
            diffs.append(Difference("MISSING_IN_BILL", order.out_trade_no,
                                    our_fee=order.total_fee, detail=(
                                        f"paid here (time_end {order.time_end}), not billed")))
    return diffs


def compare_refunds(bill: Bill, day: datetime.date) -> List[Difference]:
    billed = {r.out_refund_no: r for r in bill.refunds}
    diffs = []
    for no, r, mine in _matched(billed, Refund.out_refund_no):
        if mine is None:
            diffs.append(Difference("REFUND_UNKNOWN", r.out_trade_no, no, bill_fee=r.refund_fee,
                                    detail=f"refund_id {r.refund_id}, {r.status}"))
        elif mine.refund_fee != r.refund_fee:
            diffs.append(Difference("REFUND_DIFFERS", r.out_trade_no, no, bill_fee=r.refund_fee,
                                    our_fee=mine.refund_fee, detail=f"here {mine.state}"))
    start, end = beijing_day_utc(day)
    for mine in Refund.select().where(Refund.state.in_(ACCEPTED_REFUNDS)
                                      & (Refund.created_at >= start) & (Refund.created_at < end)):
        if mine.out_refund_no not in billed:
            diffs.append(Difference("REFUND_MISSING", mine.out_trade_no, mine.out_refund_no,
                                    our_fee=mine.refund_fee, detail=f"here {mine.state}"))
    return diffs


async def compare(ctx: CoreContext, bill: Bill, day: datetime.date) -> List[Difference]:
    """Every difference between ``bill`` (of Beijing day ``day``) and our records."""
    payments = await compare_payments(ctx, bill, day)
    return payments + await run_read(ctx.dbx, compare_refunds, bill, day)
