"""GET /checkout/{product_id} and GET /oauth/callback: which trade type, who pays, then the order."""

import binascii
import hashlib
import hmac
import logging
import time

from tornpay.handlers.base import OPENID_COOKIE, PAYER_COOKIE, BaseHandler, PageError
from tornpay.handlers.paypages import mweb_redirect, result_page_url
from tornpay.orders import tradetypes
from tornpay.orders.limits import TooManyOpenOrders
from tornpay.orders.service import CheckoutError, create_order, resolve
from tornpay.hooks import PluginError
from tornpay.protocol.errors import OAuthError, WeChatError
from tornpay.protocol.ids import nonce_str

logger = logging.getLogger(__name__)

OAUTH_COOKIE = "tornpay_oauth"
STATE_MAX_AGE = 600  # seconds between leaving for WeChat and coming back
# Short enough that the hex-encoded id fits WeChat's state (a-zA-Z0-9, <= 128 bytes).
PRODUCT_ID = r"([A-Za-z0-9_.-]{1,32})"
_NONCE_LEN, _TS_LEN, _MAC_LEN = 16, 10, 32


def make_state(secret: str, product_id: str, nonce: str, now: float) -> str:
    """``<ts><nonce><hex(product_id)><mac>``: letters and digits only, as WeChat wants."""
    ts = "%010d" % int(now)
    return ts + nonce + product_id.encode("utf-8").hex() + _mac(secret, ts, nonce, product_id)


def read_state(secret: str, state: str, nonce: str, now: float) -> str:
    """Return the product id ``state`` carries, or raise ValueError saying why it is refused."""
    if not state or len(state) > 128 or not state.isascii() or not state.isalnum():
        raise ValueError("missing or malformed state")
    ts, got_nonce = state[:_TS_LEN], state[_TS_LEN:_TS_LEN + _NONCE_LEN]
    body, mac = state[_TS_LEN + _NONCE_LEN:-_MAC_LEN], state[-_MAC_LEN:]
    try:
        product_id = binascii.unhexlify(body).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise ValueError("malformed state") from None
    if not ts.isdigit() or not hmac.compare_digest(mac, _mac(secret, ts, got_nonce, product_id)):
        raise ValueError("state signature invalid")
    if not 0 <= now - int(ts) <= STATE_MAX_AGE:
        raise ValueError("state expired")
    if not nonce or not hmac.compare_digest(got_nonce, nonce):
        raise ValueError("state belongs to another browser")
    return product_id


def _mac(secret: str, ts: str, nonce: str, product_id: str) -> str:
    msg = f"tornpay-oauth-state|{ts}|{nonce}|{product_id}".encode("utf-8")
    return hmac.new(secret.encode("utf-8"), msg, hashlib.sha256).hexdigest()[:_MAC_LEN]


class OrderCreatingHandler(BaseHandler):
    """Create the order for a known payer and send the browser to the pay page."""

    async def create_and_redirect(self, product_id: str, openid: str,
                                  trade_type: str = tradetypes.JSAPI) -> None:
        payer = self.payer_id() if trade_type != tradetypes.JSAPI else ""
        try:
            order = await create_order(self.ctx, product_id, openid, self.client_ip(),
                                       trade_type=trade_type, payer=payer)
        except TooManyOpenOrders as exc:
            raise PageError(exc.status, exc.message, title=exc.title) from None
        except CheckoutError as exc:
            raise PageError(exc.status, exc.message,
                            title="Product not found" if exc.status == 404 else
                            "Payment could not start", **exc.params) from None
        except PluginError:
            logger.exception("checkout of %s: product lookup failed", product_id)
            raise PageError(500, "This product cannot be sold right now.") from None
        if getattr(order, "mweb_url", None):
            # Straight on to WeChat's H5 cashier, which sends the payer back to
            # the result page (the return itself proves nothing, SPEC §9).
            self.redirect(mweb_redirect(order.mweb_url, result_page_url(self.ctx, order)),
                          status=303)
            return
        # 303: the browser must GET the pay page, never repeat this request.
        self.redirect(f"{self.ctx.prefix}/pay/{order.out_trade_no}", status=303)

    def payer_id(self) -> str:
        """This browser's payer id from its signed cookie, made and set on first use."""
        payer = self.get_tp_cookie(PAYER_COOKIE)
        if not payer or len(payer) != PAYER_ID_LEN or not payer.isalnum():
            payer = nonce_str(PAYER_ID_LEN)
        self.set_tp_cookie(PAYER_COOKIE, payer)  # refreshed: 30 days from the last checkout
        return payer


PAYER_ID_LEN = 32


class CheckoutHandler(OrderCreatingHandler):
    """Start a payment: straight to the order with a known openid, else via WeChat OAuth.

    A GET that another site started (``Sec-Fetch-Site: cross-site`` or
    ``same-site``) only shows a confirmation page whose button POSTs back
    here with the XSRF token: no order and no sign-in without the payer's tap.
    """

    async def get(self, product_id: str) -> None:
        self.set_header("Cache-Control", "no-store")
        if started_elsewhere(self.request):
            product = await self._product(product_id)
            self.render("confirm.html", product_id=product_id, body=product["body"],
                        yuan="%d.%02d" % divmod(product["total_fee"], 100),
                        trade_type=self.get_query_argument("trade_type", "")[:16])
            return
        await self._start(product_id)

    async def post(self, product_id: str) -> None:
        if not self.application.settings.get("xsrf_cookies"):
            self.check_xsrf_cookie()  # an estate without xsrf_cookies is still protected
        self.set_header("Cache-Control", "no-store")
        await self._start(product_id)

    async def _product(self, product_id: str) -> dict:
        try:
            return await resolve(self.ctx, product_id, "")  # 404 before anything else
        except CheckoutError as exc:
            raise PageError(exc.status, exc.message, title="Product not found",
                            **exc.params) from None
        except PluginError:
            logger.exception("checkout of %s: product lookup failed", product_id)
            raise PageError(500, "This product cannot be sold right now.") from None

    async def _start(self, product_id: str) -> None:
        trade_type = self.trade_type()
        if trade_type != tradetypes.JSAPI:
            # NATIVE and MWEB never need the payer's openid: no OAuth.
            await self.create_and_redirect(product_id, "", trade_type)
            return
        # Any price or fee in the query string is ignored: the hook prices it.
        openid = self.get_tp_cookie(OPENID_COOKIE)
        if openid:
            await self.create_and_redirect(product_id, openid)
            return
        await self._product(product_id)
        nonce = self.get_tp_cookie(OAUTH_COOKIE, max_age_days=1)
        if not nonce or len(nonce) != _NONCE_LEN or not nonce.isalnum():
            nonce = nonce_str(_NONCE_LEN)
        # Refreshed on every start so its lifetime always covers this state.
        self.set_tp_cookie(OAUTH_COOKIE, nonce, max_age_days=1)
        secret = self.ctx.settings.server.cookie_secret
        state = make_state(secret, product_id, nonce, time.time())
        server = self.ctx.settings.server
        redirect_uri = server.public_url.rstrip("/") + server.prefix + "/oauth/callback"
        # 303 so that after the confirmation POST the browser GETs WeChat's page.
        self.redirect(self.ctx.oauth_client.authorize_url(redirect_uri, state),
                      status=303 if self.request.method == "POST" else 302)

    def trade_type(self) -> str:
        """SPEC §9: from the browser, or ``?trade_type=`` for a type the merchant enabled."""
        override = self.get_query_argument("trade_type", "")[:16]
        try:
            return tradetypes.choose(self.request.headers.get("User-Agent", ""), override,
                                     self.ctx.settings.orders.trade_types)
        except tradetypes.TradeTypeRefused:
            raise PageError(400, "This shop does not accept this way of paying (%(type)s). "
                            "Open the shop link without trade_type to pay another way.",
                            title="Payment method not available",
                            type=override or "-") from None


# Sec-Fetch-Site values of a navigation this site did not start. "none" (typed,
# bookmarked, opened from a WeChat menu) and "same-origin" (our shop page) go
# straight on; browsers too old to send the header go straight on too.
FOREIGN_SITES = ("cross-site", "same-site")


def started_elsewhere(request) -> bool:
    """True when another site (or a sibling subdomain) sent the browser here."""
    return request.headers.get("Sec-Fetch-Site", "").lower() in FOREIGN_SITES


class OAuthCallbackHandler(OrderCreatingHandler):
    """WeChat sends the browser back here with a single-use code and our state."""

    async def get(self) -> None:
        self.set_header("Cache-Control", "no-store")
        nonce = self.get_tp_cookie(OAUTH_COOKIE, max_age_days=1)
        try:
            product_id = read_state(self.ctx.settings.server.cookie_secret,
                                    self.get_query_argument("state", ""), nonce or "",
                                    time.time())
        except ValueError as exc:
            # Checked before any call to WeChat: a forged or replayed link costs nothing.
            logger.warning("oauth callback refused from %s: %s", self.client_ip(), exc)
            raise PageError(400, "This sign-in link is invalid or has expired. Please open the "
                            "shop link again.", title="Sign-in link not valid") from None
        code = self.get_query_argument("code", "")
        if not code:
            raise PageError(400, "WeChat did not confirm who you are. Please try again.",
                            title="Sign-in cancelled")
        try:
            # Exactly once, never retried: a code is single-use (40163 otherwise).
            data = await self.ctx.oauth_client.exchange_code(code)
        except OAuthError as exc:
            raise PageError(400, "WeChat sign-in failed (error %(code)s). Please open the "
                            "shop link again.", title="WeChat sign-in failed",
                            code=exc.errcode) from None
        except WeChatError as exc:
            logger.warning("oauth exchange failed: %s", exc)
            raise PageError(502, "WeChat sign-in is not answering right now. Please open the "
                            "shop link again.", title="WeChat sign-in failed") from None
        openid = data["openid"]
        self.set_tp_cookie(OPENID_COOKIE, openid)
        await self.create_and_redirect(product_id, openid)


default_handlers = [
    (r"/checkout/" + PRODUCT_ID, CheckoutHandler, "tornpay-checkout"),
    (r"/oauth/callback", OAuthCallbackHandler, "tornpay-oauth-callback"),
]
