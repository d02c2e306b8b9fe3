"""The NATIVE pay page (the code_url as a server-drawn QR code) and the MWEB relaunch."""

import datetime
import logging
from urllib.parse import quote

import segno

from tornpay.handlers.base import PageError
from tornpay.i18n import fen_to_yuan
from tornpay.orders.service import CheckoutError, fresh_mweb_url
from tornpay.orders.tradetypes import CODE_URL_LIFETIME_SECONDS
from tornpay.storage.models import utcnow

logger = logging.getLogger(__name__)

# 29 modules (version 3 at M) + 2 x 4 quiet zone, 6 px each: about 220 CSS px,
# comfortably above the >= 4 px per module a phone camera needs (addendum §2.4).
QR_SCALE = 6
QR_BORDER = 4


def qr_data_uri(code_url: str) -> str:
    """The exact code_url (nothing added, ECC M) as an SVG data URI, drawn here, never online."""
    code = segno.make_qr(code_url, error="m", boost_error=False)
    return code.svg_data_uri(scale=QR_SCALE, border=QR_BORDER, dark="#000", light="#fff")


def code_deadline(order) -> datetime.datetime:
    """When the QR code stops working: 2 hours after it was issued, or the order's expiry."""
    issued = order.prepay_at or order.created_at
    return min(issued + datetime.timedelta(seconds=CODE_URL_LIFETIME_SECONDS), order.expire_at)


def render_native(handler, order) -> None:
    """The QR page; after the deadline it offers a fresh code (a new order) instead."""
    deadline = code_deadline(order)
    seconds_left = max(0, int((deadline - utcnow()).total_seconds()))
    ctx = handler.ctx
    handler.render(
        "native.html", order=order, yuan=fen_to_yuan(order.total_fee),
        qr=qr_data_uri(order.code_url) if seconds_left and order.code_url else None,
        island={"code_url": order.code_url} if seconds_left else {"code_url": None},
        seconds_left=seconds_left,
        poll_url=f"{ctx.prefix}/orders/{order.out_trade_no}",
        success_url=handler.success_url(order),
        fresh_url=f"{ctx.prefix}/checkout/{order.product_id}?trade_type=NATIVE")


async def relaunch_mweb(handler, order) -> None:
    """"Pay again" on an MWEB order: a fresh mweb_url for the same order, then WeChat's cashier."""
    try:
        mweb_url = await fresh_mweb_url(handler.ctx, order)
    except CheckoutError:
        raise PageError(410, "This payment session has expired and WeChat will not renew it. "
                        "Please start again from the shop.", title="Payment expired") from None
    handler.redirect(mweb_redirect(mweb_url, result_page_url(handler.ctx, order)), status=303)


def result_page_url(ctx, order) -> str:
    """The absolute result page WeChat returns the MWEB payer to (on an H5 domain)."""
    public = ctx.settings.server.public_url.rstrip("/")
    return f"{public}{ctx.prefix}/orders/{order.out_trade_no}/result"


def mweb_redirect(mweb_url: str, return_url: str) -> str:
    """``mweb_url`` + ``&redirect_url=`` + the percent-encoded return page (addendum §3.4)."""
    return mweb_url + "&redirect_url=" + quote(return_url, safe="")
