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

from tornpay.interfaces import CoreContext
from tornpay.orders import transitions
from tornpay.orders.transitions import OPEN_REFUND_STATES as OPEN_STATES  # noqa: F401
from tornpay.orders.transitions import FINAL_REFUND_STATES as FINAL_STATUSES
from tornpay.orders.transitions import REFUNDABLE_STATES, RefundError
from tornpay.protocol.errors import BusinessError, ProtocolError, WeChatError
from tornpay.protocol.ids import make_out_refund_no
from tornpay.protocol.wechat_time import beijing_to_utc, utc_text
from tornpay.storage.db import database_proxy as db
from tornpay.storage.executor import run_read, run_write
from tornpay.storage.models import Order, Refund
from tornpay.storage.models import RefundState as R
from tornpay.storage.models import utcnow

logger = logging.getLogger(__name__)

REFUND_PATH = "/secapi/pay/refund"
# "Retry later with the same parameters" (reference §8.3): the refund may still happen.
RETRY_LATER = frozenset({"SYSTEMERROR", "BIZERR_NEED_RETRY", "FREQUENCY_LIMITED",
                         "INVALID_REQ_TOO_MUCH"})


class RefundRefused(RefundError):
    """Refused before calling WeChat (order state, amount): nothing was changed."""


class NotFound(RefundError, LookupError):
    """No such order or refund."""


def refund_notify_url(settings: Any) -> str:
    """Where WeChat posts this server's refund results."""
    return settings.public_url_for("/refund-notify")


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


async def request_refund(ctx: CoreContext, out_trade_no: str, refund_fee: Optional[int] = None,
                         reason: str = "") -> Refund:
    """Refund ``refund_fee`` fen (None: everything left) of a paid order; return the Refund row.

    Raises NotFound / RefundRefused (nothing changed). Otherwise the row says
    what happened: PROCESSING (accepted), FAILED (refused by WeChat, amount
    released, ``last_error`` says why) or REQUESTED (outcome unknown; resend).
    """
    dbx = ctx.dbx  # database work off the loop in a server; None in the CLI
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
    if await run_write(dbx, transitions.reserve_refund, out_trade_no, fee, reason, text,
                       out_refund_no) is None:
        raise RefundRefused(await run_read(dbx, _why_refused, out_trade_no, fee))
    logger.info("order %s: refund %s of %d fen requested", out_trade_no, out_refund_no, fee)
    return await send_refund(ctx, out_refund_no)


async def send_refund(ctx: CoreContext, out_refund_no: str) -> Refund:
    """(Re-)send a REQUESTED refund's stored request byte for byte and record the answer."""
    dbx = ctx.dbx
    refund = await run_read(dbx, Refund.get_or_none, Refund.out_refund_no == out_refund_no)
    if refund is None:
        raise NotFound(f"refund {out_refund_no} not found")
    if refund.state != R.REQUESTED:
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
    ctx.kick()
    return await run_read(dbx, Refund.get_by_id, out_refund_no)


def _note_error(out_refund_no: str, message: str) -> None:
    logger.warning("refund %s: outcome unknown (%s); kept REQUESTED for a resend",
                   out_refund_no, message)
    with db.atomic():
        Refund.update(last_error=message[:500], updated_at=utcnow()).where(
            Refund.out_refund_no == out_refund_no).execute()


def _mark_accepted(out_refund_no: str, reply: dict) -> None:
    refund_id = reply.get("refund_id") or None
    transitions.mark_refund_accepted(out_refund_no, refund_id)
    logger.info("refund %s accepted by WeChat (refund_id %s)", out_refund_no, refund_id)


def _mark_failed(out_refund_no: str, message: str) -> None:
    transitions.mark_refund_failed(out_refund_no, message)
    logger.warning("refund %s refused by WeChat: %s; amount released", out_refund_no, message)


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
    if refund_status == R.PROCESSING:
        _mark_accepted(out_refund_no, {"refund_id": refund_id})
        return False
    if refund_status not in FINAL_STATUSES:
        raise RefundError(f"refund {out_refund_no}: unknown refund_status {refund_status!r}")
    values = {}
    if refund_id:
        values["refund_id"] = refund_id
    if success_time:
        # WeChat writes Beijing time; every time tornpay stores or prints is UTC.
        values["success_time"] = utc_text(beijing_to_utc(success_time))
        if values["success_time"] is None:
            logger.warning("refund %s: success_time %r is not a WeChat time; not stored",
                           out_refund_no, success_time[:40])
    won = transitions.finish_refund(refund, refund_status, hooks, **values)
    if won:
        logger.info("refund %s of order %s: %s", out_refund_no, refund.out_trade_no, refund_status)
    return won


async def query_refund(ctx: CoreContext, out_refund_no: str) -> Tuple[str, bool]:
    """Ask WeChat (refundquery) about a refund and apply the answer; return (status, changed)."""
    dbx = ctx.dbx
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
        ctx.kick()
    return result.status, changed
