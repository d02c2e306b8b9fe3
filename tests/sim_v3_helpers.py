"""Helpers for the v3 simulator tests: a signing test client and a notify receiver with headers."""

import json
import time
from typing import List, Optional, Tuple

import tornado.web

from tornpay.protocol.ids import nonce_str
from tornpay.protocol.v3.keys import load_private_key, load_public_key
from tornpay.protocol.v3.signing import authorization
from tornpay.simulator.v3.keys import (TEST_APIV3_KEY, TEST_MERCHANT_SERIAL, TEST_PUB_KEY_ID,
                                       TESTCERT_DIR)

MERCHANT_KEY_FILE = f"{TESTCERT_DIR}/TEST-ONLY-merchant-10000100-key.pem"
PUBLIC_KEY_FILE = f"{TESTCERT_DIR}/TEST-ONLY-wechatpay-public-key.pem"
PLATFORM_CERT_FILE = f"{TESTCERT_DIR}/TEST-ONLY-platform-cert.pem"
MERCHANT_KEY = load_private_key(MERCHANT_KEY_FILE)
WECHATPAY_PUBLIC = load_public_key(PUBLIC_KEY_FILE)
__all__ = ["TEST_APIV3_KEY", "TEST_MERCHANT_SERIAL", "TEST_PUB_KEY_ID"]


class HeaderBox:
    """Notifies received: (path name, headers dict, raw body); replies 204 unless told."""

    def __init__(self):
        self.received: List[Tuple[str, dict, bytes]] = []
        self.status = 204


class HeaderReceiver(tornado.web.RequestHandler):
    def initialize(self, box: HeaderBox) -> None:
        self.box = box

    def check_xsrf_cookie(self) -> None:
        """A stand-in notify endpoint."""

    def post(self, name: str) -> None:
        self.box.received.append((name, dict(self.request.headers), self.request.body))
        self.set_status(self.box.status)
        if self.box.status != 204:
            self.finish(b'{"code":"FAIL","message":"test"}')


async def v3_call(http_client, base: str, method: str, target: str, data=None,
                  key=MERCHANT_KEY, serial: str = TEST_MERCHANT_SERIAL,
                  stamp: Optional[int] = None, headers: Optional[dict] = None,
                  prefix: str = ""):
    """A signed v3 request to the simulator; returns (status, json-or-None, response)."""
    body = b"" if data is None else json.dumps(data, separators=(",", ":"),
                                               ensure_ascii=False).encode()
    stamp = str(int(time.time()) if stamp is None else stamp)
    auth = authorization("10000100", serial, key, method, prefix + target, stamp, nonce_str(),
                         body)
    all_headers = {"Authorization": auth, "Content-Type": "application/json",
                   "Accept": "application/json"}
    all_headers.update(headers or {})
    response = await http_client.fetch(base + target, method=method,
                                       body=body if method == "POST" else None,
                                       headers=all_headers, raise_error=False)
    parsed = json.loads(response.body) if response.body and response.headers.get(
        "Content-Type", "").startswith("application/json") else None
    return response.code, parsed, response
