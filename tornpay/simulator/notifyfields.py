"""The payment notify's fields (§11.2) and its genuine variants, each a fault switch."""

from typing import Dict

from tornpay.protocol.sign import make_sign

# Fault switches that reshape a genuine notify (still correctly signed): tornpay must accept all.
VARIANTS = {
    "notify_extra_fields": "add fields tornpay does not know (promotion_detail, version, "
                           "an empty element) to the signed notify",
    "notify_sign_type": "include a sign_type element (MD5 or HMAC-SHA256, the order's type)",
    "notify_reordered": "send the notify's elements in reverse order, sign first",
    "notify_cash_fee_type": "include cash_fee_type=CNY",
    "notify_subscribed": "say is_subscribe=Y whatever the payer's follow state",
}
COUPON_ID = "10000012345"


def coupon_fee_for(total_fee: int) -> int:
    """A non-recharge coupon of about 10%, leaving at least 1 fen of cash (0: no coupon)."""
    return max(1, total_fee // 10) if total_fee >= 2 else 0


def payment_notify_fields(state, order, wrong_total_fee: bool = False,
                          bad_sign: bool = False, variants=()) -> Dict[str, str]:
    """The signed §11.2 payment notify for a paid order, reshaped by `variants`."""
    total = order.total_fee + (1 if wrong_total_fee else 0)
    fields = {
        "appid": order.appid, "mch_id": order.mch_id, "nonce_str": state.nonce(),
        "result_code": "SUCCESS", "return_code": "SUCCESS", "openid": order.openid,
        "is_subscribe": order.is_subscribe, "trade_type": order.trade_type,
        "bank_type": order.bank_type, "total_fee": str(total), "fee_type": order.fee_type,
        "cash_fee": str(total - order.coupon_fee), "transaction_id": order.transaction_id,
        "out_trade_no": order.out_trade_no, "time_end": order.time_end,
    }
    if order.attach:
        fields["attach"] = order.attach
    if order.coupon_fee:
        fields.update(coupon_fields(order))
    _reshape(fields, order, variants, state.config.include_sign_type_in_notify)
    fields = dict(sorted(fields.items()))
    key = state.config.merchant(order.mch_id).api_key
    fields["sign"] = make_sign(fields, "x" * 32 if bad_sign else key, order.sign_type)
    if "notify_reordered" in variants:
        fields = dict(reversed(list(fields.items())))
    return fields


def coupon_fields(order) -> Dict[str, str]:
    """The §11.6 coupon sample's fields: total_fee − coupon_fee = cash_fee."""
    fee = str(order.coupon_fee)
    return {
        "coupon_fee": fee, "coupon_count": "1", "coupon_type_0": "NO_CASH",
        "coupon_id_0": COUPON_ID, "coupon_fee_0": fee, "cash_fee_type": "CNY",
        "settlement_total_fee": str(order.total_fee - order.coupon_fee),
    }


def _reshape(fields: Dict[str, str], order, variants, sign_type_always: bool) -> None:
    if sign_type_always or "notify_sign_type" in variants:
        fields["sign_type"] = order.sign_type
    if "notify_cash_fee_type" in variants:
        fields["cash_fee_type"] = "CNY"
    if "notify_subscribed" in variants:
        fields["is_subscribe"] = "Y"
    if "notify_extra_fields" in variants:
        # Empty values are skipped by the signature (§3.1), unknown ones are signed.
        fields.update({"promotion_detail": '{"promotion_detail":[]}', "version": "1.0",
                       "sub_openid": "", "tornpay_sim_unknown": "kept in the signature"})
