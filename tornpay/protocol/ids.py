"""Random nonces and server-made order and refund numbers (``secrets``, WeChat's charset)."""

import re
import secrets
import string
import time

_ALPHANUM = string.ascii_letters + string.digits
# Merchant ids we make and accept: at most 32 of [A-Za-z0-9_-] (reference §2.4).
OUT_TRADE_NO_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")
OUT_REFUND_NO_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")


def nonce_str(length: int = 32) -> str:
    """Return a random nonce of letters and digits (WeChat allows at most 32)."""
    if not 1 <= length <= 32:
        raise ValueError("nonce length must be 1..32")
    # One urandom read per nonce rather than one per character (secrets.choice);
    # bytes >= 248 are dropped so every one of the 62 characters stays equally likely.
    chars = []
    while len(chars) < length:
        chars.extend(_ALPHANUM[b % 62] for b in secrets.token_bytes(length + 8) if b < 248)
    return "".join(chars[:length])


def _stamp() -> str:
    return time.strftime("%Y%m%d%H%M%S", time.gmtime())


def make_out_trade_no(prefix: str = "TP") -> str:
    """Return a unique, sortable merchant order number of 30 characters."""
    return f"{prefix}{_stamp()}{nonce_str(14)}"


def make_out_refund_no(prefix: str = "RF") -> str:
    """Return a unique merchant refund number of 30 characters."""
    return f"{prefix}{_stamp()}{nonce_str(14)}"


def is_valid_out_trade_no(value: object) -> bool:
    """True when ``value`` is a string WeChat and tornpay both accept as out_trade_no."""
    return isinstance(value, str) and bool(OUT_TRADE_NO_RE.fullmatch(value))


def is_valid_out_refund_no(value: object) -> bool:
    """True when ``value`` is an acceptable out_refund_no."""
    return isinstance(value, str) and bool(OUT_REFUND_NO_RE.fullmatch(value))
