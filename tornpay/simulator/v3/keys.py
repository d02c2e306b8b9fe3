"""The simulator's v3 keys: merchants' certificates by serial, WeChat Pay's signing keys, mode."""

import os
import time
from dataclasses import dataclass, field
from typing import Dict, Optional

from tornpay.protocol.ids import nonce_str
from tornpay.protocol.v3.keys import (load_certificate, load_private_key, public_pem, same_serial,
                                      serial_hex)
from tornpay.protocol.v3.signing import SCHEME, reply_message, rsa_sign

TESTCERT_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            "testcerts")
TEST_APIV3_KEY = "tornpay-simulator-apiv3-key-0032"
TEST_PUB_KEY_ID = "PUB_KEY_ID_0110000100202601010000000001"
TEST_MERCHANT_SERIAL = "7E57000000000000000000000000000010000100"
MODES = ("public_key", "certificate")


def _test_file(name: str) -> str:
    return os.path.join(TESTCERT_DIR, name)


@dataclass
class V3SimKeys:
    """What WeChat knows for v3: APIv3 keys and API certificates per merchant, its own keys."""

    apiv3_keys: Dict[str, str] = field(default_factory=dict)  # mchid -> APIv3 key
    merchant_keys: Dict[str, Dict[str, object]] = field(default_factory=dict)  # mchid -> serial
    mode: str = "public_key"
    pub_key_id: str = TEST_PUB_KEY_ID
    wechatpay_key: object = None
    platform_key: object = None
    platform_cert_pem: bytes = b""
    platform_serial: str = ""
    clock: object = time.time  # signature timestamps use the real clock, not the test clock

    @classmethod
    def shipped(cls, mchid: str = "10000100", apiv3_key: str = TEST_APIV3_KEY,
                merchant_public=None, merchant_serial: str = TEST_MERCHANT_SERIAL,
                mode: str = "public_key") -> "V3SimKeys":
        """The TEST-ONLY WeChat keys; the merchant's public key defaults to the shipped one."""
        if merchant_public is None:
            cert = load_certificate(_test_file("TEST-ONLY-merchant-10000100-cert.pem"))
            merchant_public = cert.public_key()
        platform = load_certificate(_test_file("TEST-ONLY-platform-cert.pem"))
        from cryptography.hazmat.primitives import serialization
        return cls(
            apiv3_keys={mchid: apiv3_key},
            merchant_keys={mchid: {merchant_serial.upper(): merchant_public}},
            mode=mode,
            wechatpay_key=load_private_key(_test_file("TEST-ONLY-wechatpay-private-key.pem")),
            platform_key=load_private_key(_test_file("TEST-ONLY-platform-key.pem")),
            platform_cert_pem=platform.public_bytes(serialization.Encoding.PEM),
            platform_serial=serial_hex(platform),
        )

    def merchant_key(self, mchid: str, serial: str):
        for known, key in self.merchant_keys.get(mchid, {}).items():
            if same_serial(known, serial):
                return key
        return None

    def wechatpay_public_pem(self) -> bytes:
        return public_pem(self.wechatpay_key)

    def signer(self, request_serial: str = ""):
        """(serial, private key) a reply or notify is signed with in the current mode."""
        if self.mode == "public_key":
            return self.pub_key_id, self.wechatpay_key
        return self.platform_serial, self.platform_key

    def sign_headers(self, body: bytes, serial: Optional[str] = None, key=None,
                     timestamp: Optional[int] = None, signature: Optional[str] = None) -> dict:
        """The five Wechatpay-* headers over ``body`` (tests override any of them)."""
        default_serial, default_key = self.signer()
        serial = serial or default_serial
        stamp = str(int(self.clock()) if timestamp is None else timestamp)
        nonce = nonce_str()
        if signature is None:
            signature = rsa_sign(key or default_key, reply_message(stamp, nonce, body))
        return {"Wechatpay-Timestamp": stamp, "Wechatpay-Nonce": nonce,
                "Wechatpay-Signature": signature, "Wechatpay-Serial": serial,
                "Wechatpay-Signature-Type": SCHEME}


def keys_from_settings(settings) -> V3SimKeys:
    """WeChat's v3 view of the configured merchant: its APIv3 key and API certificate.

    The merchant's public key comes from wechat.cert_file when it is an RSA
    certificate, else from wechat.private_key_file (what WeChat would hold for
    that key); the mode follows whether the merchant configured a public key.
    Without usable v3 settings the shipped TEST-ONLY keys are used.
    """
    from tornpay.gateway.v3shipped import resolve_path
    w = settings.wechat
    mode = "public_key" if getattr(w, "wechatpay_public_key_id", "") else "certificate"
    public, serial = None, getattr(w, "cert_serial_no", "") or TEST_MERCHANT_SERIAL
    try:
        if getattr(w, "private_key_file", ""):
            public = load_private_key(resolve_path(w.private_key_file)).public_key()
    except ValueError:
        public = None
    apiv3 = getattr(w, "apiv3_key", "") or TEST_APIV3_KEY
    if len(apiv3.encode("utf-8")) != 32:
        apiv3 = TEST_APIV3_KEY
    keys = V3SimKeys.shipped(mchid=w.mch_id, apiv3_key=apiv3, merchant_public=public,
                             merchant_serial=serial, mode=mode)
    if getattr(w, "wechatpay_public_key_id", ""):
        keys.pub_key_id = w.wechatpay_public_key_id
    return keys
