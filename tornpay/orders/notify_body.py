"""A notify body: v2 XML (signature checked with the order) or v3 JSON (the gateway opens it)."""

from typing import Optional, Tuple

from tornpay.gateway.base import NotifyRefused
from tornpay.interfaces import ServingContext
from tornpay.protocol.xmlcodec import MAX_XML_BYTES, XMLError, decode_xml


class Refusal(Exception):
    """A notify that fails a check: nothing changes, WeChat gets FAIL with ``reply``."""

    def __init__(self, reason: str, reply: str = "", out_trade_no: Optional[str] = None,
                 alerted: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.reply = reply or reason
        self.out_trade_no = out_trade_no
        self.signed = False  # set once the notify's signature checked out
        self.alerted = alerted


def is_v3_body(body: bytes) -> bool:
    """v2 notifies are XML, v3 ones JSON: the body tells them apart (SPEC §10)."""
    return body.lstrip()[:1] == b"{"


def decode_body(ctx: ServingContext, body: bytes, headers) -> Tuple[dict, str]:
    """The notify's fields (neutral, v2 names) and the generation that sent it."""
    if len(body) > MAX_XML_BYTES:
        raise Refusal(f"body of {len(body)} bytes is over {MAX_XML_BYTES}", "body too large")
    if is_v3_body(body):
        gateway = ctx.gateways.get("v3")
        if gateway is None:
            raise Refusal("a v3 notify but API v3 is not configured", "API v3 not configured")
        try:
            # Verified over the exact bytes received, then decrypted (v3 reference §5, §6).
            return gateway.decode_pay_notify(headers, body), "v3"
        except NotifyRefused as exc:
            raise Refusal(exc.reason, exc.reply) from None
    try:
        return decode_xml(body), "v2"
    except XMLError as exc:
        raise Refusal(f"unacceptable XML: {exc}", "invalid XML") from None
