"""The only code that changes an order's state: conditional updates plus outbox rows, atomically.

Every function here is synchronous on purpose: a ``db.atomic()`` block must
never contain an ``await`` (peewee shares one connection per thread, so another
coroutine's queries would run inside our transaction). Each state change is one
``UPDATE ... WHERE out_trade_no=? AND state IN (...)``; a row count of 1 means
this caller won, so concurrent notifies, the reconciler and other processes
cannot pay or cancel an order twice. Callers wake the dispatcher after a
function returns True (the transaction has committed by then).

It is the state machine of both orders and refunds: the two tables below say
which state each move starts from, and this module is the only writer of a
state or of the columns that go with it (paid, close and refund fields), which
tests/test_architecture.py checks; its hot statements, compiled once, are in
``transition_sql`` (only this module uses them).
"""

import datetime
import logging
from typing import Any, Iterable, Optional, Tuple

from peewee import Case

from tornpay.orders.events import RefundView
from tornpay.orders.outbox import Hooks, write_event
from tornpay.orders.transition_sql import INSERT_ORDER, PAY, UPDATES
from tornpay.protocol.wechat_time import beijing_to_utc
from tornpay.storage.db import database_proxy as db
from tornpay.storage.models import OrderState as O
from tornpay.storage.models import ORDER_STATES, Order, Refund
from tornpay.storage.models import RefundState as R
from tornpay.storage.models import utcnow

logger = logging.getLogger(__name__)

# move -> (the states it starts from, the states it ends in)
ORDER_TRANSITIONS = {
    "create": ((), (O.CREATED,)),
    "prepay": ((O.CREATED, O.PREPAID), (O.PREPAID,)),
    "pay": ((O.CREATED, O.PREPAID, O.CLOSED, O.PAYERROR), (O.PAID,)),  # never lose a payment
    "close": ((O.CREATED, O.PREPAID), (O.CLOSED,)),
    "payerror": ((O.CREATED, O.PREPAID), (O.PAYERROR,)),
    "refund": ((O.PAID, O.PARTIAL_REFUNDED), (O.PARTIAL_REFUNDED, O.REFUNDED)),
}
REFUND_TRANSITIONS = {
    "request": ((), (R.REQUESTED,)),
    "accept": ((R.REQUESTED,), (R.PROCESSING,)),
    "fail": ((R.REQUESTED,), (R.FAILED,)),
    "finish": ((R.REQUESTED, R.PROCESSING), (R.SUCCESS, R.CHANGE, R.REFUNDCLOSE)),
}
PAYABLE_STATES = ORDER_TRANSITIONS["pay"][0]
CLOSABLE_STATES = ORDER_TRANSITIONS["close"][0]
REFUNDABLE_STATES = ORDER_TRANSITIONS["refund"][0]
OPEN_REFUND_STATES = REFUND_TRANSITIONS["finish"][0]  # amount reserved, result unknown
FINAL_REFUND_STATES = REFUND_TRANSITIONS["finish"][1]
CLOSE_REASONS = ("expired", "closed", "user_cancelled")  # payerror is its own move


class RefundError(Exception):
    """A refund that cannot be made or applied; the message is one line for a person."""


def _update(out_trade_no: str, states: Iterable[str], **values: Any) -> bool:
    if "updated_at" not in values:
        values["updated_at"] = utcnow()
    stmt = UPDATES[(tuple(sorted(values)), tuple(states))]
    return stmt.rowcount(_key=out_trade_no, **values) == 1


def create(values: dict) -> None:
    """A new order, born CREATED with nothing refunded, inside the caller's transaction."""
    values.update(state=O.CREATED, refunded_fee=0, reserved_refund_fee=0, check_attempts=0)
    INSERT_ORDER.execute(**values)


def mark_prepaid(out_trade_no: str, prepay_id: str, unified_request: str,
                 code_url: Optional[str] = None,
                 now: Optional[datetime.datetime] = None) -> bool:
    """CREATED -> PREPAID after a unified order; on PREPAID just refresh the prepay_id.

    A NATIVE order also stores its ``code_url`` (the QR code's text).
    """
    extra = {"code_url": code_url} if code_url else {}
    now = now or utcnow()
    with db.atomic():
        won = _update(out_trade_no, ORDER_TRANSITIONS["prepay"][0], state=O.PREPAID,
                      prepay_id=prepay_id, prepay_at=now, unified_request=unified_request,
                      last_error=None, updated_at=now, **extra)
    if not won:
        logger.warning("order %s: prepay id not stored (order missing or no longer payable)",
                       out_trade_no)
    return won


def record_error(out_trade_no: str, message: str) -> None:
    """Remember why a half-made order stopped (the reconciler looks at such orders)."""
    with db.atomic():
        _update(out_trade_no, ORDER_STATES, last_error=message[:1000])


def _paid_at(time_end: Optional[str], now: datetime.datetime) -> datetime.datetime:
    # time_end is Beijing time yyyyMMddHHmmss; store naive UTC like every column.
    return beijing_to_utc(time_end) or now


def mark_paid(out_trade_no: str, *, transaction_id: str, time_end: Optional[str],
              bank_type: Optional[str], cash_fee: Optional[int], source: str,
              hooks: Hooks, openid: Optional[str] = None) -> bool:
    """-> PAID from CREATED, PREPAID, CLOSED or PAYERROR, with an ``on_paid`` event.

    The caller has verified the payment (signature, appid, mch_id, amount).
    Returns True only for the one caller whose update won.
    """
    with db.atomic():
        paid = pay_in_transaction(out_trade_no, transaction_id=transaction_id, time_end=time_end,
                                  bank_type=bank_type, cash_fee=cash_fee, hooks=hooks,
                                  source=source, openid=openid)
    if paid is not None:
        log_paid(out_trade_no, source, *paid)
    return paid is not None


def pay_in_transaction(out_trade_no: str, *, transaction_id: str, time_end: Optional[str],
                       bank_type: Optional[str], cash_fee: Optional[int], hooks: Hooks,
                       source: str = "notify",
                       openid: Optional[str] = None, only_unused_transaction: bool = False,
                       ) -> Optional[Tuple[str, Optional[str]]]:
    """``mark_paid``'s work, for a caller already inside ``db.atomic()``.

    Returns None if the order was not payable (another caller won), else
    ``(event_id, close_reason)`` for ``log_paid`` once the caller committed.
    The notify path uses it so its own transaction needs no savepoint; with
    ``only_unused_transaction`` it also returns None, changing nothing, when
    another order holds ``transaction_id`` (instead of failing on the unique index).
    """
    now = utcnow()
    rows = PAY[(bool(openid), only_unused_transaction, PAYABLE_STATES)].all(
        out_trade_no=out_trade_no, transaction_id=transaction_id, time_end=time_end,
        bank_type=bank_type, cash_fee=int(cash_fee) if cash_fee not in (None, "") else None,
        paid_at=_paid_at(time_end, now), updated_at=now, openid=openid)
    if not rows:
        return None
    event_id = write_event(out_trade_no, "on_paid", {"source": source}, hooks, now=now)
    return event_id, rows[0][0]


def log_paid(out_trade_no: str, source: str, event_id: str, close_reason: Optional[str]) -> None:
    """The one INFO line of a payment (plus a warning if we had closed the order)."""
    if close_reason:
        logger.warning("order %s: paid (%s) after it was closed locally (%s); payment kept",
                       out_trade_no, source, close_reason)
    logger.info("order %s: PAID via %s (on_paid event %s)", out_trade_no, source, event_id)


def mark_closed(out_trade_no: str, reason: str, *, hooks: Hooks,
                open_at_wechat_from: Optional[datetime.datetime] = None) -> bool:
    """CREATED|PREPAID -> CLOSED with an ``on_cancel(reason)`` event.

    ``open_at_wechat_from``: closed here while still open at WeChat; the
    reconciler closes it there from that time on (``settled_at_wechat``).
    """
    if reason not in CLOSE_REASONS:
        raise ValueError(f"unknown close reason {reason!r}")
    extra = {}
    if open_at_wechat_from is not None:
        extra = {"close_at_wechat_after": open_at_wechat_from,
                 "next_check_at": open_at_wechat_from}
    return _cancel(out_trade_no, O.CLOSED, reason, hooks, **extra)


def mark_payerror(out_trade_no: str, *, hooks: Hooks) -> bool:
    """CREATED|PREPAID -> PAYERROR with an ``on_cancel("payerror")`` event."""
    return _cancel(out_trade_no, O.PAYERROR, "payerror", hooks)


def _cancel(out_trade_no: str, state: str, reason: str, hooks: Hooks, **extra: Any) -> bool:
    with db.atomic():
        won = _update(out_trade_no, CLOSABLE_STATES, state=state, close_reason=reason, **extra)
        if won:
            write_event(out_trade_no, "on_cancel", {"reason": reason}, hooks)
    if won:
        logger.info("order %s: %s (%s)", out_trade_no, state, reason)
    return won


def settled_at_wechat(out_trade_no: str) -> None:
    """A locally closed order is closed (or paid) at WeChat too: nothing left to close there."""
    with db.atomic():
        Order.update(close_at_wechat_after=None).where(Order.out_trade_no == out_trade_no).execute()


# Refunds (orders/refunds.py sends them; every row and amount change is here).
def reserve_refund(out_trade_no: str, fee: int, reason: str, request: str,
                   out_refund_no: str) -> Optional[Refund]:
    """Reserve ``fee`` on a refundable order and store the REQUESTED refund; None if refused."""
    with db.atomic():
        n = (Order.update(reserved_refund_fee=Order.reserved_refund_fee + fee,
                          updated_at=utcnow())
             .where((Order.out_trade_no == out_trade_no) & Order.state.in_(REFUNDABLE_STATES)
                    & (Order.reserved_refund_fee + fee <= Order.total_fee)).execute())
        if n != 1:
            return None
        return Refund.create(out_refund_no=out_refund_no, order=out_trade_no, refund_fee=fee,
                             reason=reason, state=REFUND_TRANSITIONS["request"][1][0],
                             request=request)


def _move_refund(out_refund_no: str, move: str, **values: Any) -> bool:
    values.setdefault("updated_at", utcnow())
    return (Refund.update(**values)
            .where((Refund.out_refund_no == out_refund_no)
                   & Refund.state.in_(REFUND_TRANSITIONS[move][0]))
            .execute()) == 1


def mark_refund_accepted(out_refund_no: str, refund_id: Optional[str]) -> bool:
    """REQUESTED -> PROCESSING; if a result overtook the reply, only fill in the refund_id."""
    with db.atomic():
        won = _move_refund(out_refund_no, "accept", state=R.PROCESSING, refund_id=refund_id,
                           last_error=None)
        if not won:
            Refund.update(refund_id=refund_id).where(
                (Refund.out_refund_no == out_refund_no) & Refund.refund_id.is_null()).execute()
    return won


def mark_refund_failed(out_refund_no: str, message: str) -> bool:
    """REQUESTED -> FAILED (WeChat refused it) and the reserved amount released."""
    with db.atomic():
        refund = Refund.get_by_id(out_refund_no)
        won = _move_refund(out_refund_no, "fail", state=R.FAILED, last_error=message[:500])
        if won:
            _release(refund)
    return won


def _release(refund: Refund) -> None:
    Order.update(reserved_refund_fee=Order.reserved_refund_fee - refund.refund_fee,
                 updated_at=utcnow()).where(Order.out_trade_no == refund.out_trade_no).execute()


def finish_refund(refund: Refund, status: str, hooks: Hooks, **values: Any) -> bool:
    """REQUESTED|PROCESSING -> SUCCESS (order credited, ``on_refund``) or CHANGE/REFUNDCLOSE."""
    if status not in FINAL_REFUND_STATES:
        raise ValueError(f"refund {refund.out_refund_no}: {status!r} is not a final state")
    with db.atomic():
        if not _move_refund(refund.out_refund_no, "finish", state=status, last_error=None,
                            **values):
            return False
        if status == R.SUCCESS:
            _credit_order(refund, values.get("refund_id") or refund.refund_id, hooks)
        else:
            _release(refund)
    return True


def _credit_order(refund: Refund, refund_id: Optional[str], hooks: Hooks) -> None:
    # Inside the caller's transaction. Raising rolls the refund row back too.
    fee = refund.refund_fee
    new_total = Order.refunded_fee + fee
    n = (Order.update(refunded_fee=new_total,
                      state=Case(None, [(new_total >= Order.total_fee, O.REFUNDED)],
                                 O.PARTIAL_REFUNDED),
                      updated_at=utcnow())
         .where((Order.out_trade_no == refund.out_trade_no) & Order.state.in_(REFUNDABLE_STATES)
                & (new_total <= Order.total_fee))
         .execute())
    if n != 1:
        logger.error("ALERT refund %s: order %s cannot take a refund of %d fen (state or "
                     "amount); not applied", refund.out_refund_no, refund.out_trade_no, fee)
        raise RefundError(f"order {refund.out_trade_no} cannot take refund {refund.out_refund_no}")
    view = RefundView(out_refund_no=refund.out_refund_no, refund_fee=fee, refund_id=refund_id)
    write_event(refund.out_trade_no, "on_refund", {"refund": view.as_payload()}, hooks)
