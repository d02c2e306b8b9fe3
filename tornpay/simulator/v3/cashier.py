"""The cashier's check of a v3 JSAPI paySign: RSA over four lines with the merchant's key."""

from tornpay.protocol.v3.signing import pay_message, rsa_verify
from tornpay.simulator.v3.api import sim_keys


def pay_sign_ok(state, order, params) -> bool:
    """True when any active API certificate of the merchant verifies ``paySign`` (§8.1)."""
    message = pay_message(params["appId"], params["timeStamp"], params["nonceStr"],
                          params["package"])
    keys = sim_keys(state).merchant_keys.get(order.mch_id, {})
    return any(rsa_verify(key, message, params["paySign"]) for key in keys.values())
