"""The API v3 gateway: JSON, RSA signatures and AES-GCM notifies behind the gateway interface."""

import gzip
import hashlib
import logging
from typing import Any, Mapping, Optional
from urllib.parse import parse_qs, quote, urlsplit

from tornado.ioloop import IOLoop

from tornpay.gateway.base import NotifyRefused, RefundResult
from tornpay.gateway.v3notify import REFUND_STATUS_V2, open_notify, pay_fields, refund_fields
from tornpay.protocol.v3.times import beijing_compact, beijing_dashed, rfc3339_from_compact
from tornpay.protocol.errors import BusinessError
from tornpay.protocol.v3.client import V3BusinessError, V3Client, dumps, path_id
from tornpay.protocol.v3.signing import pay_sign

logger = logging.getLogger(__name__)

TX = "/v3/pay/transactions"
REFUNDS = "/v3/refund/domestic/refunds"
KINDS = {"JSAPI": "jsapi", "NATIVE": "native", "MWEB": "h5"}
# v3 codes in the core's (v2) vocabulary; unlisted codes pass through unchanged.
CODES = {"ORDER_NOT_EXIST": "ORDERNOTEXIST", "ORDERNOTEXIST": "ORDERNOTEXIST",
         "ORDER_PAID": "ORDERPAID", "ORDERPAID": "ORDERPAID", "ORDER_CLOSED": "ORDERCLOSED",
         "SYSTEM_ERROR": "SYSTEMERROR", "SERVICE_UNAVAILABLE": "SYSTEMERROR",
         "NOT_ENOUGH": "NOTENOUGH", "NOTENOUGH": "NOTENOUGH"}


def _v2_codes(exc: V3BusinessError, extra: Optional[Mapping[str, str]] = None) -> None:
    code = dict(CODES, **(extra or {})).get(exc.err_code, exc.err_code)
    exc.err_code = code
    exc.args = (f"{code}: {exc.err_code_des}" if exc.err_code_des else code,)


class V3Gateway:
    """One merchant's v3 API; built from checked credentials (gateway.v3settings)."""

    generation = "v3"

    def __init__(self, client: V3Client, settings: Any, creds: Any):
        self.client = client
        self.settings = settings
        self._creds = creds

    # -- prepay --------------------------------------------------------------
    def prepare_prepay(self, fields: dict, sign_type: str) -> str:
        """``PATH\\nBODY``: the exact JSON is stored and re-sent byte for byte."""
        w = self.settings.wechat
        trade_type = fields.get("trade_type", "JSAPI")
        # fields["appid"]: a Mini Program's order names its own appid.
        body = {"appid": fields.get("appid") or w.appid, "mchid": w.mch_id,
                "description": fields["body"],
                "out_trade_no": fields["out_trade_no"]}
        if fields.get("time_expire"):
            body["time_expire"] = rfc3339_from_compact(fields["time_expire"])
        if fields.get("attach"):
            body["attach"] = fields["attach"]
        body["notify_url"] = fields["notify_url"]
        body["amount"] = {"total": fields["total_fee"], "currency": "CNY"}
        if trade_type == "JSAPI":
            body["payer"] = {"openid": fields["openid"]}
        elif trade_type == "MWEB":
            body["scene_info"] = {"payer_client_ip": fields["spbill_create_ip"],
                                  "h5_info": {"type": "Wap"}}
        return f"{TX}/{KINDS[trade_type]}\n" + dumps(body).decode("utf-8")

    async def send_prepay(self, request_text: str) -> dict:
        path, body = request_text.split("\n", 1)
        reply = await self._call("POST", path, body.encode("utf-8"), "unifiedorder")
        out = dict(reply)
        if "h5_url" in out:
            out["mweb_url"] = out["h5_url"]  # the core's (v2) name for the H5 link
        if "prepay_id" not in out:
            # NATIVE and H5 answer no prepay_id in v3: the session is named by its link.
            link = out.get("h5_url") or out.get("code_url") or ""
            query = parse_qs(urlsplit(link).query)
            session = (query.get("prepay_id") or query.get("pr") or [""])[0]
            if session:
                out["prepay_id"] = session[:64]
        return out

    # -- query and close -------------------------------------------------------
    # v3 names an order by mchid and out_trade_no only: appid is the v2 gateway's need.
    async def order_query(self, out_trade_no: str, sign_type: Optional[str] = None,
                          appid: Optional[str] = None) -> dict:
        url = f"{TX}/out-trade-no/{path_id(out_trade_no)}?mchid={quote(self.client.mchid)}"
        tx = await self._call("GET", url, None, "orderquery")
        amount = tx.get("amount") if isinstance(tx.get("amount"), dict) else {}
        total = amount.get("total")
        return {"out_trade_no": tx.get("out_trade_no"), "trade_state": tx.get("trade_state"),
                "total_fee": total if type(total) is int else None,
                "transaction_id": tx.get("transaction_id"),
                "time_end": beijing_compact(tx.get("success_time")),
                "bank_type": tx.get("bank_type"), "cash_fee": amount.get("payer_total")}

    async def close_order(self, out_trade_no: str, sign_type: Optional[str] = None,
                          appid: Optional[str] = None) -> None:
        url = f"{TX}/out-trade-no/{path_id(out_trade_no)}/close"
        await self._call("POST", url, dumps({"mchid": self.client.mchid}), "closeorder")

    # -- refunds ---------------------------------------------------------------
    def prepare_refund(self, params: dict, sign_type: str) -> str:
        body = {}
        if params.get("transaction_id"):
            body["transaction_id"] = params["transaction_id"]
        else:
            body["out_trade_no"] = params["out_trade_no"]
        body["out_refund_no"] = params["out_refund_no"]
        if params.get("refund_desc"):
            body["reason"] = params["refund_desc"]
        if params.get("notify_url"):
            body["notify_url"] = params["notify_url"]
        body["amount"] = {"refund": params["refund_fee"], "total": params["total_fee"],
                          "currency": "CNY"}
        return f"{REFUNDS}\n" + dumps(body).decode("utf-8")

    async def send_refund(self, request_text: str) -> dict:
        path, body = request_text.split("\n", 1)
        reply = await self._call("POST", path, body.encode("utf-8"), "refund",
                                 {"RESOURCE_NOT_EXISTS": "ORDERNOTEXIST"})
        return {"refund_id": reply.get("refund_id"), "status": reply.get("status")}

    async def refund_query(self, out_refund_no: str,
                           appid: Optional[str] = None) -> RefundResult:
        reply = await self._call("GET", f"{REFUNDS}/{path_id(out_refund_no)}", None,
                                 "refundquery", {"RESOURCE_NOT_EXISTS": "REFUNDNOTEXIST"})
        amount = reply.get("amount") if isinstance(reply.get("amount"), dict) else {}
        fee = amount.get("refund")
        return RefundResult(out_refund_no, REFUND_STATUS_V2.get(reply.get("status"), "UNKNOWN"),
                            refund_id=reply.get("refund_id"),
                            success_time=beijing_dashed(reply.get("success_time")),
                            refund_fee=fee if type(fee) is int else None,
                            extra={"refund_recv_accout": reply.get("user_received_account")})

    # -- pay page, bill ------------------------------------------------------------
    def pay_params(self, order: Any, timestamp: str, nonce: str) -> dict:
        """getBrandWCPayRequest with signType RSA, paySign over four lines (§8.1)."""
        appid = getattr(order, "appid", "") or self.settings.wechat.appid  # Mini Program's
        package = "prepay_id=" + order.prepay_id
        return {"appId": appid, "timeStamp": timestamp, "nonceStr": nonce, "package": package,
                "signType": "RSA",
                "paySign": pay_sign(self._creds.private_key, appid, timestamp, nonce, package)}

    def bill_source(self) -> "V3TradeBill":
        return V3TradeBill(self)

    # -- notifies --------------------------------------------------------------------
    def decode_pay_notify(self, headers: Mapping, body: bytes) -> dict:
        return pay_fields(self._open(headers, body, "transaction"))

    def decode_refund_notify(self, headers: Mapping, body: bytes) -> dict:
        return refund_fields(self._open(headers, body, "refund"))

    def _open(self, headers: Mapping, body: bytes, original_type: str) -> dict:
        try:
            return open_notify(self.client.keys, self._creds.apiv3_key, headers, body,
                               original_type, now=self.client.clock())
        except NotifyRefused as exc:
            if "unknown_serial" in exc.reason and self.client.keys.certificate_mode:
                # A rotated platform certificate: fetch the list now, WeChat redelivers.
                IOLoop.current().spawn_callback(self._refresh_quietly)
            raise

    async def _refresh_quietly(self) -> None:
        try:
            await self.client.refresh_certificates()
        except Exception as exc:  # logged; the next redelivery tries again
            logger.warning("wechat v3: certificate refresh failed: %s", exc)

    async def _call(self, method: str, url: str, body: Optional[bytes], api: str,
                    codes: Optional[Mapping[str, str]] = None) -> dict:
        try:
            return (await self.client.call(method, url, body, api=api)).data
        except V3BusinessError as exc:
            _v2_codes(exc, codes)
            raise


class V3TradeBill:
    """``GET /v3/bill/tradebill`` then the unsigned ``download_url``, checked by SHA-1 (§13)."""

    name = "v3"

    def __init__(self, gateway: V3Gateway):
        self.gateway = gateway

    async def fetch(self, day) -> bytes:
        from tornpay.bills.source import BillUnavailable, NoBill
        try:
            info = await self.gateway._call("GET", f"/v3/bill/tradebill?bill_date="
                                                   f"{day.isoformat()}&bill_type=ALL"
                                                   "&tar_type=GZIP", None, "downloadbill")
        except BusinessError as exc:
            if exc.err_code == "NO_STATEMENT_EXIST":
                raise NoBill(str(exc)) from None
            raise BillUnavailable(f"tradebill: {exc}",
                                  retry=exc.retryable or exc.err_code == "STATEMENT_CREATING")
        data = await self.gateway.client.download(str(info.get("download_url", "")))
        try:  # hash_value is the SHA-1 of the uncompressed bill (v3 reference §13, V10)
            plain = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
        except (OSError, EOFError):
            plain = b""
        if hashlib.sha1(plain).hexdigest() != str(info.get("hash_value", "")).lower():
            raise BillUnavailable("tradebill: downloaded file does not match hash_value",
                                  retry=True)
        return data

