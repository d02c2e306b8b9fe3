"""WECHATPAY2-SHA256-RSA2048: request messages, the Authorization header and the paySign (§4, §8)."""

import base64
import re
from typing import Dict, Optional

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

SCHEME = "WECHATPAY2-SHA256-RSA2048"
AUTH_ITEMS = ("mchid", "nonce_str", "timestamp", "serial_no", "signature")
_ITEM = re.compile(r'\s*([a-z_]+)="([^"]*)"\s*')


def request_message(method: str, url: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    """``METHOD\\nURL\\nts\\nnonce\\nbody\\n``; ``url`` is path + query exactly as sent (§4.2)."""
    head = f"{method.upper()}\n{url}\n{timestamp}\n{nonce}\n".encode("utf-8")
    return head + body + b"\n"


def reply_message(timestamp: str, nonce: str, body: bytes) -> bytes:
    """``ts\\nnonce\\nbody\\n`` over the raw bytes received (§5.2, P1)."""
    return f"{timestamp}\n{nonce}\n".encode("utf-8") + body + b"\n"


def pay_message(appid: str, timestamp: str, nonce: str, package: str) -> bytes:
    """The four lines of the JSAPI paySign; ``package`` keeps its ``prepay_id=`` (§8.1, P16)."""
    return f"{appid}\n{timestamp}\n{nonce}\n{package}\n".encode("utf-8")


def rsa_sign(private_key, message: bytes) -> str:
    """Base64 RSASSA-PKCS1-v1_5/SHA-256, one line (344 characters for RSA-2048)."""
    raw = private_key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(raw).decode("ascii")


def rsa_verify(public_key, message: bytes, signature: str) -> bool:
    """True only for a valid signature; malformed Base64 (e.g. a SIGNTEST probe) is False."""
    try:
        raw = base64.b64decode(signature.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        return False
    try:
        public_key.verify(raw, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def authorization(mchid: str, serial_no: str, private_key, method: str, url: str,
                  timestamp: str, nonce: str, body: bytes) -> str:
    """The full ``Authorization`` header value for one request."""
    signature = rsa_sign(private_key, request_message(method, url, timestamp, nonce, body))
    return (f'{SCHEME} mchid="{mchid}",nonce_str="{nonce}",signature="{signature}",'
            f'timestamp="{timestamp}",serial_no="{serial_no}"')


def parse_authorization(value: Optional[str]) -> Optional[Dict[str, str]]:
    """The five items of an ``Authorization`` header (any order), or None when malformed."""
    if not value or not value.startswith(SCHEME + " "):
        return None
    items: Dict[str, str] = {}
    for part in value[len(SCHEME) + 1:].split(","):
        match = _ITEM.fullmatch(part)
        if match is None or match.group(1) in items:
            return None
        items[match.group(1)] = match.group(2)
    if sorted(items) != sorted(AUTH_ITEMS) or not all(items.values()):
        return None
    return items


def pay_sign(private_key, appid: str, timestamp: str, nonce: str, package: str) -> str:
    return rsa_sign(private_key, pay_message(appid, timestamp, nonce, package))
