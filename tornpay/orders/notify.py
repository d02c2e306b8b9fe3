"""The payment-notify pipeline (SPEC §5): every check, one atomic PAID move, a row per POST."""

import logging
from typing import Optional

import peewee

from tornpay.interfaces import ServingContext
from tornpay.orders import transitions
from tornpay.orders.notify_body import Refusal, is_v3_body  # noqa: F401 (is_v3_body: API)
from tornpay.orders.notify_body import decode_body as _decode
from tornpay.orders.notify_apply import (ACCEPTED, DUPLICATE, IGNORED, REFUSED,  # noqa: F401
                                         apply_checked, record)
from tornpay.orders.notify_checks import OrderRef, check_parties, check_v2_signature
from tornpay.orders.paid_cache import repeats
from tornpay.protocol.ids import is_valid_out_trade_no
from tornpay.storage.db import database_proxy as db
from tornpay.storage.executor import is_busy
from tornpay.storage.fastsql import Statement, param
from tornpay.storage.models import Order

logger = logging.getLogger(__name__)

# Compiled once per database: peewee rebuilding these per notify cost more than
# running them (bench/README.md).
_LOOKUP = Statement("notify_lookup", lambda: Order.select(
    Order.out_trade_no, Order.sign_type, Order.total_fee, Order.api_version, Order.appid).where(
    Order.out_trade_no == param(Order.out_trade_no)))


class NotifyResult(tuple):
    """``(ok, return_msg)`` for the XML reply, plus ``outcome`` for metrics."""

    def __new__(cls, ok: bool, message: str, outcome: str, paid=None, known=None):
        result = super().__new__(cls, (ok, message))
        result.outcome = outcome
        result.paid = paid  # (out_trade_no, event_id, close_reason) when this notify paid
        result.known = known  # (OrderRef, transaction_id) of the payment, once committed
        return result


TEMPORARY_FAILURE = "temporary failure, retry"


def process_pay_notify(ctx: ServingContext, body: bytes, remote_ip: str,
                       headers=None) -> NotifyResult:
    """Check and apply one payment notify on this thread; ``(ok, return_msg)`` for the reply.

    The result's ``outcome`` is accepted, duplicate, ignored, refused or error.
    The server itself goes through ``handle_pay_notify`` (off the IOLoop); this
    is the same pipeline for callers without one. A database failure answers
    FAIL (WeChat will retry) with nothing half-written.
    """
    try:
        with db.atomic():
            result = apply_pay_notify(ctx, body, remote_ip, headers)
    except peewee.PeeweeException:
        logger.exception("notify: database error; answering FAIL so WeChat retries")
        _rollback_quietly()
        return NotifyResult(False, TEMPORARY_FAILURE, "error")
    return after_commit(ctx, result)


async def handle_pay_notify(ctx: ServingContext, body: bytes, remote_ip: str,
                            headers=None) -> NotifyResult:
    """``process_pay_notify`` with its transaction on a database writer (group commit).

    Answered only once this notify's own change has committed; a database that
    cannot be had within ``database.wait_timeout`` answers FAIL, nothing written.
    A repeat of a payment this process saw committed (``ctx.paid_cache``) is
    checked on the loop and only its audit row goes to the writer.
    """
    decoded = None
    cache = ctx.paid_cache
    if cache is not None and not is_v3_body(body):
        try:
            decoded = _decode(ctx, body, headers or {})
        except Refusal:
            pass  # refused by the pipeline below, with its row and log line
        else:
            fields = decoded[0]
            paid = cache.get(fields.get("out_trade_no"))
            if paid is not None and repeats(ctx.settings.wechat, paid, fields):
                cache.hits += 1
                return await _repeat(ctx, fields["out_trade_no"], remote_ip)
    try:
        result = await ctx.db_write(apply_pay_notify, ctx, body, remote_ip, headers,
                                    decoded=decoded, group=True)
    except Exception as exc:  # peewee, driver or DbBusy: nothing of this notify committed
        return _unavailable(remote_ip, exc)
    return after_commit(ctx, result)


async def _repeat(ctx: ServingContext, out_trade_no: str, remote_ip: str) -> NotifyResult:
    try:
        # Its audit row is all a repeat writes; answered once that is durable too.
        await ctx.db_write(record, out_trade_no, remote_ip, DUPLICATE, "order already paid",
                           group=True, atomic_alone=True)
    except Exception as exc:
        return _unavailable(remote_ip, exc)
    logger.debug("notify for order %s: duplicate, nothing changed", out_trade_no)
    return NotifyResult(True, "OK", DUPLICATE)


def _unavailable(remote_ip: str, exc: BaseException) -> NotifyResult:
    logger.log(logging.WARNING if is_busy(exc) else logging.ERROR,
               "notify from %s: database unavailable (%s: %s); answering FAIL so WeChat "
               "retries", remote_ip, type(exc).__name__, exc, exc_info=not is_busy(exc))
    return NotifyResult(False, TEMPORARY_FAILURE, "error")


def after_commit(ctx: ServingContext, result: NotifyResult) -> NotifyResult:
    """Log a payment, wake the dispatcher, remember the payment: after the commit."""
    if result.paid is not None:
        transitions.log_paid(result.paid[0], "notify", *result.paid[1:])
        ctx.kick()
    cache = ctx.paid_cache
    if result.known is not None and cache is not None:
        order, transaction_id = result.known
        cache.add(order.out_trade_no, order.sign_type, order.total_fee, order.appid,
                  transaction_id)
    return result


def apply_pay_notify(ctx: ServingContext, body: bytes, remote_ip: str,
                     headers=None, decoded=None) -> NotifyResult:
    """Every check and the change of one notify, inside the caller's transaction.

    ``decoded``: ``(fields, generation)`` if the caller decoded ``body`` already.
    Raises database errors (the caller's transaction is then rolled back).
    """
    out_trade_no = None
    try:
        fields, generation = decoded or _decode(ctx, body, headers or {})
        out_trade_no = fields.get("out_trade_no")
        order = _check(ctx, fields, generation)
    except Refusal as refusal:
        return _refused(ctx, refusal, remote_ip, out_trade_no)
    if fields.get("result_code") != "SUCCESS":
        # Ordinary JSAPI payments are only notified on success; anything else
        # is logged and acknowledged so WeChat stops, and pays nothing.
        why = f"result_code {fields.get('result_code')} {fields.get('err_code', '')}".strip()
        logger.warning("notify for order %s from %s not a payment: %s", order.out_trade_no,
                       remote_ip, why)
        record(order.out_trade_no, remote_ip, IGNORED, why)
        return NotifyResult(True, "OK", IGNORED)
    try:
        paid, paid_by = apply_checked(ctx, order, fields, remote_ip)
    except Refusal as refusal:
        return _refused(ctx, refusal, remote_ip, out_trade_no)
    # Only v2 repeats are answered from the cache (a v3 body is decrypted first).
    known = (order, paid_by) if paid_by == fields["transaction_id"] and generation == "v2" \
        else None
    if paid is None:
        return NotifyResult(True, "OK", DUPLICATE, known=known)
    return NotifyResult(True, "OK", ACCEPTED, (order.out_trade_no,) + tuple(paid), known)


def _refused(ctx: ServingContext, refusal: Refusal, remote_ip: str,
             out_trade_no: Optional[str]) -> NotifyResult:
    if refusal.alerted:
        # Its ALERT line is logged already: one line per incident, and always stored.
        record(refusal.out_trade_no, remote_ip, REFUSED, refusal.reason)
    else:
        # Logged and stored at a bounded rate, attacker text quoted (orders/refusals.py).
        ctx.refusals.refused("pay", remote_ip, refusal.reply, refusal.reason,
                             claimed=refusal.out_trade_no or out_trade_no,
                             verified=refusal.out_trade_no if refusal.signed else None,
                             record=record)
    return NotifyResult(False, refusal.reply, REFUSED)


def _check(ctx: ServingContext, fields: dict, generation: str = "v2") -> OrderRef:
    """Every check of SPEC §5 except result_code; return the order it pays."""
    wechat = ctx.settings.wechat
    if fields.get("return_code") != "SUCCESS":
        raise Refusal(f"return_code {fields.get('return_code')!r}: {fields.get('return_msg')}",
                      "return_code is not SUCCESS")
    out_trade_no = fields.get("out_trade_no")
    if not is_valid_out_trade_no(out_trade_no):
        raise Refusal("missing or malformed out_trade_no", "invalid out_trade_no")
    row = _LOOKUP.one(out_trade_no=out_trade_no)
    if row is None:
        raise Refusal("unknown out_trade_no", "order not found", out_trade_no)
    order = OrderRef(*row)
    if order.api_version != generation:
        # Each order finishes in the generation it began in (SPEC §10).
        raise Refusal(f"a {generation} notify for a {order.api_version} order",
                      "wrong API generation", out_trade_no)
    if generation == "v2":
        check_v2_signature(wechat, order, fields)
    try:
        check_parties(wechat, order, fields)
    except Refusal as refusal:
        refusal.signed = True  # signed by WeChat: its out_trade_no may name the log line
        raise
    return order


def _rollback_quietly() -> None:
    try:
        if db.in_transaction():
            db.rollback()
    except Exception:  # the connection itself may be gone; the next request reconnects
        logger.debug("rollback after a database error failed", exc_info=True)
