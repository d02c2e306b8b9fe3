"""AEAD_AES_256_GCM with the APIv3 key: notify resources and /v3/certificates entries (§6)."""

import base64
import binascii
from typing import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tornpay.protocol.jsonobject import json_object

ALGORITHM = "AEAD_AES_256_GCM"


class DecryptError(ValueError):
    """A resource that does not decrypt: wrong key, nonce or associated data, or tampering."""


def _key(apiv3_key: str) -> AESGCM:
    raw = apiv3_key.encode("utf-8")
    if len(raw) != 32:
        raise ValueError("the APIv3 key must be 32 bytes")
    return AESGCM(raw)


def encrypt(apiv3_key: str, nonce: str, associated_data: str, plaintext: bytes) -> str:
    """Base64(ciphertext ‖ tag); the nonce is 12 ASCII characters used as bytes (P6)."""
    if len(nonce.encode("ascii")) != 12:
        raise ValueError("the GCM nonce must be 12 ASCII characters")
    sealed = _key(apiv3_key).encrypt(nonce.encode("ascii"), plaintext,
                                     associated_data.encode("utf-8"))
    return base64.b64encode(sealed).decode("ascii")


def decrypt(apiv3_key: str, nonce: str, associated_data: str, ciphertext_b64: str) -> bytes:
    """The plaintext bytes, or DecryptError (never a partial result)."""
    try:
        sealed = base64.b64decode(ciphertext_b64.encode("ascii"), validate=True)
        nonce_bytes = nonce.encode("ascii")
    except (binascii.Error, UnicodeEncodeError, AttributeError):
        raise DecryptError("ciphertext or nonce is not well-formed") from None
    if len(nonce_bytes) != 12 or len(sealed) < 16:
        raise DecryptError("nonce or ciphertext has the wrong length")
    try:
        return _key(apiv3_key).decrypt(nonce_bytes, sealed, associated_data.encode("utf-8"))
    except InvalidTag:
        raise DecryptError("authentication tag mismatch (APIv3 key, nonce, associated "
                           "data or ciphertext wrong)") from None


def decrypt_resource(apiv3_key: str, resource: Mapping) -> bytes:
    """Decrypt a notify ``resource`` / ``encrypt_certificate`` object."""
    if not isinstance(resource, Mapping):
        raise DecryptError("resource is not an object")
    if resource.get("algorithm") != ALGORITHM:
        raise DecryptError(f"unsupported algorithm {resource.get('algorithm')!r}")
    fields = [resource.get(k) for k in ("nonce", "associated_data", "ciphertext")]
    if fields[1] is None:
        fields[1] = ""  # AAD may be absent or empty: never None (P6)
    if not all(isinstance(f, str) for f in fields):
        raise DecryptError("resource lacks nonce or ciphertext")
    return decrypt(apiv3_key, *fields)


def decrypt_json(apiv3_key: str, resource: Mapping) -> dict:
    return json_object(decrypt_resource(apiv3_key, resource), "decrypted resource", DecryptError)
