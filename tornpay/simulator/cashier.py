"""The cashier behind the WeixinJSBridge stand-in: /jsbridge.js and its JSON check/pay endpoints."""

import json
import logging
import os
from typing import Dict
from urllib.parse import urlsplit, urlunsplit

import tornado.web

from tornpay.protocol.sign import verify_sign
from tornpay.simulator.records import Order
from tornpay.simulator.state import SimulatorError, SimulatorState

logger = logging.getLogger(__name__)

JSAPI_FIELDS = ("appId", "timeStamp", "nonceStr", "package", "signType")
_BRIDGE_PATH = os.path.join(os.path.dirname(__file__), "static", "jsbridge.js")
# WeChat's own text for an expired/unknown prepay_id or a different appId (reference §5.5).
BAD_PREPAY = "调用支付JSAPI缺少参数：total_fee"


class CashierFail(Exception):
    """The bridge must answer get_brand_wcpay_request:fail with this err_desc."""


def page_directory(href: str) -> str:
    """The page URL up to and including the last '/' of its path (no query or fragment)."""
    parts = urlsplit(href)
    directory = parts.path[: parts.path.rfind("/") + 1] or "/"
    return urlunsplit((parts.scheme, parts.netloc, directory, "", ""))


def check_payment(state: SimulatorState, params: Dict, href: str) -> Order:
    """Validate a getBrandWCPayRequest call as WeChat's cashier would; return its order.

    `href` is the page URL as the browser reported it (the Referer header), never a
    value the page's script supplied.
    """
    if not isinstance(params, dict):
        raise CashierFail("参数错误")
    if not href or page_directory(href) not in state.config.pay_directories:
        raise CashierFail("当前页面的URL未注册：" + (href or "(no Referer)"))
    return check_signed_params(state, params)


def check_signed_params(state: SimulatorState, params: Dict) -> Order:
    """The checks shared by the JSAPI bridge and wx.requestPayment: fields, prepay, paySign."""
    for name in JSAPI_FIELDS + ("paySign",):
        if not isinstance(params.get(name), str) or not params[name]:
            raise CashierFail("调用支付JSAPI缺少参数：" + name)
    package = params["package"]
    if not package.startswith("prepay_id="):
        raise CashierFail("package参数错误")
    key = state.prepay.get(package[len("prepay_id="):])
    order = state.orders.get(key) if key else None
    if order is None or order.appid != params["appId"]:
        raise CashierFail(BAD_PREPAY)
    if not _prepay_alive(state, order, package[10:]):
        raise CashierFail(BAD_PREPAY)
    ts = params["timeStamp"]
    if not (ts.isascii() and ts.isdigit() and len(ts) == 10):
        raise CashierFail("timeStamp参数错误（应为10位秒级时间戳字符串）")
    if params["signType"] != order.sign_type:
        raise CashierFail("支付验证签名失败：signType与下单时不一致")
    signed = {name: params[name] for name in JSAPI_FIELDS}
    signed["sign"] = params["paySign"]
    if order.sign_type == "RSA":  # a v3 order: paySign is RSA with the merchant key (v3 §8.1)
        from tornpay.simulator.v3.cashier import pay_sign_ok
        good = pay_sign_ok(state, order, params)
    else:
        good = verify_sign(signed, state.config.merchant(order.mch_id).api_key, order.sign_type)
    if not good:
        raise CashierFail("支付验证签名失败")
    if order.trade_state in ("SUCCESS", "REFUND"):
        raise CashierFail("该订单已支付")
    if order.trade_state != "NOTPAY":
        raise CashierFail("该订单已关闭" if order.trade_state == "CLOSED" else "订单支付失败")
    if order.time_expire is not None and state.now() > order.time_expire:
        raise CashierFail("订单已过期")
    return order


def _prepay_alive(state: SimulatorState, order: Order, prepay_id: str) -> bool:
    # Only the current prepay_id carries an expiry; an older one died when it was replaced
    # after its own 2 hours, so treat any non-current id as expired.
    return prepay_id == order.prepay_id and state.now() < order.prepay_expires_at


class CashierHandler(tornado.web.RequestHandler):
    """POST /cashier/(check|pay) with JSON {params, href}; CORS for a standalone simulator."""

    def initialize(self, state: SimulatorState) -> None:
        self.state = state

    def check_xsrf_cookie(self) -> None:
        """Called cross-origin by the bridge script; the paySign is the credential."""

    def set_default_headers(self) -> None:
        self.set_header("Access-Control-Allow-Origin", "*")
        self.set_header("Access-Control-Allow-Methods", "POST, OPTIONS")
        self.set_header("Access-Control-Allow-Headers", "Content-Type")
        self.set_header("Access-Control-Max-Age", "600")

    def options(self, action: str) -> None:
        self.set_status(204)
        self.finish()

    def post(self, action: str) -> None:
        # WeChat's cashier knows the page URL from the WebView itself; ours takes it from the
        # Referer the browser sets (the bridge asks for the full URL), not from the request body.
        href = self.request.headers.get("Referer", "")
        try:
            data = json.loads(self.request.body or b"{}")
            order = check_payment(self.state, data.get("params"), href)
            if action == "pay":
                self._pay(order)
        except (ValueError, AttributeError):
            return self._json({"ok": False, "err_desc": "请求格式错误"})
        except (CashierFail, SimulatorError) as exc:
            logger.info("simulator: cashier %s refused: %s", action, exc)
            return self._json({"ok": False, "err_desc": str(exc)})
        self._json({"ok": True, "order": {"out_trade_no": order.out_trade_no,
                                          "body": order.body, "total_fee": order.total_fee}})

    def _pay(self, order: Order) -> None:
        early = self.state.faults.fire("bridge_ok_early")
        if early is None:
            self.state.pay(order)
            return
        # The page hears "ok" now; the payment (orderquery SUCCESS, the notify) lands later.
        logger.info("simulator: fault bridge_ok_early, %s paid in %.1fs", order.out_trade_no,
                 early.seconds)
        self.state.call_later(early.seconds, _late_pay, self.state, order)

    def _json(self, data: dict) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(data, ensure_ascii=False))


def _late_pay(state: SimulatorState, order: Order) -> None:
    try:
        state.pay(order)
    except SimulatorError as exc:  # paid or closed meanwhile: nothing more to do
        logger.info("simulator: late payment of %s skipped: %s", order.out_trade_no, exc)


class JsBridgeHandler(tornado.web.RequestHandler):
    """GET /jsbridge.js with the cashier's absolute URL filled in."""

    def initialize(self, state: SimulatorState, base: str) -> None:
        self.state = state
        self.base = base

    def get(self) -> None:
        with open(_BRIDGE_PATH, encoding="utf-8") as handle:
            source = handle.read()
        # The configured public URL, never the Host header (behind a proxy it loses the port,
        # and it is the client's to choose); unset, the script uses the URL it was loaded from.
        public = self.state.config.public_url.rstrip("/")
        cashier = json.dumps(public + "/cashier") if public else "null"
        self.set_header("Content-Type", "application/javascript; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.set_header("Access-Control-Allow-Origin", "*")
        self.finish(source.replace("__CASHIER_URL__", cashier))
