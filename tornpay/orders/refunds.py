"""Refunds: reserve the amount and store the signed request, call WeChat, apply the result once.

A refund is two steps on purpose (reference §8, P18). First, in ONE transaction,
the amount is reserved on the order by a conditional update (so two refunds
racing can never exceed the paid amount) and the Refund row is stored with the
exact signed request. Then, outside the transaction, the request is sent; a
timeout or a retryable error keeps the row REQUESTED so a retry re-sends the
same ``out_refund_no`` and bytes, and WeChat refunds it at most once. The final
result (refund notify or refundquery) is applied once by a conditional update
of the Refund row from REQUESTED/PROCESSING, in the same transaction as the
order's ``refunded_fee`` and the ``on_refund`` outbox event.
"""

import logging
from typing import Any, Optional, Tuple

from peewee import Case

from tornpay.orders.events import RefundView
from tornpay.orders.transitions import write_event
from tornpay.protocol.errors import BusinessError, ProtocolError, WeChatError
from tornpay.protocol.ids import make_out_refund_no
from tornpay.protocol.wechat_time import beijing_to_utc, utc_text
from tornpay.storage.db import database_proxy as db
from tornpay.storage.executor import run_read, run_write
from tornpay.storage.models import PAID, PARTIAL_REFUNDED, REFUNDED, Order, Refund, utcnow

logger = logging.getLogger(__name__)

REFUND_PATH = "/secapi/pay/refund"
REFUNDABLE_STATES = (PAID, PARTIAL_REFUNDED)
OPEN_STATES = ("REQUESTED", "PROCESSING")  # the amount is reserved, the result unknown
FINAL_STATUSES = ("SUCCESS", "REFUNDCLOSE", "CHANGE")
# "Retry later with the same parameters" (reference §8.3): the refund may still happen.
RETRY_LATER = frozenset({"SYSTEMERROR", "BIZERR_NEED_RETRY", "FREQUENCY_LIMITED",
                         "INVALID_REQ_TOO_MUCH"})


class RefundError(Exception):
    """A refund that cannot be made or applied; the message is one line for a person."""


class RefundRefused(RefundError):
    """Refused before calling WeChat (order state, amount): nothing was changed."""


class NotFound(RefundError, LookupError):
    """No such order or refund."""


def refund_notify_url(settings: Any) -> str:
    """Where WeChat posts this server's refund results."""
    return settings.server.public_url.rstrip("/") + settings.server.prefix + "/refund-notify"


def _kick(ctx: Any) -> None:
    # The CLI has no dispatcher: the serving process picks the event up itself.
    dispatcher = getattr(ctx, "dispatcher", None)
    if dispatcher is not None:
        dispatcher.kick()


def _reserve(order: Order, fee: Optional[int], reason: str, body: bytes,
             out_refund_no: str) -> Refund:
    """Reserve ``fee`` on the order and store the Refund row, atomically (or refuse)."""
    with db.atomic():
        n = (Order.update(reserved_refund_fee=Order.reserved_refund_fee + fee,
                          updated_at=utcnow())
             .where((Order.out_trade_no == order.out_trade_no)
                    & Order.state.in_(REFUNDABLE_STATES)
                    & (Order.reserved_refund_fee + fee <= Order.total_fee))
             .execute())
        if n != 1:
            raise RefundRefused(_why_refused(order.out_trade_no, fee))
        return Refund.create(out_refund_no=out_refund_no, order=order.out_trade_no,
                             refund_fee=fee, reason=reason, state="REQUESTED",
                             request=body.decode("utf-8"))


def _why_refused(out_trade_no: str, fee: int) -> str:
    order = Order.get_or_none(Order.out_trade_no == out_trade_no)
    if order is None:
        return f"order {out_trade_no} not found"
    if order.state not in REFUNDABLE_STATES:
        return f"order {out_trade_no} is {order.state}; only PAID or PARTIAL_REFUNDED orders " \
               "can be refunded"
    left = order.total_fee - order.reserved_refund_fee
    return (f"refund of {fee} fen refused: order {out_trade_no} has {left} fen left to refund "
            f"(total {order.total_fee}, refunded or pending {order.reserved_refund_fee})")


async def request_refund(ctx: Any, out_trade_no: str, refund_fee: Optional[int] = None,
                         reason: str = "") -> Refund:
    """Refund ``refund_fee`` fen (None: everything left) of a paid order; return the Refund row.

    Raises NotFound / RefundRefused (nothing changed). Otherwise the row says
    what happened: PROCESSING (accepted), FAILED (refused by WeChat, amount
    released, ``last_error`` says why) or REQUESTED (outcome unknown; resend).
    """
    dbx = getattr(ctx, "dbx", None)  # database work off the loop in a server
    order = await run_read(dbx, Order.get_or_none, Order.out_trade_no == out_trade_no)
    if order is None:
        raise NotFound(f"order {out_trade_no} not found")
    if order.state not in REFUNDABLE_STATES:
        raise RefundRefused(await run_read(dbx, _why_refused, out_trade_no, refund_fee or 0))
    fee = order.total_fee - order.reserved_refund_fee if refund_fee is None else refund_fee
    if type(fee) is not int or fee <= 0:
        raise RefundRefused(await run_read(dbx, _why_refused, out_trade_no, fee)
                            if refund_fee is None
                            else f"refund fee must be a positive number of fen, got {fee!r}")
    if len(reason.encode("utf-8")) > 80:
        raise RefundRefused("refund reason is longer than 80 bytes")
    out_refund_no = make_out_refund_no()
    # total_fee is the ORIGINAL order total, not what is left (P18).
    params = {"out_trade_no": out_trade_no, "transaction_id": order.transaction_id,
              "out_refund_no": out_refund_no, "total_fee": order.total_fee,
              "refund_fee": fee, "refund_desc": reason or None,
              "notify_url": refund_notify_url(ctx.settings), "appid": order.appid or None}
    text = ctx.gateways.for_order(order).prepare_refund(params, order.sign_type)
    await run_write(dbx, _reserve, order, fee, reason, text.encode("utf-8"), out_refund_no)
    logger.info("order %s: refund %s of %d fen requested", out_trade_no, out_refund_no, fee)
    return await send_refund(ctx, out_refund_no)


async def send_refund(ctx: Any, out_refund_no: str) -> Refund:
    """(Re-)send a REQUESTED refund's stored request byte for byte and record the answer."""
    dbx = getattr(ctx, "dbx", None)
    refund = await run_read(dbx, Refund.get_or_none, Refund.out_refund_no == out_refund_no)
    if refund is None:
        raise NotFound(f"refund {out_refund_no} not found")
    if refund.state != "REQUESTED":
        raise RefundRefused(f"refund {out_refund_no} is {refund.state}; only a REQUESTED "
                            "refund is re-sent")
    try:
        gateway = ctx.gateways.for_order(await run_read(dbx, Order.get_by_id,
                                                        refund.out_trade_no))
        reply = await gateway.send_refund(refund.request)
    except BusinessError as exc:
        if exc.err_code in RETRY_LATER:
            await run_write(dbx, _note_error, out_refund_no, str(exc))
        else:
            await run_write(dbx, _mark_failed, out_refund_no, str(exc))
    except ProtocolError as exc:
        # return_code FAIL (bad signature, parameters) is a definite "not done";
        # an unreadable reply is not.
        if exc.fields.get("return_code") == "FAIL":
            await run_write(dbx, _mark_failed, out_refund_no, str(exc))
        else:
            await run_write(dbx, _note_error, out_refund_no, str(exc))
    except WeChatError as exc:
        await run_write(dbx, _note_error, out_refund_no, str(exc))
    else:
        await run_write(dbx, _mark_accepted, out_refund_no, reply)
    _kick(ctx)
    return await run_read(dbx, Refund.get_by_id, out_refund_no)


def _note_error(out_refund_no: str, message: str) -> None:
    logger.warning("refund %s: outcome unknown (%s); kept REQUESTED for a resend",
                   out_refund_no, message)
    with db.atomic():
        Refund.update(last_error=message[:500], updated_at=utcnow()).where(
            Refund.out_refund_no == out_refund_no).execute()


def _mark_accepted(out_refund_no: str, reply: dict) -> None:
    refund_id = reply.get("refund_id") or None
    with db.atomic():
        n = (Refund.update(state="PROCESSING", refund_id=refund_id, last_error=None,
                           updated_at=utcnow())
             .where((Refund.out_refund_no == out_refund_no) & (Refund.state == "REQUESTED"))
             .execute())
        if n != 1:  # the result notify overtook the reply: keep its state, fill the id
            Refund.update(refund_id=refund_id).where(
                (Refund.out_refund_no == out_refund_no) & Refund.refund_id.is_null()).execute()
    logger.info("refund %s accepted by WeChat (refund_id %s)", out_refund_no, refund_id)


def _mark_failed(out_refund_no: str, message: str) -> None:
    with db.atomic():
        refund = Refund.get_by_id(out_refund_no)
        n = (Refund.update(state="FAILED", last_error=message[:500], updated_at=utcnow())
             .where((Refund.out_refund_no == out_refund_no) & (Refund.state == "REQUESTED"))
             .execute())
        if n == 1:
            _release(refund)
    logger.warning("refund %s refused by WeChat: %s; amount released", out_refund_no, message)


def _release(refund: Refund) -> None:
    Order.update(reserved_refund_fee=Order.reserved_refund_fee - refund.refund_fee,
                 updated_at=utcnow()).where(Order.out_trade_no == refund.out_trade_no).execute()


def apply_refund_result(out_refund_no: str, refund_status: str, *, hooks: Any,
                        refund_id: Optional[str] = None, success_time: Optional[str] = None,
                        refund_fee: Optional[int] = None, **settlement: Any) -> bool:
    """Apply WeChat's verdict on a refund once; True when this call changed something.

    SUCCESS: the refund row moves REQUESTED/PROCESSING -> SUCCESS, the order's
    refunded_fee grows and it becomes PARTIAL_REFUNDED or REFUNDED, and an
    ``on_refund`` event is written, all in one transaction. REFUNDCLOSE/CHANGE:
    recorded and the reserved amount released (no hook). PROCESSING: marks a
    REQUESTED refund accepted. Raises NotFound, or RefundError on an amount
    that does not match ours (an alert: nothing is applied).
    """
    refund = Refund.get_or_none(Refund.out_refund_no == out_refund_no)
    if refund is None:
        raise NotFound(f"refund {out_refund_no} not found")
    if refund_fee is not None and int(refund_fee) != refund.refund_fee:
        logger.error("ALERT refund %s: WeChat reports refund_fee %s, ours is %d; not applied",
                     out_refund_no, refund_fee, refund.refund_fee)
        raise RefundError(f"refund {out_refund_no}: amount {refund_fee} differs from ours")
    if settlement:
        logger.info("refund %s settlement: %s", out_refund_no,
                    ", ".join(f"{k}={v}" for k, v in sorted(settlement.items())))
    if refund_status == "PROCESSING":
        _mark_accepted(out_refund_no, {"refund_id": refund_id})
        return False
    if refund_status not in FINAL_STATUSES:
        raise RefundError(f"refund {out_refund_no}: unknown refund_status {refund_status!r}")
    values = {"state": refund_status, "updated_at": utcnow(), "last_error": None}
    if refund_id:
        values["refund_id"] = refund_id
    if success_time:
        # WeChat writes Beijing time; every time tornpay stores or prints is UTC.
        values["success_time"] = utc_text(beijing_to_utc(success_time))
        if values["success_time"] is None:
            logger.warning("refund %s: success_time %r is not a WeChat time; not stored",
                           out_refund_no, success_time[:40])
    with db.atomic():
        n = (Refund.update(**values)
             .where((Refund.out_refund_no == out_refund_no) & Refund.state.in_(OPEN_STATES))
             .execute())
        if n != 1:
            won = False
        elif refund_status == "SUCCESS":
            _credit_order(refund, refund_id or refund.refund_id, hooks)
            won = True
        else:
            _release(refund)
            won = True
    if won:
        logger.info("refund %s of order %s: %s", out_refund_no, refund.out_trade_no, refund_status)
    return won


def _credit_order(refund: Refund, refund_id: Optional[str], hooks: Any) -> None:
    # Inside the caller's transaction. Raising rolls the refund row back too.
    fee = refund.refund_fee
    new_total = Order.refunded_fee + fee
    n = (Order.update(refunded_fee=new_total,
                      state=Case(None, [(new_total >= Order.total_fee, REFUNDED)],
                                 PARTIAL_REFUNDED),
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


async def query_refund(ctx: Any, out_refund_no: str) -> Tuple[str, bool]:
    """Ask WeChat (refundquery) about a refund and apply the answer; return (status, changed)."""
    dbx = getattr(ctx, "dbx", None)
    refund = await run_read(dbx, Refund.get_or_none, Refund.out_refund_no == out_refund_no)
    if refund is None:
        raise NotFound(f"refund {out_refund_no} not found")
    order = await run_read(dbx, Order.get_by_id, refund.out_trade_no)
    result = await ctx.gateways.for_order(order).refund_query(out_refund_no,
                                                              appid=order.appid or None)
    if result is None:
        raise RefundError(f"refundquery reply does not list refund {out_refund_no}")
    changed = await run_write(
        dbx, apply_refund_result, out_refund_no, result.status, hooks=ctx.hooks,
        refund_id=result.refund_id, success_time=result.success_time,
        refund_fee=result.refund_fee, **{k: v for k, v in result.extra.items() if v is not None})
    if changed:
        _kick(ctx)
    return result.status, changed
