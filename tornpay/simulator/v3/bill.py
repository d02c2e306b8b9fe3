"""v3 trade bill (+ its unsigned download) and GET /v3/certificates (§13, §14)."""

import datetime
import gzip
import hashlib
import json
from typing import Optional, Tuple

from tornpay.protocol.v3 import aead
from tornpay.simulator.billapi import collect_rows, disagree, render_bill
from tornpay.simulator.v3.api import V3ApiHandler, V3Fail, param_error
from tornpay.simulator.v3.fields import rfc3339

BILL_TTL = 300  # a download_url lives 5 minutes (current page)
MAX_TOKENS = 100
BILL_TYPES = ("ALL", "SUCCESS", "REFUND")


def bill_bytes(state, mchid: str, appid: str, day: datetime.date, bill_type: str) -> bytes:
    """The day's bill, the same table as v2's downloadbill (and its bill faults); b"" if none."""
    rows = collect_rows(state, mchid, day, bill_type)
    disagree(state, rows, day, mchid, appid)
    return render_bill(rows, bill_type) if rows else b""


class TradeBillHandler(V3ApiHandler):
    SUPPORTED_METHODS = ("GET",)
    endpoint = "downloadbill"

    async def handle(self, mchid: str, *args) -> Tuple[int, Optional[dict]]:
        text = self.get_query_argument("bill_date", "")
        bill_type = self.get_query_argument("bill_type", "ALL")
        try:
            day = datetime.date.fromisoformat(text)
        except ValueError:
            raise param_error("bill_date", text, "格式应为yyyy-MM-dd", location="query") from None
        if bill_type not in BILL_TYPES:
            raise param_error("bill_type", bill_type, "取值错误", location="query")
        faults = self.state.faults
        if faults.fire("bill_creating", self.endpoint):
            raise V3Fail(400, "STATEMENT_CREATING", "账单生成中，请稍后再试")
        merchant = self.state.config.merchant(mchid)
        data = bill_bytes(self.state, mchid, merchant.appids[0] if merchant else "", day,
                          bill_type)
        if not data or faults.fire("bill_no_bill", self.endpoint):
            raise V3Fail(400, "NO_STATEMENT_EXIST", "账单文件不存在")
        gz = self.get_query_argument("tar_type", "") == "GZIP"
        tokens = self.state.v3_bill_tokens
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
        entry = self.state.v3_bill_tokens.get(self.get_query_argument("token", ""))
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
