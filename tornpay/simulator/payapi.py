"""Order endpoints: /pay/unifiedorder, /pay/orderquery, /pay/closeorder (and sandbox getsignkey)."""

import logging
import re
from typing import Dict

from tornpay.simulator import h5native
from tornpay.simulator.notifyfields import coupon_fields
from tornpay.simulator.notifyurl import notify_url_refusal, notify_url_warning
from tornpay.simulator.records import Order, parse_compact_time
from tornpay.simulator.state import SimulatorError
from tornpay.simulator.xmlapi import Call, PayApiHandler, ProtocolFail

log = logging.getLogger(__name__)

# The wider set WeChat accepts (reference §2.4), not only what tornpay makes.
OUT_TRADE_NO_RE = re.compile(r"[A-Za-z0-9_\-|*@]{1,32}")
TRADE_TYPES = ("JSAPI", "NATIVE", "APP", "MWEB")
UNIFIEDORDER_REQUIRED = ("body", "out_trade_no", "total_fee", "spbill_create_ip", "notify_url",
                         "trade_type")
# Fields that may differ between identical re-entries of the same order.
NOT_COMPARED = ("nonce_str", "sign")
TRADE_STATE_DESC = {
    "SUCCESS": "支付成功",
    "REFUND": "订单发生过退款，退款详情请查询退款单",
    "NOTPAY": "订单未支付",
    "CLOSED": "订单已关闭",
    "PAYERROR": "支付失败，请重新下单支付",
}


def require(params: Dict[str, str], *names: str) -> None:
    for name in names:
        if not params.get(name):
            raise SimulatorError("LACK_PARAMS", f"缺少参数{name}")


def parse_fee(params: Dict[str, str], name: str, err_code: str = "INVALID_REQUEST") -> int:
    """A positive integer of fen; unifiedorder answers INVALID_REQUEST (§4.3), refunds
    PARAM_ERROR (§8.3)."""
    text = params.get(name, "")
    if not (text.isascii() and text.isdigit()) or int(text) <= 0 or text != str(int(text)):
        raise SimulatorError(err_code, f"{name}参数格式错误，必须为正整数（单位：分）")
    return int(text)


def refuse_finished(order: Order) -> None:
    if order.trade_state in ("SUCCESS", "REFUND"):
        raise SimulatorError("ORDERPAID", "该订单已支付")
    if order.trade_state == "CLOSED":
        raise SimulatorError("ORDERCLOSED", "该订单已关闭")


class UnifiedOrderHandler(PayApiHandler):
    endpoint = "unifiedorder"

    async def handle(self, call: Call) -> Dict[str, str]:
        p = call.params
        require(p, *UNIFIEDORDER_REQUIRED)
        if not OUT_TRADE_NO_RE.fullmatch(p["out_trade_no"]):
            raise SimulatorError("INVALID_REQUEST", "out_trade_no参数格式错误")
        total_fee = parse_fee(p, "total_fee")
        if p["trade_type"] not in TRADE_TYPES:
            raise SimulatorError("INVALID_REQUEST", "trade_type参数格式错误")
        if p["trade_type"] == "JSAPI" and not p.get("openid"):
            raise ProtocolFail("JSAPI支付必须传openid")
        if p["trade_type"] in ("NATIVE", "MWEB"):
            h5native.check_request(p)
        elif p["trade_type"] != "JSAPI":
            raise SimulatorError("NOAUTH", "商户无此接口权限（模拟器不支持APP支付）")
        self._check_fields(p)
        state = self.state
        order = state.order(call.mch_id, p["out_trade_no"])
        compared = {k: v for k, v in p.items() if k not in NOT_COMPARED}
        if order is not None:
            refuse_finished(order)
            if order.request != compared:
                raise SimulatorError("INVALID_REQUEST", "201 商户订单号重复")
            if order.trade_state == "PAYERROR":
                raise SimulatorError("OUT_TRADE_NO_USED", "该订单支付失败，请使用新的商户订单号")
            if order.prepay_expires_at <= state.now():
                state.issue_prepay(order)
        else:
            order = self._create(call, compared, total_fee)
        if state.faults.fire("notify_before_reply", self.endpoint):
            # The user pays and WeChat notifies before this reply reaches the merchant.
            state.pay(order, notify=False)
            first = state.notifier.notify_payment(order)
            if first is not None:
                await first
        payload = {"prepay_id": order.prepay_id, "trade_type": order.trade_type}
        payload.update(h5native.reply_fields(state, order, p, self._public_base()))
        if p.get("device_info"):
            payload = dict({"device_info": p["device_info"]}, **payload)
        return payload

    def _public_base(self) -> str:
        """Where the payer's browser reaches the simulator (checkmweb links are built on it)."""
        configured = self.state.config.public_url.rstrip("/")
        if configured:
            return configured
        base = self.request.path.rsplit("/pay/unifiedorder", 1)[0].replace("/sandboxnew", "")
        return f"{self.request.protocol}://{self.request.host}{base}"

    def _check_fields(self, p: Dict[str, str]) -> None:
        if len(p["body"].encode("utf-8")) > 128:
            raise SimulatorError("INVALID_REQUEST", "body参数长度有误")
        if len(p.get("attach", "")) > 127:
            raise SimulatorError("INVALID_REQUEST", "attach参数长度有误")
        if p.get("fee_type", "CNY") != "CNY":
            raise SimulatorError("INVALID_REQUEST", "fee_type参数错误，境内商户仅支持CNY")
        refusal = notify_url_refusal(p["notify_url"])
        if refusal:
            raise SimulatorError("INVALID_REQUEST", refusal)
        if self.state.config.strict_openid and p.get("openid") and \
                not self.state.config.user(p["openid"]):
            raise ProtocolFail("appid和openid不匹配")

    def _create(self, call: Call, compared: Dict[str, str], total_fee: int) -> Order:
        p = call.params
        state = self.state
        expire = None
        if p.get("time_expire"):
            expire = parse_compact_time(p["time_expire"])
            if expire is None:
                raise SimulatorError("INVALID_REQUEST", "time_expire参数格式错误（yyyyMMddHHmmss）")
            if expire - state.now() < state.config.min_time_expire_seconds:
                raise SimulatorError("INVALID_REQUEST", "time_expire时间过短，刷卡至少1分钟，其他5分钟")
        order = Order(
            mch_id=call.mch_id, appid=call.appid, out_trade_no=p["out_trade_no"],
            request=compared, sign_type=call.sign_type, created_at=state.now(),
            total_fee=total_fee, openid=p.get("openid", ""), notify_url=p["notify_url"], body=p["body"],
            attach=p.get("attach", ""), device_info=p.get("device_info", ""),
            trade_type=p["trade_type"], time_expire=expire,
        )
        self._warn_unreachable(order)
        state.orders[(order.mch_id, order.out_trade_no)] = order
        state.issue_prepay(order)
        return order

    def _warn_unreachable(self, order: Order) -> None:
        # Accepted (local demos need it), but said loudly: in the log once per URL, on the
        # dashboard for every order. Production would never notify there.
        order.notify_url_warning = notify_url_warning(order.notify_url) or ""
        warned = self.state.warned_notify_urls
        if order.notify_url_warning and order.notify_url not in warned:
            if len(warned) < 1000:
                warned.add(order.notify_url)
            log.warning("simulator: order %s: %s", order.out_trade_no, order.notify_url_warning)


class OrderQueryHandler(PayApiHandler):
    endpoint = "orderquery"

    async def handle(self, call: Call) -> Dict[str, str]:
        p = call.params
        if not p.get("transaction_id") and not p.get("out_trade_no"):
            raise SimulatorError("LACK_PARAMS", "transaction_id和out_trade_no不能同时为空")
        order = self.state.order(call.mch_id, p.get("out_trade_no", ""),
                                 p.get("transaction_id", ""))
        if order is None:
            raise SimulatorError("ORDERNOTEXIST", "order not exist")
        self.state.settle_due_refunds()
        return query_fields(order)


def query_fields(order: Order) -> Dict[str, str]:
    """orderquery payload; the same field set as reference §6.5 (B10/B11)."""
    out: Dict[str, str] = {}
    if order.device_info:
        out["device_info"] = order.device_info
    if order.trade_state in ("SUCCESS", "REFUND"):
        out.update({
            "openid": order.openid, "is_subscribe": order.is_subscribe,
            "trade_type": order.trade_type, "trade_state": order.trade_state,
            "bank_type": order.bank_type, "total_fee": str(order.total_fee),
            "fee_type": order.fee_type, "cash_fee": str(order.total_fee - order.coupon_fee),
            "cash_fee_type": "CNY", "transaction_id": order.transaction_id,
            "out_trade_no": order.out_trade_no, "attach": order.attach or None,
            "time_end": order.time_end,
        })
        if order.coupon_fee:
            out.update(coupon_fields(order))
    else:
        out.update({"total_fee": str(order.total_fee), "out_trade_no": order.out_trade_no,
                    "trade_state": order.trade_state})
    out["trade_state_desc"] = TRADE_STATE_DESC[order.trade_state]
    return out


class CloseOrderHandler(PayApiHandler):
    endpoint = "closeorder"

    async def handle(self, call: Call) -> Dict[str, str]:
        p = call.params
        require(p, "out_trade_no")
        order = self.state.order(call.mch_id, p["out_trade_no"])
        if order is None:
            raise SimulatorError("ORDERNOTEXIST", "order not exist")
        refuse_finished(order)
        if self.state.now() - order.created_at < self.state.config.close_min_age_seconds:
            # WeChat documents the rule but not the code; TRADE_STATE_ERROR fits "not now".
            raise SimulatorError(
                "TRADE_STATE_ERROR", "订单生成后不能马上调用关单接口，最短调用时间间隔为5分钟")
        order.trade_state = "CLOSED"
        return {"result_msg": "OK"}


class GetSignKeyHandler(PayApiHandler):
    """/sandboxnew/pay/getsignkey: signed with the production key, answers the sandbox key."""

    endpoint = "getsignkey"
    needs_appid = False

    async def post(self, *args) -> None:
        try:
            call = self.authenticate()
        except ProtocolFail as exc:
            self.fail(str(exc))
            return
        self._send({"return_code": "SUCCESS", "return_msg": "ok", "mch_id": call.mch_id,
                    "sandbox_signkey": self.state.sandbox_key(call.mch_id)}, signed=False)
