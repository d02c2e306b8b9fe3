"""Building v3 notifies the way WeChat does (independently of the simulator), for the tests."""

import json
import time
from typing import Optional

from tornpay.protocol.v3 import aead
from tornpay.protocol.v3.keys import load_private_key
from tornpay.protocol.v3.signing import SCHEME, reply_message, rsa_sign
from tornpay.simulator.v3.keys import TEST_APIV3_KEY, TEST_PUB_KEY_ID, TESTCERT_DIR

WECHATPAY_KEY = load_private_key(f"{TESTCERT_DIR}/TEST-ONLY-wechatpay-private-key.pem")
TXN = "4200002315202406013425869417"


def transaction(order, *, total=None, appid="wxd930ea5d5a258f4f", mchid="10000100") -> dict:
    return {"appid": appid, "mchid": mchid, "out_trade_no": order.out_trade_no,
            "transaction_id": TXN, "trade_type": "JSAPI", "trade_state": "SUCCESS",
            "trade_state_desc": "支付成功", "bank_type": "OTHERS", "attach": "",
            "success_time": "2026-12-02T10:00:05+08:00", "payer": {"openid": order.openid},
            "amount": {"total": order.total_fee if total is None else total,
                       "payer_total": order.total_fee, "currency": "CNY",
                       "payer_currency": "CNY"}}


def refund_resource(refund, order, status="SUCCESS", refund_fee=None) -> dict:
    return {"mchid": "10000100", "out_trade_no": order.out_trade_no,
            "transaction_id": order.transaction_id, "out_refund_no": refund.out_refund_no,
            "refund_id": "50300002512025010212345678901", "refund_status": status,
            "success_time": "2026-12-02T10:00:05+08:00", "user_received_account": "支付用户零钱",
            "amount": {"total": order.total_fee,
                       "refund": refund.refund_fee if refund_fee is None else refund_fee,
                       "payer_total": order.total_fee, "payer_refund": refund.refund_fee}}


def notify(plain: dict, *, original="transaction", aad: Optional[str] = None,
           key: str = TEST_APIV3_KEY, tamper: str = "", stamp: Optional[int] = None,
           serial: str = TEST_PUB_KEY_ID, signer=WECHATPAY_KEY, signature: str = ""):
    """(headers, body) of one signed notify; ``tamper``: ciphertext | tag | body."""
    nonce = "hG4mP9sK2wQx"
    data = json.dumps(plain, separators=(",", ":"), ensure_ascii=False).encode()
    ciphertext = aead.encrypt(key, nonce, original if aad is None else aad, data)
    if tamper == "ciphertext":
        ciphertext = ("B" if ciphertext[0] != "B" else "C") + ciphertext[1:]
    elif tamper == "tag":
        ciphertext = ciphertext[:-4] + ("AAA=" if ciphertext[-4:] != "AAA=" else "BBB=")
    event = "TRANSACTION.SUCCESS" if original == "transaction" else "REFUND.SUCCESS"
    envelope = {"id": "8b2f9e1c-6a3d-5f47-9c21-0e4d7a5b3c19",
                "create_time": "2026-12-02T10:00:06+08:00", "resource_type": "encrypt-resource",
                "event_type": event, "summary": "ok",
                "resource": {"original_type": original, "algorithm": aead.ALGORITHM,
                             "ciphertext": ciphertext, "associated_data": original,
                             "nonce": nonce}}
    body = json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode()
    ts = str(int(time.time()) if stamp is None else stamp)
    header_nonce = "Q8w7E6r5T4y3U2i1O0p9A8s7D6f5G4h3"
    sig = signature or rsa_sign(signer, reply_message(ts, header_nonce, body))
    if tamper == "body":
        body = body.replace(b'"summary":"ok"', b'"summary":"OK"')
    headers = {"Content-Type": "application/json", "Wechatpay-Timestamp": ts,
               "Wechatpay-Nonce": header_nonce, "Wechatpay-Signature": sig,
               "Wechatpay-Serial": serial, "Wechatpay-Signature-Type": SCHEME}
    return headers, body
