"""WeChat's side of refund-notify encryption (req_info), written independently of the merchant's.

Kept separate from tornpay.protocol.refundcrypto on purpose: the simulator is
the other party, so a shared bug in one implementation would hide itself.
"""

import base64
import hashlib
from typing import Mapping

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


def _aes_key(api_key: str) -> bytes:
    # The 32 ASCII characters of the lower-case MD5 hex are the AES-256 key (§12.2).
    return hashlib.md5(api_key.encode("utf-8")).hexdigest().encode("ascii")


def req_info_plaintext(fields: Mapping[str, object]) -> bytes:
    """The `<root>` document WeChat encrypts: sorted fields, CDATA values, joined by newlines."""
    lines = ["<root>"]
    for name in sorted(fields):
        lines.append(f"<{name}><![CDATA[{fields[name]}]]></{name}>")
    lines.append("</root>")
    return "\n".join(lines).encode("utf-8")


def encrypt_req_info(fields: Mapping[str, object], api_key: str) -> str:
    """Base64 of AES-256-ECB(PKCS#7) over the `<root>` plaintext (reference §12.4)."""
    padder = padding.PKCS7(128).padder()
    padded = padder.update(req_info_plaintext(fields)) + padder.finalize()
    encryptor = Cipher(algorithms.AES(_aes_key(api_key)), modes.ECB()).encryptor()
    return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode("ascii")


def decrypt_req_info_text(req_info: str, api_key: str) -> str:
    """Inverse of encrypt_req_info, returning the `<root>` XML text (for the dashboard/tests)."""
    decryptor = Cipher(algorithms.AES(_aes_key(api_key)), modes.ECB()).decryptor()
    padded = decryptor.update(base64.b64decode(req_info)) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return (unpadder.update(padded) + unpadder.finalize()).decode("utf-8")
