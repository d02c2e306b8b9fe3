"""Order creation (hook price, one stored signed unified order, bounded retries), JSAPI params."""

import asyncio
import datetime
import logging
import time
from typing import Optional

from tornpay.interfaces import CoreContext
from tornpay.orders import limits, tradetypes, transitions
from tornpay.orders.events import OrderView
from tornpay.protocol.errors import BusinessError, WeChatError
from tornpay.protocol.ids import make_out_trade_no, nonce_str
from tornpay.protocol.wechat_time import BEIJING
from tornpay.storage.models import PREPAID, Order, utcnow

logger = logging.getLogger(__name__)

# First pause between unified-order attempts, doubled each time: short, because
# a person is waiting on the checkout redirect.
RETRY_BACKOFF_SECONDS = 0.2


class CheckoutError(Exception):
    """A checkout that cannot go on; ``message`` is safe to show to the payer."""

    def __init__(self, message: str, status: int = 502, out_trade_no: Optional[str] = None,
                 **params):
        super().__init__(message % params if params else message)
        self.message = message  # English, with %(name)s for params (pages translate it)
        self.status = status
        self.out_trade_no = out_trade_no
        self.params = params


class UnknownProduct(CheckoutError):
    """No plugin knows the product id."""

    def __init__(self, product_id: str):
        super().__init__("There is no product %(product)s for sale here.", status=404,
                         product=repr(product_id))


def beijing_stamp(moment: datetime.datetime) -> str:
    """``yyyyMMddHHmmss`` in Beijing time, as time_start/time_expire want it."""
    return moment.astimezone(BEIJING).strftime("%Y%m%d%H%M%S")


async def resolve(ctx: CoreContext, product_id: str, openid: str) -> dict:
    """The product from the ``resolve_product`` hook (never the browser), or UnknownProduct."""
    product = await ctx.hooks.resolve_product(product_id, openid)
    if product is None:
        raise UnknownProduct(product_id)
    return product


def _unified_fields(ctx: CoreContext, out_trade_no: str, product: dict, openid: str,
                    client_ip: str, now: datetime.datetime, trade_type: str = tradetypes.JSAPI,
                    product_id: str = "") -> dict:
    settings = ctx.settings
    expire = now + datetime.timedelta(minutes=settings.orders.expire_minutes)
    fields = {
        "body": product["body"],
        "attach": product.get("attach") or None,
        "out_trade_no": out_trade_no,
        "fee_type": "CNY",
        "total_fee": product["total_fee"],
        "spbill_create_ip": client_ip,
        "time_start": beijing_stamp(now),
        "time_expire": beijing_stamp(expire),
        "notify_url": notify_url(settings),
    }
    fields.update(tradetypes.extra_fields(settings, trade_type, product_id, openid))
    return fields


def notify_url(settings) -> str:
    return settings.public_url_for("/notify")


async def create_order(ctx: CoreContext, product_id: str, openid: str, client_ip: str, *,
                       trade_type: str = tradetypes.JSAPI, payer: str = "",
                       product: Optional[dict] = None, appid: str = "") -> Order:
    """Create an order for ``product_id`` paid by ``openid`` and get its prepay_id.

    NATIVE and MWEB orders (SPEC §9) have no openid: ``payer`` (the signed
    payer cookie's id) owns them; a JSAPI order's payer is its openid. The
    returned row of an MWEB order carries the reply's ``mweb_url`` attribute.
    ``product`` (``body``, ``total_fee``, ``attach``) is a price an estate's own
    code computed (the Python API; never a browser's word), else
    ``resolve_product`` prices it. ``appid`` is a Mini Program's, else the
    Official Account's; the order records it.

    The signed unified-order request is stored with the CREATED row before it
    is sent, and every retry re-sends those exact bytes (reference §4.4), so an
    order is never half-made without a record of what was asked and why it stopped.
    Raises :class:`CheckoutError` (with the order's number when one was made).
    """
    hook_priced = product is None
    if product is None:
        product = await resolve(ctx, product_id, openid)
    appid = appid or ctx.settings.wechat.appid
    now = datetime.datetime.now(datetime.timezone.utc)
    gateway = ctx.gateways.current
    # v3: the pay page signs with the merchant's RSA key, so RSA also marks a v3 order.
    sign_type = "RSA" if gateway.generation == "v3" else ctx.settings.wechat.sign_type
    # The reuse and limit checks run with the INSERT in one writer transaction.
    owner = payer or openid
    out_trade_no = make_out_trade_no()
    fields = dict(_unified_fields(ctx, out_trade_no, product, openid, client_ip, now,
                                  trade_type, product_id), appid=appid)
    request_text = gateway.prepare_prepay(fields, sign_type)
    created = now.replace(tzinfo=None)
    values = dict(
        out_trade_no=out_trade_no, product_id=product_id, openid=openid,
        body=product["body"], attach=product.get("attach") or "",
        total_fee=product["total_fee"], fee_type="CNY", sign_type=sign_type,
        api_version=gateway.generation,
        spbill_create_ip=client_ip, unified_request=request_text, created_at=created,
        expire_at=created + datetime.timedelta(minutes=ctx.settings.orders.expire_minutes),
        updated_at=created, trade_type=trade_type, payer=owner, appid=appid)
    # Only a hook-priced order is offered again: an estate's own price is its own order.
    existing = await ctx.db_write(limits.insert_unless_reused, ctx.settings, values,
                                  hook_priced, group=True)
    if existing is not None:
        logger.info("order %s: still open for this payer and product; reused",
                    existing.out_trade_no)
        return existing
    logger.info("order %s: created for product %s (%d fen, %s, %s)", out_trade_no, product_id,
                product["total_fee"], sign_type, trade_type)
    order = await _prepay(ctx, gateway, values)
    await ctx.hooks.notify_order_created(OrderView.from_row(order))
    return order


async def _prepay(ctx: CoreContext, gateway, values: dict) -> Order:
    """Send the stored unified order; the order once WeChat's session is stored (or raise)."""
    out_trade_no, trade_type = values["out_trade_no"], values["trade_type"]
    reply = await _send_unified_order(gateway, ctx, out_trade_no, values["unified_request"])
    prepay_id = reply.get("prepay_id")
    pay_url = _pay_url(trade_type, reply)
    if not prepay_id or pay_url == "":
        await ctx.db_write(transitions.record_error, out_trade_no,
                           "unified order reply without prepay_id (or code_url / mweb_url)",
                           group=True, atomic_alone=True)
        raise CheckoutError("WeChat Pay did not return a payment session. Please try again.",
                            out_trade_no=out_trade_no)
    order = await _prepaid(ctx, values, prepay_id,
                           pay_url if trade_type == tradetypes.NATIVE else None)
    order.mweb_url = pay_url if trade_type == tradetypes.MWEB else None
    return order


async def _prepaid(ctx: CoreContext, values: dict, prepay_id: str,
                   code_url: Optional[str]) -> Order:
    """The order once its prepay_id is stored: as inserted plus the PREPAID move."""
    no, moment = values["out_trade_no"], utcnow()
    if await ctx.db_write(transitions.mark_prepaid, no, prepay_id, values["unified_request"],
                          code_url=code_url, now=moment, group=True, atomic_alone=True):
        # Built here rather than read back (a full-row SELECT cost a third of a
        # checkout's CPU, bench/README.md).
        return Order(**dict(values, state=PREPAID, prepay_id=prepay_id, prepay_at=moment,
                            updated_at=moment, code_url=code_url))
    # Already paid or closed meanwhile (a notify can beat the reply): the pay
    # page shows whatever state the order is in now.
    logger.info("order %s: prepay id arrived after the order moved on", no)
    return await ctx.db_read(Order.get_by_id, no)


def _pay_url(trade_type: str, reply: dict) -> Optional[str]:
    """NATIVE's code_url or MWEB's mweb_url ("" when the reply lacks it), None for JSAPI."""
    if trade_type == tradetypes.NATIVE:
        return reply.get("code_url") or ""
    if trade_type == tradetypes.MWEB:
        return reply.get("mweb_url") or ""
    return None


async def _send_unified_order(gateway, ctx: CoreContext, out_trade_no: str,
                              request_text: str) -> dict:
    attempts = ctx.settings.orders.unified_order_attempts
    delay = RETRY_BACKOFF_SECONDS
    for attempt in range(1, attempts + 1):
        try:
            return await gateway.send_prepay(request_text)
        except WeChatError as exc:
            error = exc
            if exc.retryable and attempt < attempts:
                logger.warning("order %s: unified order attempt %d/%d failed (%s); retrying",
                               out_trade_no, attempt, attempts, exc)
                await asyncio.sleep(delay)
                delay *= 2
                continue
            break
    code = error.err_code if isinstance(error, BusinessError) else type(error).__name__
    why = f"unified order failed after {attempt} attempt(s): {code}: {error}"
    logger.error("order %s: %s", out_trade_no, why)
    await ctx.db_write(transitions.record_error, out_trade_no, why, group=True,
                       atomic_alone=True)
    if error.retryable:
        message = ("WeChat Pay is not answering right now (%(code)s). "
                   "Please try again in a minute.")
    else:
        message = "WeChat Pay refused to create the payment (%(code)s)."
    # Chained: the Python and JSON APIs report WeChat's own err_code from it.
    raise CheckoutError(message, out_trade_no=out_trade_no, code=code) from error


# WeChat's prepay_id lives 2 hours (reference §4.2); refresh it a little before.
PREPAY_ID_LIFETIME = datetime.timedelta(hours=2)
PREPAY_REFRESH_MARGIN = datetime.timedelta(minutes=10)


def prepay_is_stale(order, now: Optional[datetime.datetime] = None) -> bool:
    """True when the order's prepay_id is (nearly) past WeChat's 2-hour lifetime."""
    now = now or datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    if order.prepay_at is None:
        return False
    return now >= order.prepay_at + PREPAY_ID_LIFETIME - PREPAY_REFRESH_MARGIN


async def refresh_prepay_id(ctx: CoreContext, order) -> Order:
    """Get a fresh prepay_id by re-sending the order's stored unified order verbatim.

    WeChat allows re-entry with exactly the original parameters for an unpaid
    order (reference §4.4, P16); any other change would be refused. When WeChat
    refuses (paid or closed meanwhile) the order is checked with orderquery at
    once, so the caller sees its real state; :class:`CheckoutError` says why.
    """
    await _reenter(ctx, order, "prepay_id")
    logger.info("order %s: prepay id refreshed", order.out_trade_no)
    return await ctx.db_read(Order.get_by_id, order.out_trade_no)


async def fresh_mweb_url(ctx: CoreContext, order) -> str:
    """A new ``mweb_url`` (they live 5 minutes) for an MWEB order, by the same re-entry."""
    return (await _reenter(ctx, order, "mweb_url"))["mweb_url"]


async def _reenter(ctx: CoreContext, order, wanted: str) -> dict:
    """Re-send the stored request; the reply must carry ``wanted`` and a storable prepay_id."""
    try:
        reply = await _send_unified_order(ctx.gateways.for_order(order), ctx,
                                          order.out_trade_no, order.unified_request)
    except CheckoutError:
        await _check_now(ctx, order.out_trade_no)
        raise
    prepay_id = reply.get("prepay_id")
    if not prepay_id or not reply.get(wanted) or not await ctx.db_write(
            transitions.mark_prepaid, order.out_trade_no, prepay_id, order.unified_request,
            group=True):
        raise CheckoutError("This payment session has expired. Please start again from the shop.",
                            status=410, out_trade_no=order.out_trade_no)
    return reply


async def check_once(ctx: CoreContext, out_trade_no: str) -> None:
    """Ask WeChat (orderquery) about one order now; the answer is applied as a notify's."""
    await _check_now(ctx, out_trade_no)


async def _check_now(ctx: CoreContext, out_trade_no: str) -> None:
    # ORDERPAID / ORDERCLOSED on re-entry: orderquery has the truth (and pays or closes).
    if ctx.reconciler is None:  # the CLI: a serving process's reconciler will ask
        return
    try:
        await ctx.reconciler.check(out_trade_no)
    except WeChatError as exc:
        logger.warning("order %s: query after a refused prepay refresh failed: %s",
                       out_trade_no, exc)
    ctx.kick()


def jsapi_params(ctx: CoreContext, order, *, timestamp: Optional[int] = None,
                 nonce: Optional[str] = None) -> dict:
    """The six ``getBrandWCPayRequest`` parameters, paySign fresh over exactly five (§5.4).

    The sign type is the order's (it must match the unified order), whatever
    the settings say today.
    """
    stamp = str(int(time.time()) if timestamp is None else int(timestamp))
    return ctx.gateways.for_order(order).pay_params(order, stamp, nonce or nonce_str())


def order_json(order) -> dict:
    """The owner's view of an order, as GET /orders/{out_trade_no} answers it."""
    return {
        "out_trade_no": order.out_trade_no,
        "product_id": order.product_id,
        "total_fee": order.total_fee,
        "state": order.state,
        "trade_type": order.trade_type,
        "transaction_id": order.transaction_id,
        "created_at": _iso(order.created_at),
        "paid_at": _iso(order.paid_at),
    }


def _iso(moment: Optional[datetime.datetime]) -> Optional[str]:
    return None if moment is None else moment.replace(microsecond=0).isoformat() + "Z"
