"""Refund endpoints: /secapi/pay/refund (client certificate optional) and /pay/refundquery."""

import re
from typing import Dict, List

from tornpay.simulator.payapi import parse_fee, require
from tornpay.simulator.records import MAX_REFUNDS, REFUND_WINDOW, Order, Refund, dashed_time
from tornpay.simulator.state import SimulatorError
from tornpay.simulator.xmlapi import Call, PayApiHandler

OUT_REFUND_NO_RE = re.compile(r"[A-Za-z0-9_\-|*@]{1,64}")
TRANSACTION_ID_RE = re.compile(r"[0-9]{28}")
PAGE_SIZE = 10


def _order_for(state, call: Call) -> Order:
    """The order named by transaction_id (preferred) or out_trade_no; must be paid."""
    p = call.params
    tid = p.get("transaction_id", "")
    if tid and not TRANSACTION_ID_RE.fullmatch(tid):
        raise SimulatorError("INVALID_TRANSACTIONID", "无效transaction_id")
    order = state.order(call.mch_id, p.get("out_trade_no", ""), tid)
    if order is None or order.trade_state not in ("SUCCESS", "REFUND"):
        # WeChat answers the same for unknown and unpaid orders (reference §8.3).
        raise SimulatorError("ORDERNOTEXIST", "订单不存在或未支付")
    return order


def refund_payload(order: Order, refund: Refund) -> Dict[str, str]:
    """The refund reply payload; the same field set as reference §8.4 (B16)."""
    return {
        "transaction_id": order.transaction_id, "out_trade_no": order.out_trade_no,
        "out_refund_no": refund.out_refund_no, "refund_id": refund.refund_id,
        "refund_channel": "", "refund_fee": str(refund.refund_fee),
        "total_fee": str(order.total_fee), "cash_fee": str(order.total_fee - order.coupon_fee),
        "cash_refund_fee": str(refund.refund_fee), "coupon_refund_fee": "0",
        "coupon_refund_count": "0",
    }


class RefundHandler(PayApiHandler):
    endpoint = "refund"
    needs_client_cert = True

    async def handle(self, call: Call) -> Dict[str, str]:
        p = call.params
        state = self.state
        if not p.get("transaction_id") and not p.get("out_trade_no"):
            raise SimulatorError("LACK_PARAMS", "transaction_id和out_trade_no必填其一")
        require(p, "out_refund_no", "total_fee", "refund_fee")
        if not OUT_REFUND_NO_RE.fullmatch(p["out_refund_no"]):
            raise SimulatorError("PARAM_ERROR", "out_refund_no参数格式错误")
        total_fee = parse_fee(p, "total_fee", "PARAM_ERROR")
        refund_fee = parse_fee(p, "refund_fee", "PARAM_ERROR")
        order = _order_for(state, call)
        existing = state.refunds.get((call.mch_id, p["out_refund_no"]))
        if existing is not None:
            # The same out_refund_no is refunded once; a retry must repeat the amounts.
            if (existing.out_trade_no, existing.total_fee, existing.refund_fee) != (
                    order.out_trade_no, total_fee, refund_fee):
                raise SimulatorError("INVALID_REQUEST",
                                     "订单金额或退款金额与之前请求不一致，请核实后再试")
            return refund_payload(order, existing)
        if total_fee != order.total_fee:
            raise SimulatorError("PARAM_ERROR", "total_fee与订单金额不一致")
        if state.now() - (order.paid_at or 0) > REFUND_WINDOW:
            raise SimulatorError("TRADE_OVERDUE", "订单已经超过退款期限")
        live = [r for r in state.refunds_of(order) if r.status != "REFUNDCLOSE"]
        if len(order.refunds) >= MAX_REFUNDS:
            raise SimulatorError("ERROR", f"订单已经退款超过{MAX_REFUNDS}次")
        if sum(r.refund_fee for r in live) + refund_fee > order.total_fee:
            raise SimulatorError(state.config.over_refund_err_code, "申请退款金额超过订单可退金额")
        if state.faults.fire("notenough", self.endpoint):
            raise SimulatorError("NOTENOUGH", "基本账户余额不足，请充值后重新发起")
        refund = state.add_refund(Refund(
            mch_id=call.mch_id, appid=call.appid, out_trade_no=order.out_trade_no,
            transaction_id=order.transaction_id, out_refund_no=p["out_refund_no"],
            refund_id=state.new_refund_id(), refund_fee=refund_fee, total_fee=total_fee,
            created_at=state.now(), sign_type=call.sign_type, notify_url=p.get("notify_url", ""),
        ))
        return refund_payload(order, refund)


class RefundQueryHandler(PayApiHandler):
    endpoint = "refundquery"

    async def handle(self, call: Call) -> Dict[str, str]:
        p = call.params
        state = self.state
        state.settle_due_refunds()
        # Priority: refund_id > out_refund_no > transaction_id > out_trade_no (§9.1).
        if p.get("refund_id") or p.get("out_refund_no"):
            refund = None
            if p.get("refund_id"):
                refund = state.find_refund(refund_id=p["refund_id"])
            else:
                refund = state.refunds.get((call.mch_id, p["out_refund_no"]))
            if refund is None or refund.mch_id != call.mch_id:
                raise SimulatorError("REFUNDNOTEXIST", "not exist")
            order = state.orders[(refund.mch_id, refund.out_trade_no)]
            return self._payload(order, [refund], 0, paged=False)
        if not p.get("transaction_id") and not p.get("out_trade_no"):
            raise SimulatorError(
                "LACK_PARAMS", "refund_id、out_refund_no、transaction_id、out_trade_no至少填一个")
        tid = p.get("transaction_id", "")
        if tid and not TRANSACTION_ID_RE.fullmatch(tid):
            raise SimulatorError("INVALID_TRANSACTIONID", "无效transaction_id")
        order = state.order(call.mch_id, "" if tid else p["out_trade_no"], tid)
        refunds = state.refunds_of(order) if order else []
        if not refunds:
            raise SimulatorError("REFUNDNOTEXIST", "not exist")
        offset_text = p.get("offset", "")
        if offset_text and not (offset_text.isascii() and offset_text.isdigit()):
            raise SimulatorError("PARAM_ERROR", "offset参数格式错误")
        offset = int(offset_text or 0)
        if offset >= len(refunds):
            raise SimulatorError("PARAM_ERROR", "offset超过退款笔数")
        return self._payload(order, refunds, offset, paged=bool(offset_text)
                             or len(refunds) > PAGE_SIZE)

    def _payload(self, order: Order, refunds: List[Refund], offset: int,
                 paged: bool) -> Dict[str, str]:
        page = refunds[offset:offset + PAGE_SIZE]
        out = {
            "transaction_id": order.transaction_id, "out_trade_no": order.out_trade_no,
            "total_fee": str(order.total_fee), "cash_fee": str(order.total_fee),
        }
        if paged:
            out["total_refund_count"] = str(len(refunds))
        out["refund_count"] = str(len(page))
        for n, refund in enumerate(page):
            out.update({
                f"out_refund_no_{n}": refund.out_refund_no, f"refund_id_{n}": refund.refund_id,
                f"refund_channel_{n}": "ORIGINAL", f"refund_fee_{n}": str(refund.refund_fee),
                f"refund_status_{n}": refund.status,
                f"refund_account_{n}": refund.refund_account,
                f"refund_recv_accout_{n}": refund.recv_accout,
            })
            if refund.success_at:
                out[f"refund_success_time_{n}"] = dashed_time(refund.success_at)
        return out
