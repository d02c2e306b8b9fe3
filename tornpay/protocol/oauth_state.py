"""The OAuth ``state`` token: which product a payer left for WeChat with, signed and bound.

Letters and digits only (WeChat's rule for ``state``): a timestamp, the
browser's nonce (its cookie), the hex product id and an HMAC over them, so a
state is refused when forged, old, or brought back by another browser.
"""

import binascii
import hashlib
import hmac
from typing import Optional

from tornpay.protocol.ids import nonce_str

STATE_MAX_AGE = 600  # seconds between leaving for WeChat and coming back
_NONCE_LEN, _TS_LEN, _MAC_LEN = 16, 10, 32


def make_state(secret: str, product_id: str, nonce: str, now: float) -> str:
    """``<ts><nonce><hex(product_id)><mac>``: letters and digits only, as WeChat wants."""
    ts = "%010d" % int(now)
    return ts + nonce + product_id.encode("utf-8").hex() + _mac(secret, ts, nonce, product_id)


def read_state(secret: str, state: str, nonce: str, now: float) -> str:
    """Return the product id ``state`` carries, or raise ValueError saying why it is refused."""
    if not state or len(state) > 128 or not state.isascii() or not state.isalnum():
        raise ValueError("missing or malformed state")
    ts, got_nonce = state[:_TS_LEN], state[_TS_LEN:_TS_LEN + _NONCE_LEN]
    body, mac = state[_TS_LEN + _NONCE_LEN:-_MAC_LEN], state[-_MAC_LEN:]
    try:
        product_id = binascii.unhexlify(body).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise ValueError("malformed state") from None
    if not ts.isdigit() or not hmac.compare_digest(mac, _mac(secret, ts, got_nonce, product_id)):
        raise ValueError("state signature invalid")
    if not 0 <= now - int(ts) <= STATE_MAX_AGE:
        raise ValueError("state expired")
    if not nonce or not hmac.compare_digest(got_nonce, nonce):
        raise ValueError("state belongs to another browser")
    return product_id


def _mac(secret: str, ts: str, nonce: str, product_id: str) -> str:
    msg = f"tornpay-oauth-state|{ts}|{nonce}|{product_id}".encode("utf-8")
    return hmac.new(secret.encode("utf-8"), msg, hashlib.sha256).hexdigest()[:_MAC_LEN]


def browser_nonce(current: Optional[str], length: int = _NONCE_LEN) -> str:
    """A browser's random id (OAuth nonce, payer id): its cookie's when well formed, else new."""
    if current and len(current) == length and current.isalnum():
        return current
    return nonce_str(length)
