"""WeChat Pay v2 signatures (MD5 and HMAC-SHA256), made and checked in constant time."""

import hashlib
import hmac
from typing import Mapping, Optional

MD5 = "MD5"
HMAC_SHA256 = "HMAC-SHA256"
SIGN_TYPES = (MD5, HMAC_SHA256)


class UnknownSignType(ValueError):
    """The sign type is neither MD5 nor HMAC-SHA256."""


def signing_string(params: Mapping[str, object], api_key: str) -> str:
    """Return WeChat's stringSignTemp: sorted name=value pairs plus ``&key=``.

    Values are signed as strings (an int 0 is kept as "0"); empty values,
    ``None`` and ``sign`` itself are skipped (reference §3.1, §3.5). Never log
    the result: it ends with the API key.
    """
    pairs = []
    for name in sorted(params):
        if name == "sign":
            continue
        value = params[name]
        if value is None:
            continue
        text = str(value)
        if text == "":
            continue
        pairs.append(f"{name}={text}")
    pairs.append(f"key={api_key}")
    return "&".join(pairs)


def make_sign(params: Mapping[str, object], api_key: str, sign_type: str = MD5) -> str:
    """Return the upper-case hex signature of ``params`` with ``sign_type``."""
    data = signing_string(params, api_key).encode("utf-8")
    if sign_type == MD5:
        return hashlib.md5(data).hexdigest().upper()
    if sign_type == HMAC_SHA256:
        return hmac.new(api_key.encode("utf-8"), data, hashlib.sha256).hexdigest().upper()
    raise UnknownSignType(f"unknown sign type {sign_type!r}")


def sign_params(params: Mapping[str, object], api_key: str, sign_type: str = MD5) -> dict:
    """Return a copy of ``params`` as strings with ``sign`` added (and sign_type if not MD5)."""
    out = {k: str(v) for k, v in params.items() if v is not None and k != "sign"}
    if sign_type != MD5:
        out["sign_type"] = sign_type
    out["sign"] = make_sign(out, api_key, sign_type)
    return out


def verify_sign(params: Mapping[str, object], api_key: str, sign_type: str) -> bool:
    """Check ``params['sign']`` over every other received field, in constant time.

    ``sign_type`` must be decided by the caller (the order's sign type, not the
    message's claim: an HMAC order's notify usually carries no sign_type).
    """
    received = params.get("sign")
    if not isinstance(received, str) or not received:
        return False
    try:
        expected = make_sign(params, api_key, sign_type)
    except UnknownSignType:
        return False
    # compare_digest needs equal-type operands; ASCII-encode so a non-ASCII
    # forged sign is a mismatch, not a TypeError.
    return hmac.compare_digest(
        expected.encode("ascii"), received.encode("utf-8", "surrogateescape")
    )


def guess_sign_type(params: Mapping[str, object], default: Optional[str] = None) -> str:
    """Pick the algorithm for a message of unknown origin: sign_type, else default, else length."""
    declared = params.get("sign_type")
    if declared in SIGN_TYPES:
        return str(declared)
    if default in SIGN_TYPES:
        return str(default)
    sign = params.get("sign") or ""
    return HMAC_SHA256 if len(str(sign)) == 64 else MD5
