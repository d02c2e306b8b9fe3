"""v3 refund endpoints: POST /v3/refund/domestic/refunds and the refund query (§11, §12)."""

from typing import Optional, Tuple
from urllib.parse import unquote

from tornpay.simulator.records import MAX_REFUNDS, REFUND_WINDOW, Refund
from tornpay.simulator.v3.api import V3ApiHandler, V3Fail, param_error
from tornpay.simulator.v3.fields import OUT_REFUND_NO_RE, fen, only, refund_object, text

FIELDS = ("transaction_id", "out_trade_no", "out_refund_no", "reason", "notify_url",
          "funds_account", "amount", "goods_detail")


class RefundHandler(V3ApiHandler):
    SUPPORTED_METHODS = ("POST",)
    endpoint = "refund"

    async def handle(self, mchid: str, *args) -> Tuple[int, Optional[dict]]:
        data = self.body_json
        only(data, FIELDS)
        no = text(data, "out_refund_no", 64)
        if not OUT_REFUND_NO_RE.fullmatch(no):
            raise param_error("out_refund_no", no, "商户退款单号格式错误")
        amount = data.get("amount")
        if not isinstance(amount, dict):
            raise param_error("amount", amount, "必填字段缺失")
        refund_fee, total = fen(amount.get("refund"), "amount/refund"), fen(
            amount.get("total"), "amount/total")
        if amount.get("currency") != "CNY":
            raise param_error("amount/currency", amount.get("currency"), "必填，仅支持CNY")
        state = self.state
        tid, otn = data.get("transaction_id", ""), data.get("out_trade_no", "")
        if not (tid or otn):
            raise V3Fail(400, "PARAM_ERROR", "transaction_id和out_trade_no必须填一个")
        order = state.order(mchid, otn, tid)
        if order is None or order.trade_state not in ("SUCCESS", "REFUND"):
            raise V3Fail(404, "RESOURCE_NOT_EXISTS", "订单不存在")
        existing = state.refunds.get((mchid, no))
        if existing is not None:
            if (existing.out_trade_no, existing.total_fee, existing.refund_fee) != (
                    order.out_trade_no, total, refund_fee):
                raise V3Fail(400, "INVALID_REQUEST", "退款请求参数与首次请求时不一致")
            return 200, refund_object(order, existing)
        self._check_rules(order, total, refund_fee)
        refund = state.add_refund(Refund(
            mch_id=mchid, appid=order.appid, out_trade_no=order.out_trade_no,
            transaction_id=order.transaction_id, out_refund_no=no,
            refund_id=state.new_refund_id(), refund_fee=refund_fee, total_fee=total,
            created_at=state.now(), sign_type="RSA", notify_url=data.get("notify_url", ""),
            api="v3",
        ))
        return 200, refund_object(order, refund)

    def _check_rules(self, order, total: int, refund_fee: int) -> None:
        state = self.state
        if total != order.total_fee:
            raise V3Fail(400, "INVALID_REQUEST", "订单金额total与原订单金额不一致")
        if state.now() - (order.paid_at or 0) > REFUND_WINDOW:
            raise V3Fail(400, "INVALID_REQUEST", "订单已超过退款期限")
        if len(order.refunds) >= MAX_REFUNDS:
            raise V3Fail(400, "INVALID_REQUEST", f"订单已经退款超过{MAX_REFUNDS}次")
        live = [r for r in state.refunds_of(order) if r.status != "REFUNDCLOSE"]
        if sum(r.refund_fee for r in live) + refund_fee > order.total_fee:
            raise V3Fail(400, "INVALID_REQUEST", "申请退款金额超过订单可退金额")
        if state.faults.fire("notenough", self.endpoint):
            raise V3Fail(403, "NOT_ENOUGH", "基本账户余额不足，请充值后重新发起")


class RefundQueryHandler(V3ApiHandler):
    SUPPORTED_METHODS = ("GET",)
    endpoint = "refundquery"

    async def handle(self, mchid: str, no: str = "", *args) -> Tuple[int, Optional[dict]]:
        state = self.state
        state.settle_due_refunds()
        refund = state.refunds.get((mchid, unquote(no)))
        if refund is None:
            raise V3Fail(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
        return 200, refund_object(state.orders[(mchid, refund.out_trade_no)], refund)
