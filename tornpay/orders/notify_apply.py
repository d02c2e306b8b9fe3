"""The writes of one checked payment notify: PAID once, its Notification row, reuse refused."""

import logging
from typing import Optional

import peewee

from tornpay.interfaces import ServingContext
from tornpay.orders import transitions
from tornpay.orders.notify_body import Refusal
from tornpay.orders.notify_checks import OrderRef
from tornpay.orders.trade_state import transaction_holder
from tornpay.storage.db import database_proxy as db
from tornpay.storage.db import is_postgres
from tornpay.storage.fastsql import Statement, param
from tornpay.storage.models import Notification, Order, utcnow

# The notify pipeline's own logger: operators grep for tornpay.orders.notify.
logger = logging.getLogger("tornpay.orders.notify")

ACCEPTED, DUPLICATE, REFUSED, IGNORED = "accepted", "duplicate", "refused", "ignored"

# Compiled once per database (tornpay.storage.fastsql).
_CURRENT = Statement("notify_current", lambda: Order.select(
    Order.state, Order.transaction_id).where(Order.out_trade_no == param(Order.out_trade_no)))
_INSERT_NOTIFICATION = Statement("insert_notification", lambda: Notification.insert(
    kind="pay", out_trade_no=param(Notification.out_trade_no),
    received_at=param(Notification.received_at), remote_ip=param(Notification.remote_ip),
    outcome=param(Notification.outcome), reason=param(Notification.reason)))


def apply_checked(ctx: ServingContext, order: OrderRef, fields: dict, remote_ip: str):
    """PAID once, with its Notification row.

    ``((event_id, close_reason), transaction_id)`` if this call won, else
    ``(None, the transaction_id that paid the order)``.
    """
    try:
        # No savepoint (two round trips on PostgreSQL): the pay UPDATE changes
        # nothing when another order holds the transaction_id (_apply_once).
        return _apply_once(ctx, order, fields, remote_ip)
    except peewee.IntegrityError:
        # Only when another notify paid an order with this transaction_id in
        # the same instant. PostgreSQL has aborted this transaction, so nothing
        # more can be read in it: answer FAIL; WeChat's retry is refused below.
        if is_postgres(db.obj):
            raise
        raise _reused_transaction(order, fields) from None


def _reused_transaction(order: OrderRef, fields: dict) -> Exception:
    """The refusal of a signed notify whose transaction_id already paid another order."""
    # transaction_id is unique: a signed notify naming another order's
    # transaction is no database hiccup, and retrying can never succeed, so
    # refuse it (WeChat may still repeat it; each repeat is refused the same
    # way, without a traceback).
    holder = transaction_holder(fields["transaction_id"], order.out_trade_no)
    if holder is None:
        return RuntimeError(f"order {order.out_trade_no}: not paid, and no other order holds "
                            f"transaction_id {fields['transaction_id']}")
    logger.error("ALERT order %s: signed notify carries transaction_id %s, which already "
                 "paid order %s; refused, nothing changed", order.out_trade_no,
                 fields["transaction_id"], holder)
    return Refusal(f"transaction_id {fields['transaction_id']} belongs to order {holder}",
                   "transaction_id already used by another order", order.out_trade_no,
                   alerted=True)


def _apply_once(ctx: ServingContext, order: OrderRef, fields: dict, remote_ip: str):
    cash_fee = fields.get("cash_fee")
    # Inside the caller's transaction, no savepoint: the PAID update, the outbox
    # rows and the Notification row commit together or not at all.
    paid = transitions.pay_in_transaction(
        order.out_trade_no, transaction_id=fields["transaction_id"],
        time_end=fields.get("time_end"), bank_type=fields.get("bank_type"),
        cash_fee=int(cash_fee) if cash_fee and cash_fee.isdigit() else None,
        source="notify", hooks=ctx.hooks, openid=fields.get("openid"),
        only_unused_transaction=True)
    if paid is not None:
        record(order.out_trade_no, remote_ip, ACCEPTED, "")
        return paid, fields["transaction_id"]
    state, transaction_id = _CURRENT.one(out_trade_no=order.out_trade_no)
    if state in transitions.PAYABLE_STATES:  # still payable: another order holds the id
        raise _reused_transaction(order, fields)
    reason = f"order already {state}"
    if transaction_id != fields["transaction_id"]:
        # Signed by WeChat, so a real second payment: someone must refund it.
        logger.error("ALERT order %s: notify with transaction_id %s but the order was "
                     "paid by %s", order.out_trade_no, fields["transaction_id"],
                     transaction_id)
        reason += f"; other transaction_id {fields['transaction_id']}"
    record(order.out_trade_no, remote_ip, DUPLICATE, reason)
    # WeChat repeats every notify until answered: routine, not news.
    logger.debug("notify for order %s: duplicate, nothing changed", order.out_trade_no)
    return None, transaction_id


def record(out_trade_no: Optional[str], remote_ip: str, outcome: str, reason: str) -> None:
    # One INSERT: atomic on its own outside a transaction, and part of the
    # caller's inside one (no savepoint round trips on the hot path).
    _INSERT_NOTIFICATION.execute(out_trade_no=(out_trade_no or None) and out_trade_no[:64],
                                 received_at=utcnow(), remote_ip=(remote_ip or "")[:64],
                                 outcome=outcome, reason=reason[:255])
