"""Async client for the WeChat Pay v2 API: signs requests, verifies replies, raises typed errors."""

import logging
import time
from typing import Callable, Mapping, Optional, Tuple

from tornado.httpclient import HTTPRequest

from .errors import (
    BusinessError,
    ProtocolError,
    ResponseSignatureError,
    TransportError,
    WeChatError,
)
from .ids import nonce_str
from .sign import MD5, SIGN_TYPES, UnknownSignType, sign_params, verify_sign
from .xmlcodec import XMLError, decode_xml, encode_xml

logger = logging.getLogger(__name__)

# (api_name, seconds, outcome) -> None; outcome is one of OUTCOMES.
Observer = Callable[[str, float, str], None]
OUTCOMES = (
    "success", "transport_error", "protocol_error", "signature_error", "business_error", "error",
)
_OUTCOME_OF = {
    TransportError: "transport_error",
    ProtocolError: "protocol_error",
    ResponseSignatureError: "signature_error",
    BusinessError: "business_error",
}


def wechat_urls(settings) -> dict:
    """The three WeChat base URLs: ``effective_wechat_urls()`` when the settings offer it."""
    wechat = settings.wechat
    names = ("pay_api_base", "oauth_authorize_url", "oauth_api_base")
    getter = getattr(settings, "effective_wechat_urls", None)
    urls = getter() if callable(getter) else wechat
    if isinstance(urls, Mapping):
        return {n: urls.get(n) or getattr(wechat, n) for n in names}
    if isinstance(urls, (tuple, list)) and not hasattr(urls, "pay_api_base"):
        return dict(zip(names, urls))
    return {n: getattr(urls, n, None) or getattr(wechat, n) for n in names}


def _check_fen(name: str, value: object) -> None:
    # A float or bool would be signed as "1.0"/"True" (pitfall P8): refuse it here.
    if type(value) is not int or value <= 0:
        raise ValueError(f"{name} must be a positive int number of fen, got {value!r}")


class PayClient:
    """One merchant's v2 pay API on an injected (Curl)AsyncHTTPClient."""

    def __init__(
        self,
        appid: str,
        mch_id: str,
        api_key: str,
        base_url: str,
        http_client,
        timeout: float = 10,
        cert_file: Optional[str] = None,
        key_file: Optional[str] = None,
        sign_type: str = MD5,
        observer: Optional[Observer] = None,
        ca_certs: Optional[str] = None,
    ):
        if sign_type not in SIGN_TYPES:
            raise UnknownSignType(f"unknown sign type {sign_type!r}")
        self.appid = appid
        self.mch_id = mch_id
        self._api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.http_client = http_client
        self.timeout = timeout
        self.cert_file = cert_file or None
        self.key_file = key_file or None
        self.sign_type = sign_type
        self.observer = observer
        self.ca_certs = ca_certs or None  # a private CA (e.g. a TLS simulator); None = system

    def __repr__(self) -> str:  # never show the key
        return f"PayClient(appid={self.appid!r}, mch_id={self.mch_id!r}, base={self.base_url!r})"

    @classmethod
    def from_settings(cls, settings, http_client, observer: Optional[Observer] = None):
        w = settings.wechat
        return cls(
            appid=w.appid,
            mch_id=w.mch_id,
            api_key=w.api_key,
            base_url=wechat_urls(settings)["pay_api_base"],
            http_client=http_client,
            timeout=w.timeout,
            cert_file=getattr(w, "cert_file", None),
            key_file=getattr(w, "key_file", None),
            sign_type=getattr(w, "sign_type", MD5) or MD5,
            observer=observer,
        )

    # -- the five APIs -------------------------------------------------------

    async def unified_order(self, **fields) -> dict:
        """POST /pay/unifiedorder; ``fields`` are the wire fields (``sign_type`` optional)."""
        _check_fen("total_fee", fields.get("total_fee"))
        fields.setdefault("trade_type", "JSAPI")
        return await self.send_signed("/pay/unifiedorder", fields)

    async def order_query(
        self, out_trade_no: Optional[str] = None, transaction_id: Optional[str] = None,
        sign_type: Optional[str] = None, appid: Optional[str] = None,
    ) -> dict:
        """POST /pay/orderquery; ``appid``: the order's when not the client's (a Mini Program)."""
        if not (out_trade_no or transaction_id):
            raise ValueError("order_query needs out_trade_no or transaction_id")
        params = {"transaction_id": transaction_id, "out_trade_no": out_trade_no,
                  "appid": appid}
        return await self.send_signed("/pay/orderquery", params, sign_type)

    async def close_order(self, out_trade_no: str, sign_type: Optional[str] = None,
                          appid: Optional[str] = None) -> dict:
        return await self.send_signed("/pay/closeorder",
                                      {"out_trade_no": out_trade_no, "appid": appid}, sign_type)

    async def refund(
        self, out_trade_no: Optional[str], out_refund_no: str, total_fee: int, refund_fee: int,
        refund_desc: Optional[str] = None, notify_url: Optional[str] = None,
        *, transaction_id: Optional[str] = None, sign_type: Optional[str] = None,
    ) -> dict:
        """POST /secapi/pay/refund over mutual TLS; retry with the SAME out_refund_no only."""
        _check_fen("total_fee", total_fee)
        _check_fen("refund_fee", refund_fee)
        if not (out_trade_no or transaction_id):
            raise ValueError("refund needs out_trade_no or transaction_id")
        params = {
            "transaction_id": transaction_id, "out_trade_no": out_trade_no,
            "out_refund_no": out_refund_no, "total_fee": total_fee, "refund_fee": refund_fee,
            "refund_desc": refund_desc, "notify_url": notify_url,
        }
        return await self.send_signed("/secapi/pay/refund", params, sign_type)

    async def refund_query(
        self, out_refund_no: Optional[str] = None, refund_id: Optional[str] = None,
        out_trade_no: Optional[str] = None, transaction_id: Optional[str] = None,
        offset: Optional[int] = None, sign_type: Optional[str] = None,
        appid: Optional[str] = None,
    ) -> dict:
        if not (out_refund_no or refund_id or out_trade_no or transaction_id):
            raise ValueError("refund_query needs one of the four ids")
        params = {
            "refund_id": refund_id, "out_refund_no": out_refund_no,
            "transaction_id": transaction_id, "out_trade_no": out_trade_no, "offset": offset,
            "appid": appid,
        }
        return await self.send_signed("/pay/refundquery", params, sign_type)

    # -- signing and transport -----------------------------------------------

    def build_request(
        self, path: str, params: Mapping[str, object], sign_type: Optional[str] = None
    ) -> Tuple[bytes, dict]:
        """Return ``(body, signed_params)`` for ``path``; resending ``body`` is a true retry.

        appid, mch_id and a fresh nonce_str are added unless ``params`` has them,
        so rebuilding from ``signed_params`` gives the same bytes. ``sign_type``
        defaults to ``params['sign_type']``, then the client's.
        """
        sign_type = sign_type or str(params.get("sign_type") or self.sign_type)
        if sign_type not in SIGN_TYPES:
            raise UnknownSignType(f"unknown sign type {sign_type!r}")
        fields = {"appid": self.appid, "mch_id": self.mch_id, "nonce_str": nonce_str()}
        fields.update({k: v for k, v in params.items() if v is not None and k != "sign"})
        if sign_type == MD5 and fields.get("sign_type") != MD5:
            fields.pop("sign_type", None)  # MD5 is the default: leave it implicit
        else:
            fields["sign_type"] = sign_type
        signed = sign_params(fields, self._api_key, sign_type)
        return encode_xml(signed), signed

    async def send_signed(
        self, path: str, params: Mapping[str, object], sign_type: Optional[str] = None
    ) -> dict:
        """Sign ``params``, POST them to ``path`` and return the verified reply fields."""
        body, signed = self.build_request(path, params, sign_type)
        return await self._post(path, body, signed.get("sign_type", MD5), signed)

    async def send_prepared(self, path: str, body: bytes) -> dict:
        """POST a body made by :meth:`build_request` again, byte for byte (a safe retry)."""
        try:
            sent = decode_xml(body)
        except XMLError as exc:
            raise ValueError(f"not a prepared request body: {exc}") from None
        return await self._post(path, body, sent.get("sign_type", MD5), sent)

    async def _post(self, path: str, body: bytes, sign_type: str, sent: Mapping) -> dict:
        api = path.rstrip("/").rsplit("/", 1)[-1]
        ref = sent.get("out_trade_no") or sent.get("out_refund_no") or sent.get("transaction_id")
        started = time.monotonic()
        # "error" stays only if something other than a WeChatError escapes (a bug, cancel).
        outcome, level, detail = "error", logging.WARNING, ""
        try:
            fields = self._check_reply(await self._fetch(path, body), sign_type,
                                       sent.get("appid") or self.appid)
            outcome, level = "success", logging.INFO
            return fields
        except WeChatError as exc:
            outcome = _OUTCOME_OF.get(type(exc), "protocol_error")
            level, detail = logging.WARNING, exc
            raise
        finally:
            elapsed = time.monotonic() - started
            logger.log(level, "wechat %s out_trade_no=%s outcome=%s elapsed=%.3fs %s",
                    api, ref, outcome, elapsed, detail)
            self._observe(api, elapsed, outcome)

    def _observe(self, api: str, elapsed: float, outcome: str) -> None:
        if self.observer is None:
            return
        try:
            self.observer(api, elapsed, outcome)
        except Exception:  # metrics must never break a payment call
            logger.exception("latency observer failed")

    async def _fetch(self, path: str, body: bytes) -> bytes:
        cert = {"ca_certs": self.ca_certs} if self.ca_certs else {}
        if path.startswith("/secapi/") and self.cert_file:
            # curl_httpclient refuses ssl_options; client_cert/client_key are its mTLS knobs.
            cert.update(client_cert=self.cert_file, client_key=self.key_file)
        request = HTTPRequest(
            self.base_url + path, method="POST", body=body,
            headers={"Content-Type": "text/xml; charset=utf-8"},
            request_timeout=self.timeout, connect_timeout=self.timeout,
            follow_redirects=False, **cert,
        )
        try:
            response = await self.http_client.fetch(request, raise_error=False)
        except Exception as exc:  # connection set-up errors some clients raise directly
            raise TransportError(f"network error: {type(exc).__name__}: {exc}") from exc
        if response.code == 599:  # Tornado's code for timeouts and connection failures
            raise TransportError(f"network error: {response.error}")
        if not 200 <= response.code < 300:
            raise TransportError(f"HTTP {response.code}", status=response.code)
        return response.body or b""

    def _check_reply(self, body: bytes, sign_type: str, appid: str) -> dict:
        try:
            fields = decode_xml(body)
        except XMLError as exc:
            raise ProtocolError(f"unparseable reply ({exc})") from None
        if fields.get("return_code") != "SUCCESS":
            msg = fields.get("return_msg") or fields.get("retmsg") or "no return_msg"
            raise ProtocolError(msg, fields)
        # Replies carry no sign_type: verify with the algorithm of our request (P2).
        if not verify_sign(fields, self._api_key, sign_type):
            raise ResponseSignatureError()
        # appid: the one the request named (a Mini Program order's is not the client's).
        for name, ours in (("appid", appid), ("mch_id", self.mch_id)):
            if name in fields and fields[name] != ours:
                raise ProtocolError(f"reply is for another {name}", fields)
        result = fields.get("result_code")
        if result is None:
            raise ProtocolError("reply lacks result_code", fields)
        if result != "SUCCESS":
            raise BusinessError(
                fields.get("err_code") or "UNKNOWN", fields.get("err_code_des", ""), fields
            )
        return fields
