"""The JSON API for front ends and Mini Programs (SPEC §13): create, read and cancel orders.

Who pays: a Mini Program sends a ``wx.login`` ``code`` (exchanged with
``jscode2session``) and afterwards the ``payer_token`` it got back, as
``Authorization: Bearer``; a browser front end is known by tornpay's signed
payer cookie, and then every POST needs the XSRF header. No price is ever read
from a request: ``resolve_product`` prices every order.
"""

import hmac
import json
import logging
from typing import Optional, Tuple

import tornado.web

from tornpay import errors
from tornpay.handlers.base import OPENID_COOKIE, PAYER_COOKIE, BaseHandler
from tornpay.handlers.checkout import OrderCreatingHandler
from tornpay.handlers.pay import OUT_TRADE_NO
from tornpay.orders import cancel, place, tradetypes
from tornpay.orders.service import order_json
from tornpay.protocol.errors import WeChatError
from tornpay.protocol.ids import is_valid_out_trade_no
from tornpay.protocol.miniprogram import MiniProgramClient
from tornpay.orders.pages import database_busy, find_order

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 4096
# Signed with server.cookie_secret under this name: a Mini Program has no cookies.
PAYER_TOKEN = "tornpay_mp_payer"
TOKEN_MAX_AGE_DAYS = 1


class ApiError(errors.TornpayError):
    """A JSON API refusal with its own code (not_owner, not_signed_in, xsrf_failed, ...)."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code = status, code


class ApiHandler(BaseHandler):
    """JSON in, JSON out, errors as ``{"error": {"code", "message"}}`` with a stable code."""

    def check_xsrf_cookie(self) -> None:
        # Tornado's automatic check would refuse a Mini Program, which has no
        # cookie to forge; the handlers check XSRF themselves for cookie payers.
        pass

    def prepare(self) -> None:
        self.set_header("Cache-Control", "no-store")

    def send(self, data: dict, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(data, ensure_ascii=False))

    def write_error(self, status_code: int, **kwargs) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, errors.TornpayError):
            status_code, error = exc.status, {"code": exc.code, "message": exc.message}
            if isinstance(exc, errors.WeChatRefused):
                error.update(wechat_code=exc.wechat_code, retryable=exc.retryable)
            if exc.out_trade_no:
                error["out_trade_no"] = exc.out_trade_no
        elif database_busy(exc):  # not free within database.wait_timeout; nothing written
            status_code, error = 503, {"code": "database_busy",
                                       "message": "The service is busy; try again in a moment."}
        elif status_code >= 500:
            error = {"code": "internal_error", "message": "Something went wrong; try again."}
        else:
            reason = getattr(exc, "log_message", None) or self._reason
            error = {"code": "http_%d" % status_code, "message": reason}
        self.clear_header("Content-Type")
        self.send({"error": error}, status_code)

    def json_body(self) -> dict:
        if len(self.request.body) > MAX_BODY_BYTES:
            raise ApiError(413, "invalid_request", f"body over {MAX_BODY_BYTES} bytes")
        try:
            data = json.loads(self.request.body or b"{}")
        except ValueError:
            raise ApiError(400, "invalid_request", "body is not JSON") from None
        if not isinstance(data, dict):
            raise ApiError(400, "invalid_request", "body must be a JSON object")
        return data

    def token_payer(self) -> Optional[str]:
        """A Mini Program's openid from ``Authorization: Bearer <payer_token>``, if sent."""
        token = self._bearer()
        if token is None:
            return None
        openid = tornado.web.decode_signed_value(
            self.ctx.settings.server.cookie_secret, PAYER_TOKEN, token,
            max_age_days=TOKEN_MAX_AGE_DAYS)
        if not openid:
            raise ApiError(401, "not_signed_in", "payer token invalid or expired")
        return openid.decode("utf-8")

    def cookie_payer(self, trade_type: str, *, posting: bool, create: bool = False) -> str:
        """The payer of a browser: the openid cookie (JSAPI) or the payer cookie (NATIVE, MWEB).

        A cookie travels by itself, so every POST that relies on one needs the XSRF header.
        """
        if posting:
            self.check_xsrf()
        if trade_type == place.JSAPI:
            who = self.get_tp_cookie(OPENID_COOKIE)
        elif create:
            who = OrderCreatingHandler.payer_id(self)  # made and set on first use
        else:
            who = self.get_tp_cookie(PAYER_COOKIE)
        if not who:
            raise ApiError(401, "not_signed_in", "no payer: sign in through WeChat first, or "
                           "send a Mini Program code")
        return who

    def check_xsrf(self) -> None:
        try:
            tornado.web.RequestHandler.check_xsrf_cookie(self)
        except tornado.web.HTTPError:
            raise ApiError(403, "xsrf_failed", "missing or wrong X-XSRFToken header (see "
                           "GET {prefix}/api/session)") from None

    def _bearer(self) -> Optional[str]:
        auth = self.request.headers.get("Authorization", "")
        if not auth:
            return None
        scheme, _, value = auth.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise ApiError(401, "not_signed_in", "Authorization must be 'Bearer <payer_token>'")
        return value.strip()

    async def owned(self, out_trade_no: str, *, posting: bool):
        # On a database reader thread (SPEC §12); DbBusy answers 503 database_busy.
        order = await self.ctx.db_read(find_order, out_trade_no) \
            if is_valid_out_trade_no(out_trade_no) else None
        token_openid = self.token_payer()
        if order is None:
            if token_openid is None:
                self.cookie_payer(place.JSAPI, posting=posting)  # XSRF first, as for any order
            raise errors.OrderNotFound("there is no such order", out_trade_no)
        if token_openid is not None:
            who, owner = token_openid, order.openid
        elif order.trade_type == place.JSAPI:
            who, owner = self.cookie_payer(place.JSAPI, posting=posting), order.openid
        else:  # NATIVE and MWEB: the browser that started them (SPEC §9)
            who, owner = self.cookie_payer(order.trade_type, posting=posting), order.payer
        if not hmac.compare_digest(who, owner or "\0"):
            # Same answer for every other payer: nothing about the order leaks.
            raise ApiError(403, "not_owner", "this order belongs to another payer")
        return order

    def order_data(self, order, with_params: bool = False) -> dict:
        data = dict(order_json(order), trade_type=place.api_trade_type(self.ctx.settings,
                                                                       order))
        if with_params:
            data["pay_params"] = place.pay_params(self.ctx, order)
        return data


class SessionHandler(ApiHandler):
    """GET /api/session: the XSRF token (also set as the ``_xsrf`` cookie) and trade types."""

    def get(self) -> None:
        answer = {"xsrf_token": self.xsrf_token.decode("ascii"),
                  "signed_in": bool(self.get_tp_cookie(OPENID_COOKIE)),
                  "trade_types": place.enabled_trade_types(self.ctx.settings)}
        if self.ctx.simulator is not None:
            from tornpay.simulator.config import public_base_url

            # The WeixinJSBridge stand-in: WeChat's own browser has the real one.
            answer["simulator_bridge_url"] = public_base_url(self.ctx.settings) + "/jsbridge.js"
        self.send(answer)


class OrdersHandler(ApiHandler):
    """POST /api/orders: create an order for the payer; 201 with ``pay_params``."""

    async def post(self) -> None:
        data = self.json_body()
        product_id, code = data.get("product_id"), data.get("code")
        if not isinstance(product_id, str) or not product_id:
            raise ApiError(400, "invalid_request", "product_id (a string) is required")
        token = None
        if code is not None:
            openid, trade_type = await self._miniprogram_payer(code, data)
            token = tornado.web.create_signed_value(
                self.ctx.settings.server.cookie_secret, PAYER_TOKEN, openid).decode("ascii")
        else:
            openid = self.token_payer()
            trade_type = self._trade_type(openid is not None, data.get("trade_type"))
            if openid is None:
                openid = self.cookie_payer(trade_type, posting=True, create=True)
        order = await place.place_order(self.ctx, payer=openid, trade_type=trade_type,
                                        product_id=product_id, client_ip=self.client_ip())
        answer = self.order_data(order, with_params=True)
        if token:
            answer["payer_token"] = token
        self.send(answer, 201)

    def _trade_type(self, by_token: bool, asked) -> str:
        """A payer token pays MINIPROGRAM orders; a browser the types of SPEC §9 (by its UA)."""
        if asked is not None and not isinstance(asked, str):
            raise ApiError(400, "invalid_request", "trade_type must be a string")
        enabled = place.enabled_trade_types(self.ctx.settings)
        if by_token:
            trade_type = asked or place.MINIPROGRAM
        elif asked:
            trade_type = asked
        else:
            trade_type = tradetypes.choose(self.request.headers.get("User-Agent", ""), None,
                                           [t for t in enabled if t != place.MINIPROGRAM]
                                           or [place.JSAPI])
        place.check_trade_type(self.ctx.settings, trade_type)
        if (trade_type == place.MINIPROGRAM) != by_token:
            raise ApiError(400, "invalid_request", "MINIPROGRAM orders are for a Mini Program "
                           "(a code or its payer token), and only those")
        return trade_type

    async def _miniprogram_payer(self, code, data: dict) -> Tuple[str, str]:
        trade_type = data.get("trade_type") or place.MINIPROGRAM
        place.check_trade_type(self.ctx.settings, place.MINIPROGRAM)
        if trade_type != place.MINIPROGRAM:
            raise ApiError(400, "invalid_request", "a code is for trade_type MINIPROGRAM only")
        if not isinstance(code, str) or not code or len(code) > 128:
            raise ApiError(400, "invalid_request", "code must be the wx.login code")
        client = MiniProgramClient.from_settings(self.ctx.settings, self.ctx.http_client)
        try:
            # Once, never retried: a code works once (40163 on a second try).
            return await client.code_to_openid(code), trade_type
        except WeChatError as exc:
            raise errors.wechat_refusal(exc, message="jscode2session refused the code") \
                from None


class OrderHandler(ApiHandler):
    """GET /api/orders/{out_trade_no}: the owner's view, as GET /orders/{out_trade_no}."""

    async def get(self, out_trade_no: str) -> None:
        self.send(self.order_data(await self.owned(out_trade_no, posting=False)))


class OrderCancelApiHandler(ApiHandler):
    """POST /api/orders/{out_trade_no}/cancel: the payer gives up an unpaid order."""

    async def post(self, out_trade_no: str) -> None:
        order = await self.owned(out_trade_no, posting=True)
        outcome = await cancel.cancel_order(self.ctx, order.out_trade_no)
        order = await self.ctx.db_read(find_order, order.out_trade_no)
        if outcome == cancel.NOT_CANCELLABLE:
            raise errors.InvalidState(f"the order is {order.state}; only an unpaid open order "
                                      "can be cancelled", order.out_trade_no)
        logger.info("order %s: cancelled by its payer through the API -> %s",
                    order.out_trade_no, outcome)
        self.send(dict(self.order_data(order), outcome=outcome))


default_handlers = [
    (r"/api/session", SessionHandler, "tornpay-api-session"),
    (r"/api/orders", OrdersHandler, "tornpay-api-orders"),
    (r"/api/orders/" + OUT_TRADE_NO, OrderHandler, "tornpay-api-order"),
    (r"/api/orders/" + OUT_TRADE_NO + r"/cancel", OrderCancelApiHandler,
     "tornpay-api-order-cancel"),
]
