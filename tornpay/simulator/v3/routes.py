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
        # The path says the kind (jsapi, native, h5) and what a query is by (id, out-trade-no).
        URLSpec(p + TX + "/(jsapi|native|h5)", PrepayHandler, dict(kw)),
        URLSpec(p + TX + "/out-trade-no/([^/]+)/close", CloseHandler, dict(kw)),
        URLSpec(p + TX + "/(out-trade-no|id)/([^/]+)", QueryHandler, dict(kw)),
        URLSpec(p + "/v3/refund/domestic/refunds", RefundHandler, dict(kw)),
        URLSpec(p + "/v3/refund/domestic/refunds/([^/]+)", RefundQueryHandler, dict(kw)),
        URLSpec(p + "/v3/bill/tradebill", TradeBillHandler, dict(kw)),
        URLSpec(p + "/v3/billdownload/file", BillFileHandler, dict(kw)),
        URLSpec(p + "/v3/certificates", CertificatesHandler, dict(kw)),
    ]
