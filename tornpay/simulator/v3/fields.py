"""v3 request validation and reply shapes: amounts, times, the transaction and refund objects."""

import datetime
import re
from typing import Any, Dict, Mapping, Optional

from tornpay.protocol.v3.times import rfc3339_epoch
from tornpay.simulator.records import BEIJING, Order, Refund
from tornpay.simulator.v3.api import V3Fail, param_error

OUT_TRADE_NO_RE = re.compile(r"[A-Za-z0-9_\-*|]{6,32}")
OUT_REFUND_NO_RE = re.compile(r"[A-Za-z0-9_\-|*@]{1,64}")
TRADE_STATE_DESC = {
    "SUCCESS": "支付成功", "REFUND": "转入退款", "NOTPAY": "订单未支付",
    "CLOSED": "订单已关闭", "PAYERROR": "支付失败",
}
# Simulator refund states (shared with v2) as v3 names them.
REFUND_STATUS = {"PROCESSING": "PROCESSING", "SUCCESS": "SUCCESS", "CHANGE": "ABNORMAL",
                 "REFUNDCLOSE": "CLOSED"}


def rfc3339(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, BEIJING).isoformat(timespec="seconds")


def parse_rfc3339(text: Any) -> Optional[float]:
    """Epoch seconds of an RFC 3339 time WeChat accepts (date ``T`` time, with an offset)."""
    return rfc3339_epoch(text) if isinstance(text, str) and "T" in text else None


def fen(value: Any, field: str) -> int:
    """A JSON integer >= 1 (no float, string or bool: P8)."""
    if type(value) is not int or value < 1:
        raise param_error(field, value, "此字段需要一个合法的 64 位有符号整数，且不小于1")
    return value


def text(data: Mapping, name: str, limit: int, required: bool = True,
         prefix: str = "") -> str:
    value = data.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value:
        raise param_error(prefix + name, value, "必填字段缺失或类型错误")
    if len(value.encode("utf-8")) > limit:
        raise param_error(prefix + name, value[:40], f"长度不能超过{limit}")
    return value


def only(data: Mapping, allowed, where: str = "") -> None:
    extra = sorted(set(data) - set(allowed))
    if extra:
        raise V3Fail(400, "PARAM_ERROR", f"参数中含有非法的额外参数：{where}{extra[0]}")


def transaction(order: Order) -> Dict[str, Any]:
    """The §9 transaction object (query replies and the decrypted payment notify)."""
    out: Dict[str, Any] = {
        "appid": order.appid, "mchid": order.mch_id, "out_trade_no": order.out_trade_no,
        "trade_state": order.trade_state,
        "trade_state_desc": TRADE_STATE_DESC.get(order.trade_state, order.trade_state),
        "amount": {"total": order.total_fee, "currency": "CNY", "payer_currency": "CNY"},
        "promotion_detail": [],
    }
    if order.trade_state in ("SUCCESS", "REFUND"):
        out.update({
            "transaction_id": order.transaction_id, "trade_type": order.trade_type,
            "bank_type": order.bank_type, "attach": order.attach,
            "success_time": rfc3339(order.paid_at or 0), "payer": {"openid": order.openid},
        })
        out["amount"]["payer_total"] = order.total_fee - order.coupon_fee
    return out


def refund_object(order: Order, refund: Refund) -> Dict[str, Any]:
    """The §11 refund object (refund and refund-query replies)."""
    out: Dict[str, Any] = {
        "refund_id": refund.refund_id, "out_refund_no": refund.out_refund_no,
        "transaction_id": refund.transaction_id, "out_trade_no": refund.out_trade_no,
        "channel": "ORIGINAL", "user_received_account": "支付用户零钱",
        "create_time": rfc3339(refund.created_at), "status": REFUND_STATUS[refund.status],
        "funds_account": "AVAILABLE", "promotion_detail": [],
        "amount": {"total": order.total_fee, "refund": refund.refund_fee, "from": [],
                   "payer_total": order.total_fee, "payer_refund": refund.refund_fee,
                   "settlement_refund": refund.refund_fee, "settlement_total": order.total_fee,
                   "discount_refund": 0, "currency": "CNY"},
    }
    if refund.success_at:
        out["success_time"] = rfc3339(refund.success_at)
    return out
