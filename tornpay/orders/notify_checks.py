"""The checks of a v2 payment notify against its order (SPEC §5): signature, parties, amount."""

import logging
from typing import Mapping, NamedTuple, Optional

from tornpay.orders.notify_body import Refusal
from tornpay.protocol.sign import verify_sign

logger = logging.getLogger("tornpay.orders.notify")  # the pipeline's lines, one logger


class OrderRef(NamedTuple):
    """The columns of an order the checks use (building a whole Order row cost the most)."""

    out_trade_no: str
    sign_type: str
    total_fee: int
    api_version: str
    appid: str  # "" on orders older than the column: the Official Account's


def check_v2_signature(wechat, order: OrderRef, fields: dict) -> None:
    out_trade_no = order.out_trade_no
    # The order decides the algorithm (an HMAC order's notify usually has no
    # sign_type, reference P2); a notify claiming another one is not ours.
    declared = fields.get("sign_type")
    if declared is not None and declared != order.sign_type:
        raise Refusal(f"sign_type {declared!r} differs from the order's {order.sign_type}",
                      "signature failed", out_trade_no)
    if not verify_sign(fields, wechat.api_key, order.sign_type):
        raise Refusal("bad signature", "signature failed", out_trade_no)


def check_parties(wechat, order: OrderRef, fields: dict, alert: bool = True) -> None:
    out_trade_no = order.out_trade_no
    # A Mini Program order's notify carries the Mini Program's appid: the order's own.
    if fields.get("appid") != (order.appid or wechat.appid):
        raise Refusal(f"appid {fields.get('appid')!r} is not ours", "appid mismatch",
                      out_trade_no)
    if fields.get("mch_id") != wechat.mch_id:
        raise Refusal(f"mch_id {fields.get('mch_id')!r} is not ours", "mch_id mismatch",
                      out_trade_no)
    if fields.get("result_code") == "SUCCESS":
        check_amount(order, fields, alert)


def check_amount(order: OrderRef, fields: dict, alert: bool = True) -> None:
    total = fields.get("total_fee", "")
    if not (isinstance(total, str) and total.isascii() and total.isdigit()) \
            or int(total) != order.total_fee:
        # Correctly signed yet a different amount: someone must look at this.
        if alert:
            logger.error("ALERT order %s: signed notify total_fee %r differs from the order's %d "
                         "fen; not marked paid", order.out_trade_no, total, order.total_fee)
        raise Refusal(f"total_fee {total!r} != {order.total_fee}", "total_fee mismatch",
                      order.out_trade_no)
    if fields.get("fee_type", "CNY") != "CNY":
        raise Refusal(f"fee_type {fields.get('fee_type')!r}", "fee_type mismatch",
                      order.out_trade_no)
    if not fields.get("transaction_id"):
        raise Refusal("no transaction_id", "missing transaction_id", order.out_trade_no)


def v2_failure(wechat, order: OrderRef, fields: Mapping) -> Optional[Refusal]:
    """The first of the checks above that ``fields`` fail, or None; nothing logged.

    For a caller that only decides whether to take a shortcut (the paid cache):
    a failing notify then goes through the pipeline, which logs and alerts once.
    """
    try:
        check_v2_signature(wechat, order, fields)
        check_parties(wechat, order, fields, alert=False)
    except Refusal as refusal:
        return refusal
    return None
