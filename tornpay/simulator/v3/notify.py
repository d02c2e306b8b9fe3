"""v3 notifies: the §15 JSON body with an AES-256-GCM resource, signed, with fault variants."""

import json
import uuid
from typing import Dict, Tuple

from tornpay.protocol.v3 import aead
from tornpay.simulator.records import Order, Refund
from tornpay.simulator.v3.api import sim_keys
from tornpay.simulator.v3.fields import REFUND_STATUS, rfc3339, transaction

PROBE = "WECHATPAY/SIGNTEST/"
REFUND_EVENTS = {"SUCCESS": ("REFUND.SUCCESS", "退款成功"), "ABNORMAL": ("REFUND.ABNORMAL", "退款异常"),
                 "CLOSED": ("REFUND.CLOSED", "退款关闭")}


def _fired(state, name: str) -> bool:
    return bool(state.faults.fire(name))


def _envelope(state, mchid: str, event: Tuple[str, str], original: str,
              plain: Dict) -> Dict:
    keys = sim_keys(state)
    nonce = state.new_code()[:12]
    aad = original
    if _fired(state, "notify_wrong_aad"):
        aad = original + "-other"
    data = json.dumps(plain, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    ciphertext = aead.encrypt(keys.apiv3_keys[mchid], nonce, aad, data)
    if _fired(state, "notify_tampered"):
        flipped = "B" if ciphertext[0] != "B" else "C"
        ciphertext = flipped + ciphertext[1:]
    return {
        "id": str(uuid.UUID(int=state.rng.getrandbits(128), version=4)),
        "create_time": rfc3339(state.now()), "resource_type": "encrypt-resource",
        "event_type": event[0], "summary": event[1],
        "resource": {"original_type": original, "algorithm": aead.ALGORITHM,
                     "ciphertext": ciphertext, "associated_data": original, "nonce": nonce},
    }


def _signed(state, envelope: Dict, bad_sign: bool) -> Tuple[bytes, Dict[str, str]]:
    keys = sim_keys(state)
    body = json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    kwargs = {}
    if _fired(state, "notify_stale"):
        kwargs["timestamp"] = int(keys.clock()) - 600
    if _fired(state, "notify_unknown_serial"):
        kwargs["serial"] = "PUB_KEY_ID_0110000100209901010000000099"
    headers = keys.sign_headers(body, **kwargs)
    if bad_sign:
        headers["Wechatpay-Signature"] = keys.sign_headers(body + b" ")["Wechatpay-Signature"]
    elif _fired(state, "notify_probe"):
        headers["Wechatpay-Signature"] = PROBE + headers["Wechatpay-Signature"][20:]
    headers["Content-Type"] = "application/json"
    headers["Request-ID"] = envelope["id"]
    return body, headers


def payment_notify(state, order: Order, wrong_total_fee: bool = False,
                   bad_sign: bool = False) -> Tuple[bytes, Dict[str, str]]:
    """TRANSACTION.SUCCESS for a paid v3 order."""
    plain = transaction(order)
    if wrong_total_fee:
        plain["amount"]["total"] += 1
    envelope = _envelope(state, order.mch_id, ("TRANSACTION.SUCCESS", "支付成功"), "transaction",
                         plain)
    return _signed(state, envelope, bad_sign)


def refund_notify(state, refund: Refund) -> Tuple[bytes, Dict[str, str]]:
    """REFUND.SUCCESS / ABNORMAL / CLOSED for a finished v3 refund."""
    status = REFUND_STATUS[refund.status]
    plain = {
        "mchid": refund.mch_id, "out_trade_no": refund.out_trade_no,
        "transaction_id": refund.transaction_id, "out_refund_no": refund.out_refund_no,
        "refund_id": refund.refund_id, "refund_status": status,
        "user_received_account": "支付用户零钱",
        "amount": {"total": refund.total_fee, "refund": refund.refund_fee,
                   "payer_total": refund.total_fee, "payer_refund": refund.refund_fee},
    }
    if refund.success_at:
        plain["success_time"] = rfc3339(refund.success_at)
    envelope = _envelope(state, refund.mch_id, REFUND_EVENTS[status], "refund", plain)
    return _signed(state, envelope, False)
