"""Base handler of the v3 endpoints: WeChat's request checks (§17.3) and signed JSON replies."""

import asyncio
import json
import logging
import time
from typing import Any, Optional, Tuple

import tornado.web

from tornpay.protocol.v3.signing import parse_authorization, request_message, rsa_verify
from tornpay.simulator.state import SimulatorState
from tornpay.simulator.v3.keys import V3SimKeys

logger = logging.getLogger(__name__)

MAX_SKEW = 300
BAD_AUTH = "Http头Authorization值格式错误，请参考《微信支付商户REST API签名规则》"
BAD_SERIAL = "商户证书序列号有误。请使用签名私钥匹配的证书序列号"
STALE = "Http头Authorization中的timestamp与发起请求的时间不得超过5分钟"
BAD_SIGN = "签名错误，请检查后再试"
BAD_WECHATPAY_SERIAL = "平台证书序列号Wechatpay-Serial错误"


class V3Fail(Exception):
    """An error reply: HTTP status, ``code``, ``message`` and an optional ``detail``."""

    def __init__(self, status: int, code: str, message: str, detail: Optional[dict] = None):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.detail = status, code, message, detail


def param_error(field: str, value: Any, issue: str, location: str = "body") -> V3Fail:
    return V3Fail(400, "PARAM_ERROR", f"输入源“/{location}/{field}”映射到值字段失败：{issue}",
                  {"location": location, "field": field, "value": value})


def sim_keys(state: SimulatorState) -> V3SimKeys:
    """The v3 keys of this simulator: configured, else the shipped TEST-ONLY ones."""
    keys = state.config.v3
    if keys is None:
        keys = V3SimKeys.shipped(mchid=next(iter(state.config.merchants), "10000100"))
        for mchid in state.config.merchants:
            keys.apiv3_keys.setdefault(mchid, next(iter(keys.apiv3_keys.values())))
            keys.merchant_keys.setdefault(mchid, next(iter(keys.merchant_keys.values())))
        state.config.v3 = keys
    return keys


class V3ApiHandler(tornado.web.RequestHandler):
    """Subclasses set ``endpoint`` and implement ``handle(mchid, *path_args)``."""

    endpoint = ""

    def initialize(self, state: SimulatorState) -> None:
        self.state = state
        self.keys = sim_keys(state)
        self.body_json: dict = {}

    def check_xsrf_cookie(self) -> None:
        """Server-to-server API: authenticated by the Authorization signature."""

    async def get(self, *args) -> None:
        await self._serve(args)

    async def post(self, *args) -> None:
        await self._serve(args)

    async def _serve(self, args) -> None:
        faults = self.state.faults
        delay = faults.latency(self.endpoint)
        if delay:
            await asyncio.sleep(delay)
        try:
            mchid = self.authenticate()
            if faults.fire("systemerror", self.endpoint):
                raise V3Fail(500, "SYSTEM_ERROR", "系统错误")
            status, payload = await self.handle(mchid, *args)
        except V3Fail as exc:
            logger.info("simulator v3 %s: %s", self.endpoint, exc)
            self.send_error_json(exc)
            return
        self.send_json(status, payload)

    # -- §17.3 steps 2-7 ----------------------------------------------------
    def authenticate(self) -> str:
        items = parse_authorization(self.request.headers.get("Authorization"))
        if items is None:
            raise V3Fail(401, "SIGN_ERROR", BAD_AUTH)
        mchid = items["mchid"]
        if mchid not in self.keys.merchant_keys:
            raise V3Fail(400, "MCH_NOT_EXISTS", "商户号不存在")
        public = self.keys.merchant_key(mchid, items["serial_no"])
        if public is None:
            raise V3Fail(401, "SIGN_ERROR", BAD_SERIAL)
        stamp = items["timestamp"]
        if not stamp.isdigit() or abs(time.time() - int(stamp)) > MAX_SKEW:
            raise V3Fail(401, "SIGN_ERROR", STALE)
        body = self.request.body or b""
        # The raw request-target, still percent-encoded, and the raw body bytes (P1, P3).
        message = request_message(self.request.method, self.request.uri, stamp,
                                  items["nonce_str"], body)
        if not rsa_verify(public, message, items["signature"]):
            raise V3Fail(401, "SIGN_ERROR", BAD_SIGN, {
                "detail": {"issue": "sign not match"}, "field": "signature",
                "location": "authorization", "sign_information": {
                    "method": self.request.method, "url": self.request.uri,
                    "sign_message_length": len(message),
                    "truncated_sign_message": message[:100].decode("utf-8", "replace")}})
        serial = self.request.headers.get("Wechatpay-Serial")
        if serial and serial not in (self.keys.pub_key_id, self.keys.platform_serial):
            raise V3Fail(400, "PARAM_ERROR", BAD_WECHATPAY_SERIAL)
        if self.request.method == "POST":
            self.body_json = self._json_body(body, mchid)
        return mchid

    def _json_body(self, body: bytes, mchid: str) -> dict:
        try:
            data = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise V3Fail(400, "PARAM_ERROR", "请求体不是合法的JSON") from None
        if not isinstance(data, dict):
            raise V3Fail(400, "PARAM_ERROR", "请求体必须是JSON对象")
        if "null" in body.decode("utf-8") and _has_null(data):
            raise V3Fail(400, "PARAM_ERROR", "请求参数不能为null")
        if "mchid" in data and data["mchid"] != mchid:
            raise V3Fail(400, "INVALID_REQUEST", "mchid不匹配")
        return data

    # -- replies ------------------------------------------------------------
    def _request_id(self, ok: bool) -> str:
        return self.state.nonce().upper() + ("-0" if ok else "-268443699")

    def send_json(self, status: int, payload: Optional[dict]) -> None:
        faults = self.state.faults
        if faults.fire("reply_non_xml", self.endpoint):
            self.set_status(502)
            self.set_header("Content-Type", "text/html; charset=utf-8")
            self.finish("<html><body><h1>502 Bad Gateway</h1></body></html>")
            return
        body = b"" if payload is None else json.dumps(
            payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Request-ID", self._request_id(True))
        if not faults.fire("reply_unsigned", self.endpoint):
            signature = None
            if faults.fire("reply_bad_sign", self.endpoint):
                signature = self.keys.sign_headers(b"tampered")["Wechatpay-Signature"]
            for name, value in self.keys.sign_headers(body, signature=signature).items():
                self.set_header(name, value)
        if body:
            self.write(body)
        self.finish()

    def send_error_json(self, exc: V3Fail) -> None:
        payload = {"code": exc.code, "message": exc.message}
        if exc.detail:
            payload["detail"] = exc.detail
        self.set_status(exc.status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Request-ID", self._request_id(False))
        self.finish(json.dumps(payload, separators=(",", ":"), ensure_ascii=False))


def _has_null(value) -> bool:
    if value is None:
        return True
    if isinstance(value, dict):
        return any(_has_null(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_null(v) for v in value)
    return False
