"""JSON test-control API: pay orders, finish refunds, faults, clock, notify log, resend, reset."""

import json
import logging

import tornado.web

from tornpay.simulator.state import SimulatorError, SimulatorState

log = logging.getLogger(__name__)


class ControlError(Exception):
    def __init__(self, status: int, message: str, err_code: str = ""):
        super().__init__(message)
        self.status = status
        self.err_code = err_code


class ControlHandler(tornado.web.RequestHandler):
    """/control/<action>: GET reads, POST acts, DELETE /control/faults clears."""

    def initialize(self, state: SimulatorState) -> None:
        self.state = state

    def check_xsrf_cookie(self) -> None:
        """A test API for local use; it holds no secrets."""

    def get(self, action: str) -> None:
        self._dispatch("GET", action)

    def post(self, action: str) -> None:
        self._dispatch("POST", action)

    def delete(self, action: str) -> None:
        self._dispatch("DELETE", action)

    def _dispatch(self, method: str, action: str) -> None:
        parts = action.strip("/").split("/", 1)
        name = (method + "_" + parts[0].replace("-", "_")).lower()
        handler = getattr(self, name, None)
        try:
            if handler is None:
                raise ControlError(404, f"no control action {method} {action}")
            self.data = json.loads(self.request.body) if self.request.body else {}
            if not isinstance(self.data, dict):
                raise ControlError(400, "body must be a JSON object")
            result = handler(parts[1] if len(parts) > 1 else "")
        except ValueError as exc:
            self._json({"ok": False, "error": str(exc)}, 400)
        except ControlError as exc:
            self._json({"ok": False, "error": str(exc), "err_code": exc.err_code}, exc.status)
        except SimulatorError as exc:
            self._json({"ok": False, "error": exc.err_code_des, "err_code": exc.err_code}, 409)
        else:
            self._json(dict({"ok": True}, **result))

    def _json(self, data: dict, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(data, ensure_ascii=False, default=_jsonable))

    # -- lookups ------------------------------------------------------------
    def _order(self, out_trade_no: str = ""):
        otn = out_trade_no or self.data.get("out_trade_no", "")
        order = self.state.find_order(otn, self.data.get("prepay_id", ""))
        if order is None:
            raise ControlError(404, "no such order")
        return order

    def _order_dict(self, order) -> dict:
        out = order.to_dict()
        out["refund_records"] = [r.to_dict() for r in self.state.refunds_of(order)]
        return out

    def _refund(self):
        refund = self.state.find_refund(self.data.get("out_refund_no", ""),
                                        self.data.get("refund_id", ""))
        if refund is None:
            raise ControlError(404, "no such refund")
        return refund

    # -- reads --------------------------------------------------------------
    def get_state(self, _: str) -> dict:
        return dict(self.get_orders(""), now=self.state.now(), faults=self.state.faults.to_list(),
                    refunds=[r.to_dict() for r in self.state.refunds.values()])

    def get_orders(self, out_trade_no: str) -> dict:
        if out_trade_no:
            return {"order": self._order_dict(self._order(out_trade_no))}
        return {"orders": [self._order_dict(o) for o in self.state.orders.values()]}

    def get_refunds(self, _: str) -> dict:
        return {"refunds": [r.to_dict() for r in self.state.refunds.values()]}

    def get_notifies(self, _: str) -> dict:
        entries = []
        for entry in self.state.notify_log:
            item = {k: v for k, v in entry.items() if k != "attempt"}
            item.update(entry["attempt"].to_dict())
            entries.append(item)
        return {"notifies": entries}

    def get_faults(self, _: str) -> dict:
        return {"faults": self.state.faults.to_list()}

    def get_clock(self, _: str) -> dict:
        return {"now": self.state.now()}

    # -- actions ------------------------------------------------------------
    def post_pay(self, _: str) -> dict:
        result = self.data.get("result", "SUCCESS")
        if result not in ("SUCCESS", "PAYERROR"):
            raise ControlError(400, "result must be SUCCESS or PAYERROR")
        order = self.state.pay(self._order(), result)
        return {"order": self._order_dict(order)}

    def post_refunds(self, what: str) -> dict:
        if what != "finish":
            raise ControlError(404, "use POST /control/refunds/finish")
        status = self.data.get("status", "SUCCESS")
        if status not in ("SUCCESS", "CHANGE", "REFUNDCLOSE"):
            raise ControlError(400, "status must be SUCCESS, CHANGE or REFUNDCLOSE")
        return {"refund": self.state.finish_refund(self._refund(), status).to_dict()}

    def post_notify(self, what: str) -> dict:
        if what != "resend":
            raise ControlError(404, "use POST /control/notify/resend")
        if self.data.get("out_refund_no") or self.data.get("refund_id"):
            refund = self._refund()
            if refund.status == "PROCESSING" or not refund.notify_url:
                raise ControlError(409, "refund not finished or has no notify_url")
            self.state.notifier.notify_refund(refund)
            return {"refund": refund.to_dict()}
        order = self._order()
        if order.trade_state not in ("SUCCESS", "REFUND"):
            raise ControlError(409, "order is not paid", "ORDERNOTPAID")
        self.state.notifier.notify_payment(order)
        return {"order": self._order_dict(order)}

    def post_v3_mode(self, _: str) -> dict:
        """Sign v3 replies and notifies with the public key or the platform certificate."""
        from tornpay.simulator.v3.api import sim_keys
        from tornpay.simulator.v3.keys import MODES
        mode = self.data.get("mode")
        if mode not in MODES:
            raise ControlError(400, f"mode must be one of {', '.join(MODES)}")
        sim_keys(self.state).mode = mode
        return {"mode": mode}

    def post_faults(self, _: str) -> dict:
        d = self.data
        self.state.faults.set(d.get("name", ""), d.get("count"), d.get("probability", 1.0),
                              d.get("endpoint"), d.get("seconds", 0.0))
        return {"faults": self.state.faults.to_list()}

    def delete_faults(self, _: str) -> dict:
        self.state.faults.clear(self.get_query_argument("name", None))
        return {"faults": self.state.faults.to_list()}

    def post_clock(self, _: str) -> dict:
        if "set" in self.data:
            self.state.set_now(float(self.data["set"]))
        else:
            self.state.advance(float(self.data.get("advance", 0)))
        self.state.settle_due_refunds()
        return {"now": self.state.now()}

    def post_oauth(self, what: str) -> dict:
        if what != "code":
            raise ControlError(404, "use POST /control/oauth/code")
        appid, openid = self.data.get("appid", ""), self.data.get("openid", "")
        if appid not in self.state.config.accounts or self.state.config.user(openid) is None:
            raise ControlError(400, "unknown appid or openid")
        return {"code": self.state.issue_code(appid, openid, self.data.get("scope", "snsapi_base"))}

    def post_reset(self, _: str) -> dict:
        self.state.reset()
        return {}


def _jsonable(value):
    if hasattr(value, "to_dict"):
        return value.to_dict()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
