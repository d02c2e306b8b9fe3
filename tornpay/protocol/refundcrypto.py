"""Refund-notification ``req_info``: AES-256-ECB with key = md5(api_key) hex (reference §12)."""

import base64
import binascii
import hashlib
from typing import Mapping

from .xmlcodec import XMLError, decode_xml

BLOCK = 16


class RefundDecryptError(ValueError):
    """``req_info`` could not be decrypted and parsed (wrong key, corrupt or forged data)."""


def _aes_key(api_key: str) -> bytes:
    # The 32 ASCII hex characters ARE the key (AES-256), not the 16 raw bytes (pitfall P19).
    return hashlib.md5(api_key.encode("utf-8")).hexdigest().encode("ascii")


def _cipher(api_key: str):
    # Imported on the first refund notify: cryptography costs ~9 MB of resident
    # memory that a server which never sees one need not carry.
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    return Cipher(algorithms.AES(_aes_key(api_key)), modes.ECB())


def decrypt_req_info(req_info_b64: str, api_key: str) -> dict:
    """Decrypt and parse ``req_info`` into ``{name: str}``; any failure is RefundDecryptError."""
    try:
        raw = base64.b64decode(req_info_b64, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise RefundDecryptError("req_info is not valid base64") from None
    if not raw or len(raw) % BLOCK:
        raise RefundDecryptError("req_info length is not a multiple of the AES block")
    decryptor = _cipher(api_key).decryptor()
    padded = decryptor.update(raw) + decryptor.finalize()
    # WeChat pads to 16-byte blocks; some SDKs pad to 32. Accept 1..32 of the same byte.
    pad = padded[-1]
    if not 1 <= pad <= 32 or pad > len(padded) or padded[-pad:] != bytes([pad]) * pad:
        raise RefundDecryptError("bad padding (wrong API key?)")
    try:
        return decode_xml(padded[:-pad], root="root")
    except XMLError as exc:
        raise RefundDecryptError(f"decrypted req_info is not valid <root> XML: {exc}") from None


def _cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def encrypt_req_info(fields: Mapping[str, object], api_key: str) -> str:
    """Encrypt ``fields`` as WeChat does (§12.4): sorted CDATA lines under <root>, PKCS#7/16."""
    lines = ["<root>"]
    for name in sorted(fields):
        lines.append(f"<{name}>{_cdata(str(fields[name]))}</{name}>")
    lines.append("</root>")
    plain = "\n".join(lines).encode("utf-8")
    pad = BLOCK - len(plain) % BLOCK
    encryptor = _cipher(api_key).encryptor()
    data = encryptor.update(plain + bytes([pad]) * pad) + encryptor.finalize()
    return base64.b64encode(data).decode("ascii")
