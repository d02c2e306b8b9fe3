"""Shared request pipeline of the XML pay API: transport checks, merchant, signature, replies."""

import asyncio
import logging
from dataclasses import dataclass
from typing import Dict, Optional

import tornado.web

from tornpay.protocol.sign import SIGN_TYPES, make_sign, verify_sign
from tornpay.protocol.xmlcodec import EMPTY, NOT_UTF8, XMLError, decode_xml, encode_xml
from tornpay.simulator.clientcert import check_cert_pair, check_peer_cert
from tornpay.simulator.state import SimulatorError, SimulatorState

logger = logging.getLogger(__name__)

# Layer 1 of WeChat's checks (reference §16.3): these two have their own answers.
LAYER1_FAILS = {EMPTY: "POST_DATA_EMPTY: post数据为空", NOT_UTF8: "NOT_UTF8: 编码格式错误，请使用UTF-8"}
SANDBOX_BAD_SIGN = "沙箱验证签名失败，请确认沙箱签名key是否正确（通过getsignkey调用生成）"


class ProtocolFail(Exception):
    """A layer-1 refusal: return_code FAIL with this return_msg, unsigned."""


@dataclass
class Call:
    """One authenticated API call: its fields, merchant key and the request's sign type."""

    params: Dict[str, str]
    mch_id: str
    appid: str
    key: str
    sign_type: str


class PayApiHandler(tornado.web.RequestHandler):
    """Base of every XML endpoint; subclasses set `endpoint` and define `async handle(call)`.

    (GetSignKeyHandler, whose reply is unsigned and has no result_code, replaces
    ``post`` instead.)
    """

    endpoint = ""
    needs_appid = True
    needs_client_cert = False

    def initialize(self, state: SimulatorState, sandbox: bool = False) -> None:
        self.state = state
        self.sandbox = sandbox

    def check_xsrf_cookie(self) -> None:
        """Machine-to-machine XML API: no browser cookies involved."""

    async def get(self, *args) -> None:
        self.fail("REQUIRE_POST_METHOD: 请使用POST方法")

    async def post(self, *args) -> None:
        delay = self.state.faults.latency(self.endpoint)
        if delay:
            await asyncio.sleep(delay)
        call = None
        try:
            call = self.authenticate()
            if self.state.faults.fire("systemerror", self.endpoint):
                raise SimulatorError("SYSTEMERROR", "系统超时，请稍后重试")
            payload = await self.handle(call)
        except ProtocolFail as exc:
            self.fail(str(exc))
        except SimulatorError as exc:
            logger.info("simulator: %s -> %s", self.endpoint, exc.err_code)
            call = getattr(exc, "call", None) or call
            self.reply(call, {"result_code": "FAIL", "err_code": exc.err_code,
                              "err_code_des": exc.err_code_des})
        else:
            self.reply(call, dict({"result_code": "SUCCESS"}, **payload))

    # -- checks, in WeChat's order (reference §16.3) ------------------------
    def authenticate(self) -> Call:
        try:
            params = decode_xml(self.request.body or b"")
        except XMLError as exc:
            raise ProtocolFail(LAYER1_FAILS.get(exc.reason)
                               or f"XML_FORMAT_ERROR: XML格式错误 ({exc})") from None
        names = (["appid"] if self.needs_appid else []) + ["mch_id", "nonce_str", "sign"]
        for name in names:
            if not params.get(name):
                raise ProtocolFail(f"缺少参数{name}")
        mch_id = params["mch_id"]
        merchant = self.state.config.merchant(mch_id)
        if merchant is None:
            raise ProtocolFail("MCHID_NOT_EXIST: 商户号mch_id不存在")
        sign_type = params.get("sign_type") or "MD5"
        if sign_type not in SIGN_TYPES:
            raise ProtocolFail("sign_type参数错误，仅支持MD5和HMAC-SHA256")
        key = self.state.sandbox_key(mch_id) if self.sandbox else merchant.api_key
        # The sandbox's refund is /sandboxnew/pay/refund, without secapi (reference §14).
        if self.needs_client_cert and not self.sandbox and self.state.config.require_client_cert:
            refusal = self._cert_refusal(mch_id)
            if refusal:
                raise ProtocolFail(refusal)
        if not verify_sign(params, key, sign_type):
            # The sandbox names its own key (reference §14, observed text).
            raise ProtocolFail(SANDBOX_BAD_SIGN if self.sandbox else "签名错误")
        call = Call(params, mch_id, params.get("appid", ""), key, sign_type)
        if self.needs_appid and call.appid not in merchant.appids:
            # Signed business reply: the merchant is known, only the binding is wrong.
            raise _Unbound(call)
        return call

    def _cert_refusal(self, mch_id: str) -> Optional[str]:
        """Why WeChat's mutual TLS would refuse this call, or None (see clientcert)."""
        try:
            peer = self.request.get_ssl_certificate()
            over_tls = True
        except Exception:  # plain-HTTP connection: no certificate can be presented
            peer, over_tls = None, False
        if over_tls:
            return check_peer_cert(peer, mch_id)
        config = self.state.config
        return check_cert_pair(config.client_cert_file, config.client_key_file, mch_id)

    # -- replies ------------------------------------------------------------
    def authenticated(self) -> Optional[Call]:
        """The authenticated call, or None once FAIL has been answered."""
        try:
            return self.authenticate()
        except ProtocolFail as exc:
            self.fail(str(exc))
            return None

    def fail(self, return_msg: str) -> None:
        logger.info("simulator: %s layer-1 FAIL: %s", self.endpoint, return_msg)
        self._send({"return_code": "FAIL", "return_msg": return_msg}, signed=False)

    def reply(self, call: Call, payload: Dict[str, str]) -> None:
        fields = {"return_code": "SUCCESS", "return_msg": "OK"}
        if call.appid:
            fields["appid"] = call.appid
        fields["mch_id"] = call.mch_id
        fields["nonce_str"] = self.state.nonce()
        fields.update({k: str(v) for k, v in payload.items() if v is not None})
        if self.sandbox:
            fields["device_info"] = "sandbox"  # sandbox replies say so (reference §14)
        self._send(fields, signed=True, call=call)

    def _send(self, fields: Dict[str, str], signed: bool, call: Optional[Call] = None) -> None:
        faults = self.state.faults
        if faults.fire("reply_non_xml", self.endpoint):
            self.set_header("Content-Type", "text/html; charset=utf-8")
            self.finish("<html><body><h1>502 Bad Gateway</h1></body></html>")
            return
        if signed and call is not None:
            # Signed with the request's sign type; no sign_type element (reference §16.3).
            if faults.fire("reply_unsigned", self.endpoint):
                pass
            elif faults.fire("reply_bad_sign", self.endpoint):
                fields["sign"] = make_sign(fields, "0" * 32, call.sign_type)
            else:
                fields["sign"] = make_sign(fields, call.key, call.sign_type)
        self.set_header("Content-Type", "text/xml; charset=utf-8")
        self.finish(encode_xml(fields))


class _Unbound(SimulatorError):
    def __init__(self, call: Call):
        super().__init__("APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配")
        self.call = call
