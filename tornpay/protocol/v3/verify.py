"""Verifying WeChat Pay's signed replies and notifies: key chosen by Wechatpay-Serial (§3.5, §5)."""

import time
from dataclasses import dataclass
from typing import Dict, Iterable, List, Mapping, Optional

from tornpay.protocol.v3.signing import SCHEME, reply_message, rsa_verify

PROBE_PREFIX = "WECHATPAY/SIGNTEST/"
MAX_SKEW_SECONDS = 300
PUB_KEY_PREFIX = "PUB_KEY_ID_"
SIGNED_HEADERS = ("Wechatpay-Timestamp", "Wechatpay-Nonce", "Wechatpay-Signature",
                  "Wechatpay-Serial")


class VerifyError(Exception):
    """A reply or notify that must not be trusted; ``reason`` is a short stable word for logs."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class PlatformCert:
    """One WeChat Pay platform certificate: serial, RSA public key and validity (UTC epoch)."""

    serial_no: str
    public_key: object
    not_before: float
    not_after: float


class WeChatPayKeys:
    """The keys WeChat signs with: a public key (PUB_KEY_ID_...) and/or platform certificates."""

    def __init__(self, public_key=None, public_key_id: str = "",
                 certificates: Iterable[PlatformCert] = ()):
        self.public_key = public_key
        self.public_key_id = public_key_id
        self._certs: Dict[int, PlatformCert] = {}
        self.fetched_at: Optional[float] = None
        self.add(certificates)

    @property
    def certificate_mode(self) -> bool:
        return self.public_key is None

    def add(self, certificates: Iterable[PlatformCert]) -> None:
        for cert in certificates:
            self._certs[int(cert.serial_no, 16)] = cert

    def drop_expired(self, now: float) -> None:
        self._certs = {k: c for k, c in self._certs.items() if c.not_after > now}

    def certificates(self) -> List[PlatformCert]:
        return sorted(self._certs.values(), key=lambda c: c.not_after)

    def key_for(self, serial: str, now: Optional[float] = None):
        """The key named by ``serial``, or None (unknown id, unknown or expired certificate)."""
        if serial.startswith(PUB_KEY_PREFIX):
            if self.public_key is not None and serial == self.public_key_id:
                return self.public_key
            return None
        try:
            cert = self._certs.get(int(serial, 16))
        except ValueError:
            return None
        now = time.time() if now is None else now
        if cert is None or not cert.not_before <= now < cert.not_after:
            return None
        return cert.public_key

    def request_serial(self) -> str:
        """What requests send as ``Wechatpay-Serial``: the public key id, else the newest cert."""
        if self.public_key is not None:
            return self.public_key_id
        certs = self.certificates()
        return certs[-1].serial_no if certs else ""


def _header(headers: Mapping, name: str) -> str:
    value = headers.get(name)
    if value is None:  # a plain dict with other capitalisation
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value or ""


def verify_signed(keys: WeChatPayKeys, headers: Mapping, body: bytes,
                  now: Optional[float] = None, max_skew: float = MAX_SKEW_SECONDS) -> str:
    """Check a signed reply/notify over the raw ``body``; return the serial that signed it."""
    now = time.time() if now is None else now
    values = {name: _header(headers, name) for name in SIGNED_HEADERS}
    missing = [n for n, v in values.items() if not v]
    if missing:
        raise VerifyError("missing_headers", ", ".join(missing))
    sig_type = _header(headers, "Wechatpay-Signature-Type")
    if sig_type and sig_type != SCHEME:
        raise VerifyError("bad_signature_type", sig_type[:40])
    signature = values["Wechatpay-Signature"]
    if signature.startswith(PROBE_PREFIX):
        raise VerifyError("signature_probe", "WECHATPAY/SIGNTEST/ probe: not verified")
    stamp = values["Wechatpay-Timestamp"]
    if not (stamp.isascii() and stamp.isdigit()) or abs(now - int(stamp)) >= max_skew:
        raise VerifyError("stale_timestamp", f"Wechatpay-Timestamp {stamp[:20]} is more than "
                                             f"{int(max_skew)} s from now")
    serial = values["Wechatpay-Serial"]
    key = keys.key_for(serial, now)
    if key is None:
        raise VerifyError("unknown_serial", serial[:64])
    if not rsa_verify(key, reply_message(stamp, values["Wechatpay-Nonce"], body), signature):
        raise VerifyError("bad_signature", f"signature does not verify with {serial[:64]}")
    return serial
