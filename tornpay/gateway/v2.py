"""The API v2 gateway: today's PayClient behind the gateway interface."""

from typing import Any, Optional

from tornpay.gateway.base import RefundResult
from tornpay.protocol.sign import make_sign

UNIFIED_ORDER_PATH = "/pay/unifiedorder"
REFUND_PATH = "/secapi/pay/refund"


class V2Gateway:
    """Signs with the v2 key (MD5 / HMAC-SHA256), XML on the wire."""

    generation = "v2"

    def __init__(self, client: Any, settings: Any):
        self.client = client  # the context's PayClient (tests patch its methods)
        self.settings = settings

    def prepare_prepay(self, fields: dict, sign_type: str) -> str:
        body, _ = self.client.build_request(UNIFIED_ORDER_PATH, fields, sign_type)
        return body.decode("utf-8")

    async def send_prepay(self, request_text: str) -> dict:
        return await self.client.send_prepared(UNIFIED_ORDER_PATH, request_text.encode("utf-8"))

    # appid: the order's when it is not the client's (a Mini Program's order).
    async def order_query(self, out_trade_no: str, sign_type: Optional[str] = None,
                          appid: Optional[str] = None) -> dict:
        return await self.client.order_query(out_trade_no=out_trade_no, sign_type=sign_type,
                                             appid=appid)

    async def close_order(self, out_trade_no: str, sign_type: Optional[str] = None,
                          appid: Optional[str] = None) -> None:
        await self.client.close_order(out_trade_no, sign_type=sign_type, appid=appid)

    def prepare_refund(self, params: dict, sign_type: str) -> str:
        body, _ = self.client.build_request(REFUND_PATH, params, sign_type)
        return body.decode("utf-8")

    async def send_refund(self, request_text: str) -> dict:
        return await self.client.send_prepared(REFUND_PATH, request_text.encode("utf-8"))

    async def refund_query(self, out_refund_no: str,
                           appid: Optional[str] = None) -> Optional[RefundResult]:
        reply = await self.client.refund_query(out_refund_no=out_refund_no, appid=appid)
        for n in range(int(reply.get("refund_count") or 0)):
            if reply.get(f"out_refund_no_{n}") != out_refund_no:
                continue
            fee = reply.get(f"refund_fee_{n}")
            return RefundResult(
                out_refund_no, reply.get(f"refund_status_{n}", ""),
                refund_id=reply.get(f"refund_id_{n}"),
                success_time=reply.get(f"refund_success_time_{n}"),
                refund_fee=int(fee) if fee and fee.isdigit() else None,
                extra={"refund_recv_accout": reply.get(f"refund_recv_accout_{n}")})
        return None  # the reply does not list it

    def pay_params(self, order: Any, timestamp: str, nonce: str) -> dict:
        params = {"appId": getattr(order, "appid", "") or self.settings.wechat.appid,
                  "timeStamp": timestamp,
                  "nonceStr": nonce, "package": "prepay_id=" + order.prepay_id,
                  "signType": order.sign_type}
        params["paySign"] = make_sign(params, self.settings.wechat.api_key, order.sign_type)
        return params

    def bill_source(self) -> Any:
        from tornpay.bills.source import V2DownloadBill
        return V2DownloadBill(self.client)
