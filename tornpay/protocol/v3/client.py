"""Async client for WeChat Pay API v3: signs requests, verifies every 2xx reply, typed errors."""

import json
import logging
import time
from dataclasses import dataclass
from typing import Callable, Optional
from urllib.parse import quote, urlsplit

from tornado.httpclient import HTTPRequest

from tornpay.protocol.errors import (BusinessError, ProtocolError, ResponseSignatureError,
                                     TransportError, WeChatError)
from tornpay.protocol.ids import nonce_str
from tornpay.protocol.jsonobject import json_object
from tornpay.protocol.v3.certs import CERTIFICATES_PATH, verify_certificates_reply
from tornpay.protocol.v3.signing import authorization
from tornpay.protocol.v3.verify import VerifyError, WeChatPayKeys, verify_signed

logger = logging.getLogger(__name__)

# Refresh platform certificates at least this often (reference §3.2: < 12 h).
CERT_REFRESH_SECONDS = 6 * 3600
RETRYABLE_CODES = frozenset({"SYSTEM_ERROR", "SYSTEMERROR", "SERVICE_UNAVAILABLE",
                             "FREQUENCY_LIMITED", "RATELIMIT_EXCEEDED", "BANK_ERROR"})


class V3BusinessError(BusinessError):
    """A v3 error reply: HTTP status plus WeChat's ``code`` and ``message``."""

    def __init__(self, status: int, code: str, message: str = "", data: Optional[dict] = None):
        super().__init__(code, message, {})
        self.status = status
        self.data = dict(data or {})

    @property
    def retryable(self) -> bool:  # type: ignore[override]
        return self.status >= 500 or self.status == 429 or self.err_code in RETRYABLE_CODES


@dataclass
class V3Reply:
    status: int
    data: dict
    body: bytes


def dumps(obj) -> bytes:
    """Serialise once, compactly; these exact bytes are signed and sent (P2)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def path_id(value: str) -> str:
    """A path parameter percent-encoded the way it goes on the wire (P3)."""
    return quote(value, safe="")


class V3Client:
    """One merchant's v3 API on an injected (Curl)AsyncHTTPClient."""

    def __init__(self, *, mchid: str, serial_no: str, private_key, apiv3_key: str,
                 keys: WeChatPayKeys, base_url: str, http_client, timeout: float = 10,
                 observer: Optional[Callable[[str, float, str], None]] = None,
                 clock: Callable[[], float] = time.time):
        self.mchid = mchid
        self.serial_no = serial_no
        self._private_key = private_key
        self._apiv3_key = apiv3_key
        self.keys = keys
        self.base_url = base_url.rstrip("/")
        # A base URL with a path (a mounted simulator) is part of the signed request-target.
        self._base_path = urlsplit(self.base_url).path
        self.http_client = http_client
        self.timeout = timeout
        self.observer = observer
        self.clock = clock

    def __repr__(self) -> str:  # never show a key
        return f"V3Client(mchid={self.mchid!r}, base={self.base_url!r})"

    async def call(self, method: str, url: str, body: Optional[bytes] = None,
                   api: str = "") -> V3Reply:
        """Send one signed request (``url`` = path + encoded query); verify and decode the reply."""
        if self.keys.certificate_mode:
            await self.ensure_certificates()
        started = time.monotonic()
        outcome = "error"
        try:
            reply = await self._call(method, url, body)
            outcome = "success"
            return reply
        except WeChatError as exc:
            outcome = _outcome(exc)
            logger.warning("wechat v3 %s %s outcome=%s %s", method, url.split("?")[0], outcome, exc)
            raise
        finally:
            self._observe(api or url.split("?")[0].rsplit("/", 1)[-1], started, outcome)

    async def _call(self, method: str, url: str, body: Optional[bytes]) -> V3Reply:
        response = await self._fetch(method, url, body or b"")
        raw = response.body or b""
        if not 200 <= response.code < 300:
            raise _error_of(response.code, raw)
        try:
            verify_signed(self.keys, response.headers, raw, now=self.clock())
        except VerifyError as exc:
            if exc.reason != "unknown_serial" or not self.keys.certificate_mode:
                raise ResponseSignatureError(f"reply not verified ({exc})") from None
            await self.refresh_certificates()  # a rotated certificate: fetch once, retry
            try:
                verify_signed(self.keys, response.headers, raw, now=self.clock())
            except VerifyError as again:
                raise ResponseSignatureError(f"reply not verified ({again})") from None
        return V3Reply(response.code, _json_or_empty(raw), raw)

    async def _fetch(self, method: str, url: str, body: bytes, full_url: str = ""):
        stamp, nonce = str(int(self.clock())), nonce_str()
        target = url if full_url else self._base_path + url
        headers = {
            "Authorization": authorization(self.mchid, self.serial_no, self._private_key,
                                           method, target, stamp, nonce, body),
            "Accept": "application/json", "User-Agent": "tornpay",
        }
        serial = self.keys.request_serial()
        if serial:
            headers["Wechatpay-Serial"] = serial
        if method in ("POST", "PUT", "PATCH"):
            headers["Content-Type"] = "application/json"
        request = HTTPRequest(full_url or self.base_url + url, method=method,
                              body=body if method in ("POST", "PUT", "PATCH") else None,
                              headers=headers, request_timeout=self.timeout,
                              connect_timeout=self.timeout, follow_redirects=False)
        try:
            response = await self.http_client.fetch(request, raise_error=False)
        except Exception as exc:  # connection set-up errors some clients raise directly
            raise TransportError(f"network error: {type(exc).__name__}: {exc}") from exc
        if response.code == 599:
            raise TransportError(f"network error: {response.error}")
        return response

    async def ensure_certificates(self) -> None:
        fetched = self.keys.fetched_at
        if fetched is None or self.clock() - fetched >= CERT_REFRESH_SECONDS:
            await self.refresh_certificates()

    async def refresh_certificates(self) -> None:
        """Fetch, decrypt and verify /v3/certificates; keep every listed, drop expired ones."""
        response = await self._fetch("GET", CERTIFICATES_PATH, b"")
        raw = response.body or b""
        if not 200 <= response.code < 300:
            raise _error_of(response.code, raw)
        now = self.clock()
        try:
            certs = verify_certificates_reply(self.keys, self._apiv3_key, response.headers,
                                              raw, now)
        except VerifyError as exc:
            raise ResponseSignatureError(f"certificate list not verified ({exc})") from None
        self.keys.add(certs)
        self.keys.drop_expired(now)
        self.keys.fetched_at = now
        logger.info("wechat v3: %d platform certificate(s) loaded", len(certs))

    async def download(self, url: str) -> bytes:
        """GET a bill ``download_url`` (signed request, unsigned reply: the caller checks the hash)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ProtocolError("download_url is not an http(s) URL")
        target = parts.path + ("?" + parts.query if parts.query else "")
        response = await self._fetch("GET", target, b"", full_url=url)
        if not 200 <= response.code < 300:
            raise _error_of(response.code, response.body or b"")
        return response.body or b""

    def _observe(self, api: str, started: float, outcome: str) -> None:
        if self.observer is None:
            return
        try:
            self.observer(api, time.monotonic() - started, outcome)
        except Exception:  # metrics must never break a payment call
            logger.exception("latency observer failed")


def _json_or_empty(raw: bytes) -> dict:
    if not raw.strip():
        return {}  # 204 and empty 200: success without a body (P9)
    return json_object(raw, "reply", ProtocolError)


def _error_of(status: int, raw: bytes) -> WeChatError:
    try:
        data = json.loads(raw.decode("utf-8")) if raw else {}
    except (UnicodeDecodeError, ValueError):
        data = {}
    if not isinstance(data, dict) or not data.get("code"):
        return TransportError(f"HTTP {status}", status=status)
    message = data.get("message") if isinstance(data.get("message"), str) else ""
    return V3BusinessError(status, str(data["code"]), message[:200], data)


def _outcome(exc: WeChatError) -> str:
    if isinstance(exc, TransportError):
        return "transport_error"
    if isinstance(exc, ResponseSignatureError):
        return "signature_error"
    if isinstance(exc, BusinessError):
        return "business_error"
    return "protocol_error"
