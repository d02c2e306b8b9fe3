"""The payer cancels an unpaid order: closed here at once, at WeChat now or once it allows."""

import datetime
import logging
from typing import Optional

from tornpay.interfaces import CoreContext
from tornpay.orders import transitions
from tornpay.protocol.errors import BusinessError, WeChatError
from tornpay.storage.executor import run_read, run_write
from tornpay.storage.models import CLOSED, CREATED, PREPAID, Order, utcnow

logger = logging.getLogger(__name__)

REASON = "user_cancelled"
# What cancel_order reports.
CANCELLED = "cancelled"  # closed here and at WeChat
CANCELLED_LOCALLY = "cancelled_locally"  # closed here; the reconciler closes it at WeChat later
PAID_INSTEAD = "paid"  # WeChat said ORDERPAID: the payment won
NOT_CANCELLABLE = "not_cancellable"  # already paid, closed or failed: nothing changed


async def cancel_order(ctx: CoreContext, out_trade_no: str) -> str:
    """Cancel a CREATED/PREPAID order for its payer; return one of the outcomes above.

    WeChat refuses ``closeorder`` on orders younger than
    ``orders.min_close_age_seconds`` (reference §7), yet the payer (and e.g. a
    reserved booking) should not wait for that: such an order is closed here
    now, firing ``on_cancel("user_cancelled")``, and marked
    ``close_at_wechat_after`` so the reconciler closes it at WeChat later. Until
    then the old pay page could still pay it; a verified payment always wins
    (CLOSED -> PAID fires ``on_paid``).
    """
    order = await run_read(ctx.dbx, Order.get_or_none,
                           Order.out_trade_no == out_trade_no)
    if order is None or order.state not in (CREATED, PREPAID):
        return NOT_CANCELLABLE
    now = utcnow()
    allowed_at = order.created_at + datetime.timedelta(
        seconds=ctx.settings.orders.min_close_age_seconds)
    if now < allowed_at:
        logger.info("order %s: payer cancels it before WeChat allows closeorder (%s UTC)",
                    out_trade_no, allowed_at.isoformat(timespec="seconds"))
        return await _close_here(ctx, out_trade_no, pending_until=allowed_at)
    try:
        await ctx.gateways.for_order(order).close_order(out_trade_no, order.sign_type,
                                                        appid=order.appid or None)
    except BusinessError as exc:
        if exc.err_code == "ORDERPAID":
            logger.warning("order %s: payer cancelled but closeorder says ORDERPAID; the "
                           "payment wins", out_trade_no)
            try:
                await ctx.reconciler.check(out_trade_no)
            except WeChatError as query_exc:  # the reconciler's next pass finds the payment
                logger.warning("order %s: orderquery after ORDERPAID failed: %s", out_trade_no,
                               query_exc)
            ctx.kick()
            state = (await run_read(ctx.dbx, Order.get_by_id, out_trade_no)).state
            return NOT_CANCELLABLE if state in (CREATED, PREPAID, CLOSED) else PAID_INSTEAD
        if exc.err_code not in ("ORDERCLOSED", "ORDERNOTEXIST"):
            return await _close_later(ctx, out_trade_no, exc)
        # ORDERCLOSED: already closed there; ORDERNOTEXIST: WeChat never saw it.
    except WeChatError as exc:
        return await _close_later(ctx, out_trade_no, exc)
    return await _close_here(ctx, out_trade_no, pending_until=None)


async def _close_later(ctx: CoreContext, out_trade_no: str, exc: Exception) -> str:
    # WeChat unreachable or refusing for now: the payer's cancel still holds here,
    # and the reconciler retries the close at WeChat from now on.
    logger.warning("order %s: closeorder failed (%s: %s); closing here, WeChat later",
                   out_trade_no, type(exc).__name__, exc)
    return await _close_here(ctx, out_trade_no, pending_until=utcnow())


async def _close_here(ctx: CoreContext, out_trade_no: str,
                      pending_until: Optional[datetime.datetime]) -> str:
    # One UPDATE: never CLOSED here without the note that WeChat is still open.
    won = await run_write(ctx.dbx, transitions.mark_closed, out_trade_no, REASON,
                          hooks=ctx.hooks, open_at_wechat_from=pending_until)
    if not won:
        return NOT_CANCELLABLE  # paid or closed meanwhile
    ctx.kick()
    return CANCELLED if pending_until is None else CANCELLED_LOCALLY
