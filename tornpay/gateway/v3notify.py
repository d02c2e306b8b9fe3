"""Verifying and decoding v3 notifies into the core's neutral fields (v3 reference §15)."""

import json
import logging
import time
from typing import Mapping, Optional

from tornpay.gateway.base import NotifyRefused
from tornpay.protocol.v3.times import beijing_compact, beijing_dashed
from tornpay.protocol.v3 import aead
from tornpay.protocol.v3.verify import VerifyError, WeChatPayKeys, verify_signed

log = logging.getLogger(__name__)

MAX_NOTIFY_BYTES = 64 * 1024
REFUND_STATUS_V2 = {"SUCCESS": "SUCCESS", "CLOSED": "REFUNDCLOSE", "ABNORMAL": "CHANGE",
                    "PROCESSING": "PROCESSING"}


def open_notify(keys: WeChatPayKeys, apiv3_key: str, headers: Mapping, body: bytes,
                original_type: str, now: Optional[float] = None) -> dict:
    """Signature over the exact bytes, timestamp, then decryption; the plaintext object."""
    if len(body) > MAX_NOTIFY_BYTES:
        raise NotifyRefused(f"body of {len(body)} bytes is over {MAX_NOTIFY_BYTES}",
                            "body too large")
    try:
        verify_signed(keys, headers, body, now=time.time() if now is None else now)
    except VerifyError as exc:
        raise NotifyRefused(f"v3 notify not verified: {exc}", "signature failed") from None
    try:
        envelope = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise NotifyRefused("v3 notify body is not JSON", "invalid JSON") from None
    resource = envelope.get("resource") if isinstance(envelope, dict) else None
    if not isinstance(resource, dict) or envelope.get("resource_type") != "encrypt-resource":
        raise NotifyRefused("v3 notify without an encrypted resource", "invalid notify")
    if resource.get("original_type") != original_type:
        raise NotifyRefused(f"v3 notify of type {resource.get('original_type')!r} at the "
                            f"{original_type} endpoint", "wrong notify type")
    try:
        return aead.decrypt_json(apiv3_key, resource)
    except aead.DecryptError as exc:
        raise NotifyRefused(f"v3 resource does not decrypt: {exc}", "decrypt failed") from None


def pay_fields(tx: dict) -> dict:
    """A decrypted transaction as the neutral payment-notify fields."""
    amount = tx.get("amount") if isinstance(tx.get("amount"), dict) else {}
    total, payer_total = amount.get("total"), amount.get("payer_total")
    state = tx.get("trade_state")
    return {
        "return_code": "SUCCESS", "result_code": "SUCCESS" if state == "SUCCESS" else str(state),
        "appid": tx.get("appid"), "mch_id": tx.get("mchid"), "out_trade_no": tx.get("out_trade_no"),
        "transaction_id": tx.get("transaction_id"),
        # Only a JSON integer is an amount (P8): anything else fails the amount check.
        "total_fee": str(total) if type(total) is int else "",
        "fee_type": amount.get("currency", "CNY"),
        "cash_fee": str(payer_total) if type(payer_total) is int else None,
        "time_end": beijing_compact(tx.get("success_time")), "bank_type": tx.get("bank_type"),
        "openid": (tx.get("payer") or {}).get("openid") if isinstance(tx.get("payer"), dict)
        else None,
    }


def refund_fields(info: dict) -> dict:
    """A decrypted refund resource as the neutral refund-notify fields."""
    amount = info.get("amount") if isinstance(info.get("amount"), dict) else {}
    return {
        "mch_id": info.get("mchid"), "out_trade_no": info.get("out_trade_no"),
        "out_refund_no": info.get("out_refund_no"), "refund_id": info.get("refund_id"),
        "transaction_id": info.get("transaction_id"),
        "refund_status": REFUND_STATUS_V2.get(str(info.get("refund_status")), "UNKNOWN"),
        "refund_fee": amount.get("refund"), "total_fee": amount.get("total"),
        "success_time": beijing_dashed(info.get("success_time")),
        "refund_recv_accout": info.get("user_received_account"),
    }
