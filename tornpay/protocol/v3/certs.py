"""Decoding GET /v3/certificates: decrypt each entry, check its serial, bootstrap-verify (§14)."""

import json
from typing import List, Mapping

from cryptography import x509

from tornpay.protocol.v3 import aead
from tornpay.protocol.v3.keys import RSA_BITS, cert_key, same_serial
from tornpay.protocol.v3.times import rfc3339_epoch
from tornpay.protocol.v3.verify import PlatformCert, VerifyError, WeChatPayKeys, verify_signed

CERTIFICATES_PATH = "/v3/certificates"


def decode_certificates(apiv3_key: str, body: bytes) -> List[PlatformCert]:
    """Every certificate of a /v3/certificates reply, decrypted and checked (VerifyError)."""
    try:
        entries = json.loads(body.decode("utf-8"))["data"]
    except (UnicodeDecodeError, ValueError, KeyError, TypeError):
        raise VerifyError("bad_certificates", "reply is not a certificate list") from None
    if not isinstance(entries, list):
        raise VerifyError("bad_certificates", "data is not a list")
    return [_decode_entry(apiv3_key, entry) for entry in entries]


def _decode_entry(apiv3_key: str, entry: Mapping) -> PlatformCert:
    if not isinstance(entry, Mapping):
        raise VerifyError("bad_certificates", "entry is not an object")
    try:
        pem = aead.decrypt_resource(apiv3_key, entry.get("encrypt_certificate"))
        cert = x509.load_pem_x509_certificate(pem)
    except (aead.DecryptError, ValueError) as exc:
        raise VerifyError("bad_certificates", f"entry does not decrypt: {exc}") from None
    serial = str(entry.get("serial_no") or "")
    if not same_serial(format(cert.serial_number, "X"), serial):
        raise VerifyError("bad_certificates", f"serial_no {serial[:40]} is not the "
                                              "certificate's serial")
    key = cert_key(cert)
    if key is None or key.key_size != RSA_BITS:
        raise VerifyError("bad_certificates", f"certificate {serial[:40]} is not RSA-2048")
    not_before = cert.not_valid_before_utc.timestamp()
    not_after = cert.not_valid_after_utc.timestamp()
    listed = rfc3339_epoch(entry.get("expire_time", ""))
    if listed is not None:  # WeChat shortens expire_time before a rotation (§14)
        not_after = min(not_after, listed)
    return PlatformCert(serial.upper(), key, not_before, not_after)


def verify_certificates_reply(keys: WeChatPayKeys, apiv3_key: str, headers: Mapping,
                              body: bytes, now: float) -> List[PlatformCert]:
    """Decrypt the list, then verify the reply with a known or a just-decrypted certificate.

    Decrypting already proves the sender knows the APIv3 key; the signature must
    still come from a certificate in the list or one we already trust (§14 bootstrap).
    """
    certs = decode_certificates(apiv3_key, body)
    trial = WeChatPayKeys(certificates=keys.certificates())
    trial.add(certs)
    verify_signed(trial, headers, body, now=now)
    return certs
