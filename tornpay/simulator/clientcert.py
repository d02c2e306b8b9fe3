"""The refund endpoint's client-certificate check, and the shipped TEST-ONLY certificates."""

import os
from typing import Optional

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

TESTCERT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "testcerts")
TEST_CA = os.path.join(TESTCERT_DIR, "TEST-ONLY-ca.pem")
TEST_MCH_ID = "10000100"
TEST_CERT = os.path.join(TESTCERT_DIR, f"TEST-ONLY-merchant-{TEST_MCH_ID}-cert.pem")
TEST_KEY = os.path.join(TESTCERT_DIR, f"TEST-ONLY-merchant-{TEST_MCH_ID}-key.pem")

# Layer-1 texts (best reading: WeChat's exact wording is unconfirmed, reference §2.5).
NO_CERT = "证书验证失败：请求未携带商户API证书"
BAD_PAIR = "证书验证失败：商户API证书与私钥不匹配"
BAD_ISSUER = "证书验证失败：不是微信支付签发的商户API证书"
OTHER_MCH = "证书验证失败：商户API证书与商户号mch_id不匹配"


# The directory holding the tornpay package: the shipped settings.yaml names the TEST-ONLY
# pair relative to a checkout, which an installed package or the zipapp also finds here.
_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _read(path: str) -> Optional[bytes]:
    candidates = [path]
    if not os.path.isabs(path):
        candidates.append(os.path.join(_PACKAGE_PARENT, path))
    for candidate in candidates:
        try:
            with open(candidate, "rb") as handle:
                return handle.read()
        except OSError:
            continue
    return None


def _issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    if cert.issuer != ca.subject:
        return False
    public = ca.public_key()
    try:
        if isinstance(public, ec.EllipticCurvePublicKey):
            public.verify(cert.signature, cert.tbs_certificate_bytes,
                          ec.ECDSA(cert.signature_hash_algorithm))
        elif isinstance(public, rsa.RSAPublicKey):
            public.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(),
                          cert.signature_hash_algorithm)
        else:
            return False
    except Exception:  # InvalidSignature or an unsupported algorithm: not ours
        return False
    return True


def _common_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def check_cert_pair(cert_file: str, key_file: str, mch_id: str,
                    ca_file: str = TEST_CA) -> Optional[str]:
    """None when the pair would pass WeChat's mutual TLS for `mch_id`; else the refusal text.

    The simulator is mounted over plain HTTP, where no client certificate can be
    presented, so it checks the files the merchant's client attaches to every
    /secapi/ call (wechat.cert_file / key_file): missing, unreadable, a key that
    does not belong to the certificate, another issuer or another mch_id all fail.
    """
    cert_pem = _read(cert_file) if cert_file else None
    key_pem = _read(key_file) if key_file else None
    if not cert_pem or not key_pem:
        return NO_CERT
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        return BAD_PAIR
    pub = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if key.public_key().public_bytes(der, pub) != cert.public_key().public_bytes(der, pub):
        return BAD_PAIR
    ca_pem = _read(ca_file)
    if ca_pem is None or not _issued_by(cert, x509.load_pem_x509_certificate(ca_pem)):
        return BAD_ISSUER
    if _common_name(cert) != mch_id:
        return OTHER_MCH
    return None


def check_peer_cert(peer: Optional[dict], mch_id: str) -> Optional[str]:
    """The same verdict for a certificate presented over real TLS (already CA-verified)."""
    if not peer:
        return NO_CERT
    subject = dict(pair[0] for pair in peer.get("subject", ()) if pair)
    return None if subject.get("commonName") == mch_id else OTHER_MCH
