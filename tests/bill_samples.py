"""The addendum's §5.5 bill of 2024-06-01 (ALL, SUCCESS, REFUND) and its simulator ledger."""

import datetime

from tornpay.simulator.records import BEIJING, Order, Refund

ALL_HEADER = ("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,"
              "付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,"
              "退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注")
ALL_ROWS = [
    "`2024-06-01 12:31:10,`wxd930ea5d5a258f4f,`10000100,`0,`WEB,`4200002315202406013425869417,"
    "`20240601123045000123,`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`JSAPI,`SUCCESS,`OTHERS,`CNY,`0.01,"
    "`0.00,`0,`0,`0.00,`0.00,`,`,`示例商城-会员充值,`shop=sz01,`0.00000,`0.60%,`0.01,`0.00,`",
    "`2024-06-01 14:06:41,`wxd930ea5d5a258f4f,`10000100,`0,`WEB,`4200002317202406012718350951,"
    "`20240601140500000201,`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`NATIVE,`SUCCESS,`CMB_DEBIT,`CNY,"
    "`99.00,`0.00,`0,`0,`0.00,`0.00,`,`,`示例商城-年度会员,`shop=sz01,`0.59000,`0.60%,`99.00,"
    "`0.00,`",
    "`2024-06-01 15:31:07,`wxd930ea5d5a258f4f,`10000100,`0,`,`4200002322202406015610394827,"
    "`20240601153000000301,`oUpF8uN1Ht3kQw7ZbR2yVx5cLd9A,`MWEB,`SUCCESS,`OTHERS,`CNY,`25.80,"
    "`0.00,`0,`0,`0.00,`0.00,`,`,`示例商城-电子书,`,`0.15000,`0.60%,`25.80,`0.00,`",
    "`2024-06-01 16:20:05,`wxd930ea5d5a258f4f,`10000100,`0,`WEB,`4200002317202406012718350951,"
    "`20240601140500000201,`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`NATIVE,`REFUND,`CMB_DEBIT,`CNY,"
    "`0.00,`0.00,`50300308812024060112345678901,`R20240601000007,`19.00,`0.00,`ORIGINAL,"
    "`SUCCESS,`示例商城-年度会员,`shop=sz01,`-0.11000,`0.60%,`0.00,`19.00,`",
]
SUMMARY_HEADER = "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"
ALL_SUMMARY = "`4,`124.81,`19.00,`0.00,`0.63000,`124.81,`19.00"

# Appendix C: SHA-256 of the three bills framed with a BOM, CRLF and a final CRLF.
C15_ALL = "b334585382e061242edc9732bc8ecf45e3510e59a7ad429b09e1153503e2d20f"
C16_SUCCESS = "90cad04010394e462b7328a1c858b4dc6ad23bc594ece5ccbf43144b68401d24"
C17_REFUND = "15d5fcda9740ef7810f821db2ab252259adf7a03ab61bfb778632cc4019144d7"

# An older merchant's layout (reference §10.2): other names, other summary.
LEGACY = "\n".join([
    "交易时间,公众账号ID,商户号,子商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,"
    "货币种类,总金额,代金券或立减优惠金额,微信退款单号,商户退款单号,退款金额,代金券或立减优惠退款金额,"
    "退款类型,退款状态,商品名称,商户数据包,手续费,费率",
    "`2016-05-04 10:00:01,`wxd930ea5d5a258f4f,`10000100,`0,`WEB,`4006032001201605041234567890,"
    "`LEGACY0001,`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`JSAPI,`SUCCESS,`CMB_CREDIT,`CNY,`12.34,`0.00,`0,"
    "`0,`0,`0,`,`,`Tea, green,`a,b,`0.07000,`0.60%",
    "`2016-05-04 11:00:00,`wxd930ea5d5a258f4f,`10000100,`0,`WEB,`4006032001201605041234567890,"
    "`LEGACY0001,`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`JSAPI,`REFUND,`CMB_CREDIT,`CNY,`0.00,`0.00,"
    "`2006032001201605040012345678,`LR0001,`2.00,`0.00,`ORIGINAL,`SUCCESS,`Tea, green,`a,b,"
    "`-0.01000,`0.60%",
    "总交易单数,总交易额,总退款金额,总代金券或立减优惠退款金额,手续费总金额",
    "`2,`12.34,`2.00,`0.00,`0.06000",
]) + "\n"


def frame(lines) -> bytes:
    """BOM + CRLF + final CRLF, the simulator's framing of C15-C17."""
    return ("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8")


ALL_BILL = frame([ALL_HEADER] + ALL_ROWS + [SUMMARY_HEADER, ALL_SUMMARY])


def _ts(text: str) -> float:
    return datetime.datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(
        tzinfo=BEIJING).timestamp()


def load_ledger(state) -> None:
    """Put the §5.5 ledger into a SimulatorState's records (three payments, one refund)."""
    def order(no, fee, paid, tx, trade_type, body, bank, openid, device="WEB", attach="shop=sz01"):
        o = Order(mch_id="10000100", appid="wxd930ea5d5a258f4f", out_trade_no=no, request={},
                  sign_type="MD5", created_at=_ts(paid) - 60, total_fee=fee, openid=openid,
                  notify_url="", body=body, attach=attach, device_info=device,
                  trade_type=trade_type, trade_state="SUCCESS", transaction_id=tx,
                  paid_at=_ts(paid), bank_type=bank)
        state.orders[("10000100", no)] = o
        return o
    alice = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
    order("20240601123045000123", 1, "2024-06-01 12:31:10", "4200002315202406013425869417",
          "JSAPI", "示例商城-会员充值", "OTHERS", alice)
    native = order("20240601140500000201", 9900, "2024-06-01 14:06:41",
                   "4200002317202406012718350951", "NATIVE", "示例商城-年度会员", "CMB_DEBIT", alice)
    order("20240601153000000301", 2580, "2024-06-01 15:31:07", "4200002322202406015610394827",
          "MWEB", "示例商城-电子书", "OTHERS", "oUpF8uN1Ht3kQw7ZbR2yVx5cLd9A", device="", attach="")
    refund = Refund(mch_id="10000100", appid="wxd930ea5d5a258f4f",
                    out_trade_no=native.out_trade_no, transaction_id=native.transaction_id,
                    out_refund_no="R20240601000007", refund_id="50300308812024060112345678901",
                    refund_fee=1900, total_fee=9900, created_at=_ts("2024-06-01 16:20:05"),
                    sign_type="MD5", status="SUCCESS", success_at=_ts("2024-06-01 16:20:09"))
    state.refunds[("10000100", refund.out_refund_no)] = refund
    native.refunds.append(refund.out_refund_no)
    native.trade_state = "REFUND"
