"""v3 trade bill (+ its unsigned download) and GET /v3/certificates (§13, §14)."""

import datetime
import gzip
import hashlib
import json
from typing import Optional, Tuple

from tornpay.protocol.v3 import aead
from tornpay.simulator.records import BEIJING
from tornpay.simulator.v3.api import V3ApiHandler, V3Fail, param_error
from tornpay.simulator.v3.fields import rfc3339

BILL_TTL = 300  # a download_url lives 5 minutes (current page)
MAX_TOKENS = 100
HEAD = ("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,"
        "交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,"
        "充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注")
SUM_HEAD = "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def _day(ts: Optional[float]) -> str:
    return datetime.datetime.fromtimestamp(ts or 0, BEIJING).strftime("%Y-%m-%d")


def bill_bytes(state, mchid: str, day: str) -> bytes:
    """The day's successful payments and refunds in the V10 layout (amounts in yuan)."""
    rows, paid, refunded = [], 0, 0
    for order in state.orders.values():
        if order.mch_id != mchid or order.paid_at is None or _day(order.paid_at) != day:
            continue
        when = datetime.datetime.fromtimestamp(order.paid_at, BEIJING)
        rows.append([when.strftime("%Y-%m-%d %H:%M:%S"), order.appid, mchid, "0", "",
                     order.transaction_id, order.out_trade_no, order.openid, order.trade_type,
                     "SUCCESS", order.bank_type, "CNY", _yuan(order.total_fee), "0.00", "0", "0",
                     "0.00", "0.00", "", "", order.body, order.attach, "0.00000", "0.60%",
                     _yuan(order.total_fee), "0.00", ""])
        paid += order.total_fee
    for refund in state.refunds.values():
        if refund.mch_id == mchid and refund.success_at and _day(refund.success_at) == day:
            refunded += refund.refund_fee
    if not rows:
        return b""
    lines = [HEAD] + [",".join("`" + v for v in row) for row in rows]
    lines += [SUM_HEAD, ",".join("`" + v for v in (
        str(len(rows)), _yuan(paid), _yuan(refunded), "0.00", "0.00000", _yuan(paid),
        _yuan(refunded)))]
    return ("\n".join(lines) + "\n").encode("utf-8")


class TradeBillHandler(V3ApiHandler):
    SUPPORTED_METHODS = ("GET",)
    endpoint = "downloadbill"

    async def handle(self, mchid: str, *args) -> Tuple[int, Optional[dict]]:
        day = self.get_query_argument("bill_date", "")
        try:
            datetime.date.fromisoformat(day)
        except ValueError:
            raise param_error("bill_date", day, "格式应为yyyy-MM-dd", location="query") from None
        data = bill_bytes(self.state, mchid, day)
        if not data:
            raise V3Fail(400, "NO_STATEMENT_EXIST", "账单文件不存在")
        gz = self.get_query_argument("tar_type", "") == "GZIP"
        tokens = self.state.__dict__.setdefault("v3_bill_tokens", {})
        if len(tokens) >= MAX_TOKENS:
            tokens.clear()
        token = self.state.new_code()
        tokens[token] = (gzip.compress(data, mtime=0) if gz else data, self.state.now() + BILL_TTL)
        base = f"{self.request.protocol}://{self.request.host}{self.request.path}"
        base = base[: base.rfind("/v3/")]
        url = f"{base}/v3/billdownload/file?token={token}" + ("&tartype=gzip" if gz else "")
        return 200, {"hash_type": "SHA1", "hash_value": hashlib.sha1(data).hexdigest(),
                     "download_url": url}


class BillFileHandler(V3ApiHandler):
    SUPPORTED_METHODS = ("GET",)
    endpoint = "billdownload"

    async def _serve(self, args) -> None:
        try:
            self.authenticate()
        except V3Fail as exc:
            self.send_error_json(exc)
            return
        tokens = getattr(self.state, "v3_bill_tokens", {})
        entry = tokens.get(self.get_query_argument("token", ""))
        if entry is None or entry[1] < self.state.now():
            self.send_error_json(V3Fail(400, "INVALID_REQUEST", "下载链接已失效"))
            return
        self.set_header("Content-Type", "application/octet-stream")
        self.finish(entry[0])  # the file itself is not signed (§5.4)


class CertificatesHandler(V3ApiHandler):
    SUPPORTED_METHODS = ("GET",)
    endpoint = "certificates"

    async def handle(self, mchid: str, *args) -> Tuple[int, Optional[dict]]:
        keys = self.keys
        if keys.mode == "public_key":
            raise V3Fail(404, "RESOURCE_NOT_EXISTS",
                         "无可用的平台证书，请在商户平台-API安全申请使用微信支付公钥")
        nonce = self.state.new_code()[:12]
        entry = {
            "serial_no": keys.platform_serial, "effective_time": rfc3339(self.state.now() - 86400),
            "expire_time": rfc3339(self.state.now() + 5 * 365 * 86400),
            "encrypt_certificate": {
                "algorithm": aead.ALGORITHM, "nonce": nonce, "associated_data": "certificate",
                "ciphertext": aead.encrypt(keys.apiv3_keys[mchid], nonce, "certificate",
                                           keys.platform_cert_pem)},
        }
        return 200, json.loads(json.dumps({"data": [entry]}))
