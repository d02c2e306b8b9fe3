"""Mini Programs in the simulator: ``wx.login`` codes, ``jscode2session``, ``wx.requestPayment``.

A test (or demo) plays the Mini Program: ``POST /miniprogram/login`` is
``wx.login`` (a single-use code valid 5 minutes, for a test user under the Mini
Program's appid); ``GET /sns/jscode2session`` is WeChat's exchange, with its
error codes; ``POST /miniprogram/requestPayment`` is ``wx.requestPayment``,
checked like the JSAPI bridge (prepay_id alive, signType and paySign over the
Mini Program's appId) and then paid, failed or cancelled as asked.
"""

import json
import logging
from typing import List

import tornado.web
from tornado.web import URLSpec

from tornpay.simulator.cashier import CashierFail, check_signed_params
from tornpay.simulator.state import SimulatorError, SimulatorState
from tornpay.simulator.userinfo import SnsApiHandler

logger = logging.getLogger(__name__)

SCOPE = "miniprogram"  # marks wx.login codes apart from web OAuth codes
ACTIONS = ("pay", "cancel", "fail")


class Jscode2SessionHandler(SnsApiHandler):
    """GET /sns/jscode2session: js_code -> openid and session_key (errors with HTTP 200)."""

    def get(self) -> None:
        entry = self.consume_code("js_code")
        if entry is None:
            return
        if entry.scope != SCOPE:  # a web OAuth code is no wx.login code
            return self._err(40029)
        logger.info("simulator: jscode2session for appid %s", entry.appid)
        # A fresh session key every time, as WeChat's; tornpay must drop it unread.
        self._json({"openid": entry.openid, "session_key": "SIMSESSION" + self.state.nonce()})


class MiniProgramHandler(tornado.web.RequestHandler):
    """POST /miniprogram/(login|requestPayment): the Mini Program's side, as JSON."""

    def initialize(self, state: SimulatorState) -> None:
        self.state = state

    def check_xsrf_cookie(self) -> None:
        """A test API, like /control: the paySign is the credential."""

    def post(self, action: str) -> None:
        try:
            data = json.loads(self.request.body or b"{}")
            if not isinstance(data, dict):
                raise ValueError("body must be a JSON object")
        except ValueError as exc:
            return self._json({"ok": False, "error": str(exc)}, 400)
        if action == "login":
            return self._login(data)
        self._request_payment(data)

    def _login(self, data: dict) -> None:
        appid, openid = data.get("appid", ""), data.get("openid", "")
        if appid not in self.state.config.accounts or self.state.config.user(openid) is None:
            return self._json({"ok": False, "error": "unknown appid or openid"}, 400)
        self._json({"ok": True, "code": self.state.issue_code(appid, openid, SCOPE)})

    def _request_payment(self, data: dict) -> None:
        """wx.requestPayment: ``{"appid", "params": {five fields}, "action"?}``."""
        action = data.get("action", "pay")
        params = data.get("params")
        if action not in ACTIONS or not isinstance(params, dict):
            return self._json({"ok": False, "error": "params (object) and action "
                               f"({'/'.join(ACTIONS)}) expected"}, 400)
        # The runtime knows its own appid; the page never sends it, yet paySign covers it.
        signed = dict(params, appId=data.get("appid", ""))
        try:
            order = check_signed_params(self.state, signed)
            if action == "cancel":
                return self._json({"ok": False, "errMsg": "requestPayment:fail cancel"})
            self.state.pay(order, "SUCCESS" if action == "pay" else "PAYERROR")
        except (CashierFail, SimulatorError) as exc:
            logger.info("simulator: wx.requestPayment refused: %s", exc)
            return self._json({"ok": False, "errMsg": f"requestPayment:fail {exc}"})
        if action == "fail":
            return self._json({"ok": False, "errMsg": "requestPayment:fail 支付失败"})
        self._json({"ok": True, "errMsg": "requestPayment:ok",
                    "out_trade_no": order.out_trade_no})

    def _json(self, data: dict, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(data, ensure_ascii=False))


def miniprogram_routes(prefix: str, state: SimulatorState) -> List[URLSpec]:
    """The simulator's Mini Program surfaces under ``prefix``."""
    kw = {"state": state}
    return [URLSpec(prefix + "/sns/jscode2session", Jscode2SessionHandler, dict(kw)),
            URLSpec(prefix + r"/miniprogram/(login|requestPayment)", MiniProgramHandler,
                    dict(kw))]
