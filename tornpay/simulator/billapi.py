"""``POST /pay/downloadbill``: the daily bill in WeChat's format, from the simulator's records.

Rows follow addendum §5.1/§5.4 (payments on the day they were paid, refunds on
the day they were initiated, status as now); fee = amount × 0.60 % rounded half
up to fen, printed with 5 decimals, negative on refunds; UTF-8 with a BOM, CRLF
line ends; ``tar_type=GZIP`` gzips it (mtime 0, so bytes are stable). Unlike
WeChat (which makes day D's bill on D+1), any day including today is served.
Faults: ``bill_creating``, ``bill_no_bill``, ``bill_unknown_order`` (an order
the merchant never heard of), ``bill_amount_differs`` (the first payment + 1 yuan).
"""

import datetime
import gzip
import logging
from decimal import ROUND_HALF_UP, Decimal
from typing import Dict, List

from tornpay.protocol.xmlcodec import encode_xml
from tornpay.simulator.faults import FAULTS
from tornpay.simulator.records import BEIJING, dashed_time
from tornpay.simulator.xmlapi import PayApiHandler, ProtocolFail

log = logging.getLogger(__name__)

# Registered here so the generic fault switch (control API) knows them.
FAULTS.setdefault("bill_creating", "downloadbill answers Bill Creating (not made yet)")
FAULTS.setdefault("bill_no_bill", "downloadbill answers No Bill Exist")
FAULTS.setdefault("bill_unknown_order", "the bill adds a payment of an order nobody made")
FAULTS.setdefault("bill_amount_differs", "the bill's first payment is 1 yuan more than paid")

FEE_RATE = Decimal("0.0060")
HEAD = ("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,"
        "付款银行,货币种类,应结订单金额,代金券金额")
TAIL = "商品名称,商户数据包,手续费,费率,订单金额"
HEADERS = {
    "ALL": f"{HEAD},微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,{TAIL},申请退款金额,费率备注",
    "SUCCESS": f"{HEAD},{TAIL},费率备注",
    "REFUND": f"{HEAD},退款申请时间,退款成功时间,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,"
              f"退款状态,{TAIL},申请退款金额,费率备注",
}
SUMMARY = "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"


def yuan(fen: int) -> str:
    return f"{Decimal(fen) / 100:.2f}"


def fee_of(fen: int) -> Decimal:
    """The handling fee in yuan: amount × rate, half up to fen (addendum §8.4)."""
    return (Decimal(fen) / 100 * FEE_RATE).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _day_of(ts: float) -> datetime.date:
    return datetime.datetime.fromtimestamp(ts, BEIJING).date()


def payment_row(order) -> Dict[str, str]:
    total = yuan(order.total_fee)
    return {"交易时间": dashed_time(order.paid_at), "公众账号ID": order.appid,
            "商户号": order.mch_id, "特约商户号": "0", "设备号": order.device_info,
            "微信订单号": order.transaction_id, "商户订单号": order.out_trade_no,
            "用户标识": order.openid, "交易类型": order.trade_type, "交易状态": "SUCCESS",
            "付款银行": order.bank_type, "货币种类": order.fee_type, "应结订单金额": total,
            "代金券金额": "0.00", "微信退款单号": "0", "商户退款单号": "0", "退款金额": "0.00",
            "充值券退款金额": "0.00", "退款类型": "", "退款状态": "", "商品名称": order.body,
            "商户数据包": order.attach, "手续费": f"{fee_of(order.total_fee):.5f}",
            "费率": "0.60%", "订单金额": total, "申请退款金额": "0.00", "费率备注": "",
            "_fen": order.total_fee, "_at": order.paid_at}


def refund_row(order, refund) -> Dict[str, str]:
    row = payment_row(order)
    amount = yuan(refund.refund_fee)
    row.update({"交易时间": dashed_time(refund.created_at), "交易状态": "REFUND",
                "应结订单金额": "0.00", "订单金额": "0.00", "退款申请时间": dashed_time(refund.created_at),
                "退款成功时间": dashed_time(refund.success_at) if refund.success_at else "",
                "微信退款单号": refund.refund_id, "商户退款单号": refund.out_refund_no,
                "退款金额": amount, "退款类型": "ORIGINAL", "退款状态": refund.status,
                "手续费": f"{-fee_of(refund.refund_fee):.5f}", "申请退款金额": amount,
                "_fen": 0, "_at": refund.created_at})
    return row


def collect_rows(state, mch_id: str, day: datetime.date, bill_type: str) -> List[dict]:
    """The day's rows for ``bill_type``, oldest first."""
    rows = []
    for order in state.orders.values():
        if order.mch_id != mch_id or order.paid_at is None:
            continue
        if bill_type in ("ALL", "SUCCESS") and _day_of(order.paid_at) == day:
            rows.append(payment_row(order))
        if bill_type in ("ALL", "REFUND"):
            rows += [refund_row(order, r) for r in state.refunds_of(order)
                     if _day_of(r.created_at) == day]
    return sorted(rows, key=lambda r: r["_at"])


def disagree(state, rows: List[dict], day: datetime.date, mch_id: str, appid: str) -> None:
    if state.faults.fire("bill_amount_differs", "downloadbill"):
        for row in rows:
            if row["交易状态"] == "SUCCESS":
                row["订单金额"] = row["应结订单金额"] = yuan(row["_fen"] + 100)
                break
    if state.faults.fire("bill_unknown_order", "downloadbill"):
        noon = datetime.datetime.combine(day, datetime.time(12), BEIJING).timestamp()
        row = {k: v for k, v in (rows[0] if rows else {}).items()}
        row.update({"交易时间": dashed_time(noon), "公众账号ID": appid, "商户号": mch_id,
                    "特约商户号": "0", "设备号": "", "微信订单号": state.new_transaction_id(),
                    "商户订单号": "SIMFOREIGN" + day.strftime("%Y%m%d"),
                    "用户标识": "oUpF8uKtgdlYLszMjFH2Yf8DKWcw", "交易类型": "JSAPI",
                    "交易状态": "SUCCESS", "付款银行": "OTHERS", "货币种类": "CNY",
                    "应结订单金额": "1.00", "代金券金额": "0.00", "微信退款单号": "0",
                    "商户退款单号": "0", "退款金额": "0.00", "充值券退款金额": "0.00", "退款类型": "",
                    "退款状态": "", "商品名称": "another shop", "商户数据包": "",
                    "手续费": f"{fee_of(100):.5f}", "费率": "0.60%", "订单金额": "1.00",
                    "申请退款金额": "0.00", "费率备注": "", "退款申请时间": "", "退款成功时间": "",
                    "_at": noon})
        rows.append(row)


def render_bill(rows: List[dict], bill_type: str) -> bytes:
    """The bill's bytes: BOM, header, back-ticked rows, summary; CRLF line ends."""
    header = HEADERS[bill_type].split(",")
    lines = [HEADERS[bill_type]]
    lines += ["`" + ",`".join(row.get(name, "") for name in header) for row in rows]
    fen = lambda name: sum(int(Decimal(r[name]) * 100) for r in rows)  # noqa: E731
    fees = sum((Decimal(r["手续费"]) for r in rows), Decimal("0"))
    totals = [str(len(rows)), yuan(fen("应结订单金额")), yuan(fen("退款金额")), "0.00",
              f"{fees:.5f}", yuan(fen("订单金额")), yuan(fen("申请退款金额"))]
    lines += [SUMMARY, "`" + ",`".join(totals)]
    return ("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8")


class DownloadBillHandler(PayApiHandler):
    """The bill table on success; XML with return_code FAIL (and error_code) otherwise."""

    endpoint = "downloadbill"

    async def post(self, *args) -> None:
        try:
            call = self.authenticate()
        except ProtocolFail as exc:
            self.fail(str(exc))
            return
        p = call.params
        bill_type = p.get("bill_type") or "ALL"
        if bill_type not in HEADERS:
            return self._bill_fail("invalid bill_type", "20001")
        try:
            day = datetime.datetime.strptime(p.get("bill_date", ""), "%Y%m%d").date()
        except ValueError:
            return self._bill_fail("invalid bill_date", "20001")
        faults = self.state.faults
        if faults.fire("bill_creating", self.endpoint):
            return self._bill_fail("Bill Creating", "20007")
        today = datetime.datetime.fromtimestamp(self.state.now(), BEIJING).date()
        rows = [] if day > today else collect_rows(self.state, call.mch_id, day, bill_type)
        disagree(self.state, rows, day, call.mch_id, call.appid)
        if not rows or faults.fire("bill_no_bill", self.endpoint):
            return self._bill_fail("No Bill Exist", "20002")
        data = render_bill(rows, bill_type)
        if p.get("tar_type") == "GZIP":
            data = gzip.compress(data, mtime=0)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(data)

    def _bill_fail(self, msg: str, error_code: str) -> None:
        log.info("simulator: downloadbill FAIL: %s", msg)
        self.set_header("Content-Type", "text/xml; charset=utf-8")
        self.finish(encode_xml({"return_code": "FAIL", "return_msg": msg,
                                "error_code": error_code}))
