"""URL specs of the simulator's v3 endpoints (the same paths as WeChat under its base URL)."""

from typing import List

from tornado.web import URLSpec

from tornpay.simulator.v3.bill import BillFileHandler, CertificatesHandler, TradeBillHandler
from tornpay.simulator.v3.pay import CloseHandler, PrepayHandler, QueryHandler
from tornpay.simulator.v3.refund import RefundHandler, RefundQueryHandler

TX = "/v3/pay/transactions"


def v3_routes(state, p: str) -> List[URLSpec]:
    kw = {"state": state}
    return [
        URLSpec(p + TX + "/jsapi", PrepayHandler, dict(kw, kind="jsapi")),
        URLSpec(p + TX + "/native", PrepayHandler, dict(kw, kind="native")),
        URLSpec(p + TX + "/h5", PrepayHandler, dict(kw, kind="h5")),
        URLSpec(p + TX + "/out-trade-no/([^/]+)/close", CloseHandler, dict(kw)),
        URLSpec(p + TX + "/out-trade-no/([^/]+)", QueryHandler, dict(kw, by="out_trade_no")),
        URLSpec(p + TX + "/id/([^/]+)", QueryHandler, dict(kw, by="id")),
        URLSpec(p + "/v3/refund/domestic/refunds", RefundHandler, dict(kw)),
        URLSpec(p + "/v3/refund/domestic/refunds/([^/]+)", RefundQueryHandler, dict(kw)),
        URLSpec(p + "/v3/bill/tradebill", TradeBillHandler, dict(kw)),
        URLSpec(p + "/v3/billdownload/file", BillFileHandler, dict(kw)),
        URLSpec(p + "/v3/certificates", CertificatesHandler, dict(kw)),
    ]
