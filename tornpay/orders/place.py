"""Orders asked for by code (the Python and JSON APIs): trade type, price, then the one core path.

Both programming interfaces end in :func:`tornpay.orders.service.create_order`,
the function behind the checkout pages, so limits, states, the stored signed
request and ``on_order_created`` are the same whoever asks.
"""

import logging
from typing import Any, List, Optional

from tornpay import errors
from tornpay.hooks import PluginError
from tornpay.orders import limits
from tornpay.orders.tradetypes import JSAPI, MWEB, NATIVE
from tornpay.orders.service import (CheckoutError, UnknownProduct, create_order,
                                    fresh_mweb_url, jsapi_params, resolve)
from tornpay.storage.models import PREPAID, Order

logger = logging.getLogger(__name__)

# Not a WeChat trade type: a JSAPI order made with the Mini Program's appid.
MINIPROGRAM = "MINIPROGRAM"
API_TRADE_TYPES = (JSAPI, NATIVE, MWEB, MINIPROGRAM)


def enabled_trade_types(settings: Any) -> List[str]:
    """The trade types this merchant may use through the APIs (orders.trade_types + Mini)."""
    enabled = [t for t in settings.orders.trade_types if t != MINIPROGRAM]
    if settings.wechat.miniprogram_appid:
        enabled.append(MINIPROGRAM)
    return enabled


def check_trade_type(settings: Any, trade_type: str) -> None:
    """Raise TradeTypeNotEnabled unless ``trade_type`` is known and enabled here."""
    if trade_type not in enabled_trade_types(settings):
        raise errors.TradeTypeNotEnabled(
            f"trade type {trade_type!r} is not enabled here (enabled: "
            f"{', '.join(enabled_trade_types(settings))})")


def is_miniprogram(settings: Any, order: Any) -> bool:
    """True for an order made with the Mini Program's appid."""
    appid = getattr(order, "appid", "") or ""
    return bool(appid) and appid == settings.wechat.miniprogram_appid \
        and appid != settings.wechat.appid


def api_trade_type(settings: Any, order: Any) -> str:
    """The trade type as the APIs name it: MINIPROGRAM for a Mini Program's JSAPI order."""
    return MINIPROGRAM if is_miniprogram(settings, order) else order.trade_type


def estate_price(body: Any, total_fee: Any, attach: Optional[str]) -> dict:
    """A product dict from an estate's own price, checked as WeChat would check it."""
    if type(total_fee) is not int or total_fee <= 0:
        raise errors.InvalidRequest(f"total_fee must be a positive int number of fen, "
                                    f"got {total_fee!r}")
    if not isinstance(body, str) or not body or len(body.encode("utf-8")) > 128:
        raise errors.InvalidRequest("body must be a non-empty string of at most 128 bytes")
    return {"body": body, "total_fee": total_fee, "attach": attach or ""}


async def place_order(ctx: Any, *, payer: str, trade_type: str = JSAPI,
                      product_id: Optional[str] = None, client_ip: str = "127.0.0.1",
                      attach: Optional[str] = None, price: Optional[dict] = None) -> Order:
    """Create and prepay an order through the core; raise the typed errors of tornpay.errors.

    ``price`` (from :func:`estate_price`) is only ever an estate's own code's
    word; the JSON API never passes one, so a browser's price is never used.
    """
    check_trade_type(ctx.settings, trade_type)
    if attach is not None and (not isinstance(attach, str) or len(attach.encode()) > 127):
        raise errors.InvalidRequest("attach must be a string of at most 127 bytes")
    if not isinstance(payer, str) or not payer or len(payer) > 128:
        raise errors.InvalidRequest(f"a {trade_type} order needs its payer (the openid for "
                                    "JSAPI and MINIPROGRAM, your id of the payer otherwise)")
    appid = ctx.settings.wechat.miniprogram_appid if trade_type == MINIPROGRAM else ""
    # NATIVE and MWEB payers have no openid: ``payer`` owns the order (SPEC §9).
    by_openid = trade_type in (JSAPI, MINIPROGRAM)
    openid, owner = (payer, "") if by_openid else ("", payer)
    product = price
    try:
        if product is None and attach is not None:
            product = dict(await resolve(ctx, product_id or "", openid), attach=attach)
        # product None: the core prices it with resolve_product (and may reuse an open order).
        order = await create_order(ctx, product_id or "", openid, client_ip,
                                   trade_type=JSAPI if by_openid else trade_type, payer=owner,
                                   product=product, appid=appid)
        if trade_type == MWEB and not getattr(order, "mweb_url", None):
            order.mweb_url = await fresh_mweb_url(ctx, order)  # a reused order: a new URL
        return order
    except UnknownProduct:
        raise errors.UnknownProduct(f"there is no product {product_id!r} for sale") from None
    except PluginError as exc:
        logger.exception("product lookup of %s failed", product_id)
        raise errors.ProductLookupFailed(f"product {product_id!r} cannot be sold right now: "
                                         f"{exc}") from None
    except limits.TooManyOpenOrders as exc:
        raise errors.TooManyOpenOrders(f"{exc}: pay or cancel an open order first") from None
    except CheckoutError as exc:
        raise _checkout_refusal(exc) from None


def _checkout_refusal(exc: CheckoutError) -> errors.TornpayError:
    cause = exc.__cause__
    if cause is None:
        return errors.WeChatRefused(exc.message, "NO_PREPAY_ID", retryable=True,
                                    out_trade_no=exc.out_trade_no)
    return errors.wechat_refusal(cause, exc.out_trade_no, exc.message)


def pay_params(ctx: Any, order: Order) -> Optional[dict]:
    """What the payer's side needs to pay ``order`` now; None unless it is payable (PREPAID).

    JSAPI: the ``getBrandWCPayRequest`` six; a Mini Program: the five
    ``wx.requestPayment`` takes (its appId is signed, not sent); NATIVE:
    ``code_url``; MWEB: ``mweb_url``. Signed fresh with the order's sign type.
    """
    if order.state != PREPAID or not order.prepay_id:
        return None
    if order.trade_type == NATIVE:
        return {"code_url": order.code_url}
    if order.trade_type == MWEB:
        # WeChat's mweb_url lives 5 minutes: only a fresh order (or relaunch) carries one.
        mweb_url = getattr(order, "mweb_url", None)
        return {"mweb_url": mweb_url} if mweb_url else None
    params = jsapi_params(ctx, order)
    if is_miniprogram(ctx.settings, order):
        del params["appId"]
    return params
