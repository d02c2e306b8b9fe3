"""WeChat's verdict on an order (an ``orderquery`` reply) turned into the state machine's move."""

import logging
from typing import Any, Mapping, Optional

import peewee

from tornpay.orders.transitions import Hooks, mark_closed, mark_paid, mark_payerror
from tornpay.storage.fastsql import Statement, param
from tornpay.storage.models import Order

logger = logging.getLogger("tornpay.orders.transitions")  # the name operators grep for


def apply_trade_state(out_trade_no: str, query_fields: Mapping[str, Any], hooks: Hooks) -> str:
    """Apply a verified ``orderquery`` reply; return its trade_state.

    Or ``AMOUNT_MISMATCH`` / ``TRANSACTION_REUSED`` when a SUCCESS cannot be ours
    (another amount, another order's transaction_id): nothing changes, one ALERT.

    SUCCESS pays (same transition as a notify), CLOSED/REVOKED close with reason
    ``closed``, PAYERROR -> PAYERROR; NOTPAY, USERPAYING and REFUND change nothing.
    """
    trade_state = str(query_fields.get("trade_state", ""))
    if query_fields.get("out_trade_no") not in (None, out_trade_no):
        raise ValueError(f"orderquery reply is for another order than {out_trade_no}")
    if trade_state == "SUCCESS":
        order = Order.get_or_none(Order.out_trade_no == out_trade_no)
        if order is None:
            raise LookupError(f"order {out_trade_no} not found")
        try:
            fee = int(query_fields.get("total_fee", -1))
        except (TypeError, ValueError):
            fee = -1
        if fee != order.total_fee:
            logger.error("ALERT order %s: orderquery total_fee %s differs from the order's %s; "
                         "not marked paid", out_trade_no, query_fields.get("total_fee"),
                         order.total_fee)
            return "AMOUNT_MISMATCH"
        try:
            mark_paid(out_trade_no, transaction_id=query_fields.get("transaction_id"),
                      time_end=query_fields.get("time_end"),
                      bank_type=query_fields.get("bank_type"),
                      cash_fee=query_fields.get("cash_fee"), source="orderquery", hooks=hooks,
                      openid=query_fields.get("openid"))
        except peewee.IntegrityError as error:
            return _reused_transaction(out_trade_no, query_fields.get("transaction_id"), error)
    elif trade_state in ("CLOSED", "REVOKED"):
        mark_closed(out_trade_no, "closed", hooks=hooks)
    elif trade_state == "PAYERROR":
        mark_payerror(out_trade_no, hooks=hooks)
    return trade_state


def _reused_transaction(out_trade_no: str, transaction_id: Optional[str],
                        error: peewee.IntegrityError) -> str:
    # transaction_id is unique: WeChat naming another order's transaction is no
    # database hiccup and asking again cannot fix it (mark_paid's savepoint
    # undid the attempt). The notify path refuses the same case the same way.
    holder = transaction_holder(transaction_id, out_trade_no)
    if holder is None:
        raise error  # another constraint: a real database error
    logger.error("ALERT order %s: orderquery reports transaction_id %s, which already paid "
                 "order %s; not marked paid", out_trade_no, transaction_id, holder)
    return "TRANSACTION_REUSED"


_HOLDER = Statement("tx_holder", lambda: Order.select(Order.out_trade_no).where(
    (Order.transaction_id == param(Order.transaction_id))
    & (Order.out_trade_no != param(Order.out_trade_no))))


def transaction_holder(transaction_id: Optional[str], out_trade_no: str) -> Optional[str]:
    """The other order ``transaction_id`` (unique) already paid, or None."""
    row = _HOLDER.one(transaction_id=transaction_id, out_trade_no=out_trade_no)
    return row[0] if row else None


def order_generation(out_trade_no: str) -> Optional[str]:
    """The API generation (``v2``/``v3``) an order was made in, or None if there is none."""
    row = Order.select(Order.api_version).where(Order.out_trade_no == out_trade_no).first()
    return row.api_version if row is not None else None
