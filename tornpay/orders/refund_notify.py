"""The refund-notify pipeline: open it (v2 req_info, v3 via the gateway), check, apply once.

The twin of orders/notify.py for /refund-notify; the handler only streams the
body in and writes the answer out.
"""

import logging
from typing import Optional, Tuple

import peewee

from tornpay.gateway.base import NotifyRefused
from tornpay.orders.notify import is_v3_body
from tornpay.interfaces import ServingContext
from tornpay.orders.refunds import RefundError, apply_refund_result
from tornpay.orders.transitions import FINAL_REFUND_STATES
from tornpay.protocol.refundcrypto import RefundDecryptError, decrypt_req_info
from tornpay.protocol.xmlcodec import MAX_XML_BYTES, XMLError, decode_xml
from tornpay.storage.db import database_proxy as db
from tornpay.storage.models import Notification, Order, Refund

logger = logging.getLogger(__name__)

ACCEPTED, DUPLICATE, REFUSED = "accepted", "duplicate", "refused"


class Refused(Exception):
    """A refund notify failing a check: nothing changes, WeChat gets FAIL with ``reply``."""

    def __init__(self, reason: str, reply: str, out_trade_no: Optional[str] = None):
        super().__init__(reason)
        self.reason, self.reply, self.out_trade_no = reason, reply, out_trade_no


def _record(out_trade_no: Optional[str], remote_ip: str, outcome: str, reason: str) -> None:
    Notification.create(kind="refund", out_trade_no=(out_trade_no or None) and out_trade_no[:64],
                        remote_ip=(remote_ip or "")[:64], outcome=outcome, reason=reason[:255])


def _decrypt(ctx: ServingContext, body: bytes) -> Tuple[dict, str]:
    """The checked, decrypted req_info fields of one notify body, and its outer appid."""
    if len(body) > MAX_XML_BYTES:
        raise Refused(f"body of {len(body)} bytes is over {MAX_XML_BYTES}", "body too large")
    try:
        fields = decode_xml(body)
    except XMLError as exc:
        raise Refused(f"unacceptable XML: {exc}", "invalid XML") from None
    if fields.get("return_code") != "SUCCESS":
        raise Refused(f"return_code {fields.get('return_code')!r}: {fields.get('return_msg')}",
                      "return_code is not SUCCESS")
    wechat = ctx.settings.wechat
    # Either of our appids here (cheap, before decrypting); _check then holds it to
    # the order's own: a Mini Program order's refunds are notified with its appid.
    if fields.get("appid") not in (wechat.appid, wechat.miniprogram_appid or wechat.appid):
        raise Refused(f"appid {fields.get('appid')!r} is not ours", "appid mismatch")
    if fields.get("mch_id") != wechat.mch_id:
        raise Refused(f"mch_id {fields.get('mch_id')!r} is not ours", "mch_id mismatch")
    # No outer signature exists: decrypting with our key is the authentication (§12.1).
    try:
        return decrypt_req_info(fields.get("req_info") or "", wechat.api_key), fields["appid"]
    except RefundDecryptError as exc:
        raise Refused(f"req_info: {exc}", "req_info decryption failed") from None


def _open_v3(ctx: ServingContext, headers, body: bytes) -> dict:
    """A v3 refund notify: verified, decrypted, our merchant (the neutral refund fields)."""
    gateway = ctx.gateways.get("v3")
    if gateway is None:
        raise Refused("a v3 refund notify but API v3 is not configured", "API v3 not configured")
    try:
        info = gateway.decode_refund_notify(headers, body)
    except NotifyRefused as exc:
        raise Refused(exc.reason, exc.reply) from None
    if info.get("mch_id") != ctx.settings.wechat.mch_id:
        raise Refused(f"mch_id {info.get('mch_id')!r} is not ours", "mch_id mismatch")
    return info


def _check(ctx: ServingContext, info: dict, generation: str = "v2",
           appid: Optional[str] = None) -> Refund:
    """The Refund row ``info`` is about, when ids, appid and amounts all match ours."""
    out_trade_no, out_refund_no = info.get("out_trade_no"), info.get("out_refund_no")
    refund = Refund.get_or_none(Refund.out_refund_no == (out_refund_no or ""))
    if refund is None or refund.out_trade_no != out_trade_no:
        raise Refused(f"unknown refund {out_refund_no!r} of order {out_trade_no!r}",
                      "refund not found", out_trade_no)
    order = Order.get_by_id(out_trade_no)
    if order.api_version != generation:
        raise Refused(f"a {generation} refund notify for a {order.api_version} order",
                      "wrong API generation", out_trade_no)
    # A v2 notify names an appid outside req_info; v3's resource names none.
    if appid is not None and appid != (order.appid or ctx.settings.wechat.appid):
        raise Refused(f"appid {appid!r} is not the order's", "appid mismatch", out_trade_no)
    if (str(info.get("refund_fee")) != str(refund.refund_fee)
            or str(info.get("total_fee")) != str(order.total_fee)):
        logger.error("ALERT refund %s: notify amounts refund_fee=%r total_fee=%r differ from ours "
                     "(%d of %d); not applied", out_refund_no, info.get("refund_fee"),
                     info.get("total_fee"), refund.refund_fee, order.total_fee)
        raise Refused("amount mismatch", "refund_fee or total_fee mismatch", out_trade_no)
    if info.get("refund_status") not in FINAL_REFUND_STATES:
        raise Refused(f"refund_status {info.get('refund_status')!r}", "unknown refund_status",
                      out_trade_no)
    return refund


def process_refund_notify(ctx: ServingContext, body: bytes, remote_ip: str,
                          headers=None) -> Tuple[bool, str, bool]:
    """Check and apply one refund notify (XML v2 or JSON v3); return ``(ok, msg, changed)``."""
    info: dict = {}
    try:
        appid = None
        if is_v3_body(body):
            info, generation = _open_v3(ctx, headers or {}, body), "v3"
        else:
            (info, appid), generation = _decrypt(ctx, body), "v2"
        refund = _check(ctx, info, generation, appid)
        status = info["refund_status"]
        with db.atomic():
            won = apply_refund_result(
                refund.out_refund_no, status, hooks=ctx.hooks, refund_id=info.get("refund_id"),
                success_time=info.get("success_time"), refund_fee=info.get("refund_fee"),
                settlement_refund_fee=info.get("settlement_refund_fee"),
                refund_recv_accout=info.get("refund_recv_accout"))
            if won:
                _record(refund.out_trade_no, remote_ip, ACCEPTED, f"refund {status}")
            else:
                now = Refund.get_by_id(refund.out_refund_no).state
                if now != status:
                    # WeChat's verdict is final: ours disagrees, a person must look.
                    logger.error("ALERT refund %s is %s here but WeChat reports %s",
                                 refund.out_refund_no, now, status)
                _record(refund.out_trade_no, remote_ip, DUPLICATE, f"refund already {now}")
    except (Refused, RefundError) as exc:
        refused = exc if isinstance(exc, Refused) else Refused(str(exc), "not applied")
        out_trade_no = refused.out_trade_no or info.get("out_trade_no")
        # req_info decrypted with our key is WeChat's word; anything before that is not.
        ctx.refusals.refused("refund", remote_ip, refused.reply, refused.reason,
                             claimed=out_trade_no if isinstance(out_trade_no, str) else None,
                             verified=out_trade_no if info and isinstance(out_trade_no, str)
                             else None, record=_record)
        return False, refused.reply, False
    except peewee.PeeweeException:
        logger.exception("refund notify: database error; answering FAIL so WeChat retries")
        return False, "temporary failure, retry", False
    if not won:
        logger.info("refund notify for %s: duplicate, nothing changed", refund.out_refund_no)
    return True, "OK", won


async def handle_refund_notify(ctx: ServingContext, body: bytes, remote_ip: str,
                               headers=None) -> Tuple[bool, str]:
    """``process_refund_notify`` on a database writer; ``(ok, return_msg)`` for the reply.

    The twin of ``notify.handle_pay_notify``: a database that cannot be had in
    time answers FAIL with nothing written, so WeChat retries.
    """
    try:
        ok, message, changed = await ctx.db_write(process_refund_notify, ctx, body, remote_ip,
                                                  headers)
    except Exception as exc:  # DbBusy or a failed commit: nothing of it was kept
        logger.warning("refund notify: database unavailable (%s); answering FAIL so "
                       "WeChat retries", type(exc).__name__)
        return False, "temporary failure, retry"
    if changed:
        ctx.kick()
    return ok, message
