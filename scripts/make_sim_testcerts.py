"""Regenerate the simulator's TEST-ONLY certificates and keys (tornpay/simulator/testcerts/).

A test CA and one merchant API certificate (CN = the demo mch_id 10000100, RSA-2048,
a fixed serial: the v2 refund client certificate and the v3 signing key, as WeChat's
apiclient_cert.pem is both), plus WeChat's side for API v3: a WeChat Pay public-key
pair (public-key mode) and a self-signed platform certificate (certificate mode).
They protect nothing: every private key is published in this repository.
Run: python scripts/make_sim_testcerts.py
"""

import datetime
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

OUT = os.path.join(os.path.dirname(__file__), "..", "tornpay", "simulator", "testcerts")
MCH_ID = "10000100"
ORG = "tornpay simulator TEST ONLY - not a WeChat certificate"
# Fixed serials so settings.yaml and the simulator can name them (40 upper-case hex digits).
MERCHANT_SERIAL = 0x7E57000000000000000000000000000010000100
PLATFORM_SERIAL = 0x7E57F1A7F0000000000000000000000000000001


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORG),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write(path: str, data: bytes) -> None:
    with open(os.path.join(OUT, path), "wb") as handle:
        handle.write(data)


def main() -> None:
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    until = now + datetime.timedelta(days=365 * 50)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("tornpay simulator TEST CA"))
          .issuer_name(_name("tornpay simulator TEST CA")).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now)
          .not_valid_after(until)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (x509.CertificateBuilder().subject_name(_name(MCH_ID)).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(MERCHANT_SERIAL)
            .not_valid_before(now).not_valid_after(until)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    _write("TEST-ONLY-ca.pem", ca.public_bytes(pem))
    _write(f"TEST-ONLY-merchant-{MCH_ID}-cert.pem", cert.public_bytes(pem))
    _write(f"TEST-ONLY-merchant-{MCH_ID}-key.pem", key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    # The CA key is not kept: nothing else can ever be signed by this CA.
    _write_wechatpay_side(now, until)


def _private_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write_wechatpay_side(now, until) -> None:
    """API v3, WeChat's keys: the simulator signs with the private halves."""
    pem = serialization.Encoding.PEM
    pub = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write("TEST-ONLY-wechatpay-private-key.pem", _private_pem(pub))
    _write("TEST-ONLY-wechatpay-public-key.pem", pub.public_key().public_bytes(
        pem, serialization.PublicFormat.SubjectPublicKeyInfo))
    platform = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = _name("tornpay simulator TEST platform certificate")
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(platform.public_key()).serial_number(PLATFORM_SERIAL)
            .not_valid_before(now).not_valid_after(until).sign(platform, hashes.SHA256()))
    _write("TEST-ONLY-platform-key.pem", _private_pem(platform))
    _write("TEST-ONLY-platform-cert.pem", cert.public_bytes(pem))


if __name__ == "__main__":
    main()
