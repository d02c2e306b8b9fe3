"""Console sessions: a signed, HttpOnly, SameSite=Strict cookie that carries its own expiry."""

import json
import time
from typing import Any, Optional

import tornado.web

from tornpay.console.passwords import fingerprint
from tornpay.storage.opsmodels import Operator

COOKIE = "tornpay_admin"


def make_value(secret: str, operator: Operator, minutes: int,
               now: Optional[float] = None) -> str:
    """The signed cookie value naming ``operator`` until ``minutes`` from now."""
    payload = {"op": operator.name, "fp": fingerprint(operator),
               "exp": int((now or time.time()) + minutes * 60)}
    return tornado.web.create_signed_value(secret, COOKIE, json.dumps(payload)).decode("ascii")


def read_value(secret: str, raw: Optional[str], now: Optional[float] = None) -> Optional[Any]:
    """The Operator a cookie value names, when the signature, expiry and password still hold."""
    if not raw:
        return None
    # The expiry inside the signed payload is what counts; max_age_days only
    # bounds how old a signature Tornado accepts at all.
    value = tornado.web.decode_signed_value(secret, COOKIE, raw, max_age_days=2)
    if value is None:
        return None
    try:
        payload = json.loads(value)
        name, fp, exp = str(payload["op"]), str(payload["fp"]), int(payload["exp"])
    except (ValueError, KeyError, TypeError):
        return None
    if exp <= (now or time.time()):
        return None
    operator = Operator.get_or_none(Operator.name == name)
    if operator is None or fingerprint(operator) != fp:
        return None
    return operator
