"""The only code that changes an order's state: conditional updates plus outbox rows, atomically.

Every function here is synchronous on purpose: a ``db.atomic()`` block must
never contain an ``await`` (peewee shares one connection per thread, so another
coroutine's queries would run inside our transaction). Each state change is one
``UPDATE ... WHERE out_trade_no=? AND state IN (...)``; a row count of 1 means
this caller won, so concurrent notifies, the reconciler and other processes
cannot pay or cancel an order twice. Callers wake the dispatcher after a
function returns True (the transaction has committed by then).
"""

import datetime
import json
import logging
import uuid
from typing import Any, Callable, Iterable, Mapping, Optional, Tuple, Union

from tornpay.orders.registry import with_known_plugins
from tornpay.protocol.wechat_time import beijing_to_utc
from tornpay.storage import fastsql
from tornpay.storage.db import database_proxy as db
from tornpay.storage.fastsql import param
from tornpay.storage.models import (CLOSED, CREATED, PAID, PAYERROR, PREPAID, Delivery, Event,
                                    Order, utcnow)

logger = logging.getLogger(__name__)

CANCEL_REASONS = ("expired", "closed", "user_cancelled", "payerror")
PAYABLE_STATES = (CREATED, PREPAID, CLOSED, PAYERROR)  # a verified payment is never lost
CLOSABLE_STATES = (CREATED, PREPAID)

# Either a HookManager or any callable hook -> [plugin names].
Hooks = Union[Any, Callable[[str], Iterable[str]]]


def _plugin_names(hooks: Hooks, hook: str) -> list:
    names = hooks.plugin_names if hasattr(hooks, "plugin_names") else hooks
    # SPEC §6 fan-out: also every plugin another serving process has loaded.
    return with_known_plugins(hook, list(names(hook)))


def write_event(out_trade_no: str, hook: str, payload: Mapping[str, Any], hooks: Hooks,
                now: Optional[datetime.datetime] = None) -> str:
    """Write one outbox Event and a Delivery per plugin implementing ``hook``; return its id.

    The plugins are ours and those of every serving process (orders/registry.py).

    Call it inside the ``db.atomic()`` block of the state change it reports
    (e.g. ``on_refund`` with ``{"refund": RefundView.as_payload()}``).
    """
    event_id = uuid.uuid4().hex
    now = now or utcnow()
    _INSERT_EVENT.execute(id=event_id, hook=hook, out_trade_no=out_trade_no,
                          payload=json.dumps(dict(payload), sort_keys=True), created_at=now)
    names = _plugin_names(hooks, hook)
    if names:
        values: dict = {"event": event_id, "now": now}
        for i, name in enumerate(names):
            values[f"id{i}"], values[f"plugin{i}"] = f"{event_id}:{name}", name
        _INSERT_DELIVERIES[len(names)].execute(**values)
    # on_paid is reported in mark_paid's own line (one INFO line per payment).
    logger.log(logging.DEBUG if hook == "on_paid" else logging.INFO,
               "order %s: %s event %s for %d plugin(s)", out_trade_no, hook, event_id,
               len(names))
    return event_id


# The hot statements, compiled once per database (tornpay.storage.fastsql).
_INSERT_EVENT = fastsql.Statement("insert_event", lambda: Event.insert(
    id=param(Event.id), hook=param(Event.hook), out_trade_no=param(Event.out_trade_no),
    payload=param(Event.payload), created_at=param(Event.created_at)))
# One INSERT for all of an event's deliveries, one statement per plugin count.
_INSERT_DELIVERIES = fastsql.Family("insert_deliveries", lambda n: Delivery.insert_many([
    {Delivery.id: param(Delivery.id, f"id{i}"), Delivery.event: param(Delivery.event),
     Delivery.plugin: param(Delivery.plugin, f"plugin{i}"), Delivery.attempts: 0,
     Delivery.next_attempt_at: param(Delivery.next_attempt_at, "now"),
     Delivery.created_at: param(Delivery.created_at, "now")}
    for i in range(n)]))
# Keyed by (the columns set, the states allowed): always the same conditional
# UPDATE ... WHERE out_trade_no = ? AND state IN (...), whatever it sets.
_UPDATES = fastsql.Family("update_order", lambda key: Order.update(
    {getattr(Order, column): param(getattr(Order, column)) for column in key[0]}).where(
    (Order.out_trade_no == param(Order.out_trade_no, "_key")) & Order.state.in_(list(key[1]))))
_SET_PAYER_OPENID = fastsql.Statement("set_payer_openid", lambda: Order.update(
    openid=param(Order.openid)).where(
    (Order.out_trade_no == param(Order.out_trade_no)) & (Order.openid == "")))
_CLOSE_REASON = fastsql.Statement("close_reason", lambda: Order.select(Order.close_reason).where(
    Order.out_trade_no == param(Order.out_trade_no)))


def _update(out_trade_no: str, states: Iterable[str], **values: Any) -> bool:
    if "updated_at" not in values:
        values["updated_at"] = utcnow()
    stmt = _UPDATES[(tuple(sorted(values)), tuple(states))]
    return stmt.rowcount(_key=out_trade_no, **values) == 1


def mark_prepaid(out_trade_no: str, prepay_id: str, unified_request: str,
                 code_url: Optional[str] = None) -> bool:
    """CREATED -> PREPAID after a unified order; on PREPAID just refresh the prepay_id.

    A NATIVE order also stores its ``code_url`` (the QR code's text).
    """
    extra = {"code_url": code_url} if code_url else {}
    with db.atomic():
        won = _update(out_trade_no, (CREATED, PREPAID), state=PREPAID, prepay_id=prepay_id,
                      prepay_at=utcnow(), unified_request=unified_request, last_error=None,
                      **extra)
    if not won:
        logger.warning("order %s: prepay id not stored (order missing or no longer payable)",
                       out_trade_no)
    return won


def record_error(out_trade_no: str, message: str) -> None:
    """Remember why a half-made order stopped (the reconciler looks at such orders)."""
    with db.atomic():
        Order.update(last_error=message[:1000], updated_at=utcnow()).where(
            Order.out_trade_no == out_trade_no).execute()


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
                       openid: Optional[str] = None) -> Optional[Tuple[str, Optional[str]]]:
    """``mark_paid``'s work, for a caller already inside ``db.atomic()``.

    Returns None if the order was not payable (another caller won), else
    ``(event_id, close_reason)`` for ``log_paid`` once the caller committed.
    The notify path uses it so its own transaction needs no savepoint.
    """
    now = utcnow()
    won = _update(out_trade_no, PAYABLE_STATES, state=PAID, transaction_id=transaction_id,
                  time_end=time_end, bank_type=bank_type,
                  cash_fee=int(cash_fee) if cash_fee not in (None, "") else None,
                  paid_at=_paid_at(time_end, now), last_error=None, updated_at=now)
    if not won:
        return None
    if openid:
        # NATIVE and MWEB orders learn their payer only now (SPEC §9): keep it.
        _SET_PAYER_OPENID.execute(out_trade_no=out_trade_no, openid=openid)
    event_id = write_event(out_trade_no, "on_paid", {"source": source}, hooks, now=now)
    # close_reason survives the payment, so it tells us we had closed it.
    row = _CLOSE_REASON.one(out_trade_no=out_trade_no)
    return event_id, row[0] if row else None


def log_paid(out_trade_no: str, source: str, event_id: str, close_reason: Optional[str]) -> None:
    """The one INFO line of a payment (plus a warning if we had closed the order)."""
    if close_reason:
        logger.warning("order %s: paid (%s) after it was closed locally (%s); payment kept",
                       out_trade_no, source, close_reason)
    logger.info("order %s: PAID via %s (on_paid event %s)", out_trade_no, source, event_id)


def mark_closed(out_trade_no: str, reason: str, *, hooks: Hooks) -> bool:
    """CREATED|PREPAID -> CLOSED with an ``on_cancel(reason)`` event."""
    if reason not in ("expired", "closed", "user_cancelled"):
        raise ValueError(f"unknown close reason {reason!r}")
    return _cancel(out_trade_no, CLOSED, reason, hooks)


def mark_payerror(out_trade_no: str, *, hooks: Hooks) -> bool:
    """CREATED|PREPAID -> PAYERROR with an ``on_cancel("payerror")`` event."""
    return _cancel(out_trade_no, PAYERROR, "payerror", hooks)


def _cancel(out_trade_no: str, state: str, reason: str, hooks: Hooks) -> bool:
    with db.atomic():
        won = _update(out_trade_no, CLOSABLE_STATES, state=state, close_reason=reason)
        if won:
            write_event(out_trade_no, "on_cancel", {"reason": reason}, hooks)
    if won:
        logger.info("order %s: %s (%s)", out_trade_no, state, reason)
    return won


def apply_trade_state(out_trade_no: str, query_fields: Mapping[str, Any], hooks: Hooks) -> str:
    """Apply a verified ``orderquery`` reply; return its trade_state (or ``AMOUNT_MISMATCH``).

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
        mark_paid(out_trade_no, transaction_id=query_fields.get("transaction_id"),
                  time_end=query_fields.get("time_end"), bank_type=query_fields.get("bank_type"),
                  cash_fee=query_fields.get("cash_fee"), source="orderquery", hooks=hooks,
                  openid=query_fields.get("openid"))
    elif trade_state in ("CLOSED", "REVOKED"):
        mark_closed(out_trade_no, "closed", hooks=hooks)
    elif trade_state == "PAYERROR":
        mark_payerror(out_trade_no, hooks=hooks)
    return trade_state
