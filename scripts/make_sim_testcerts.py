"""Regenerate the simulator's TEST-ONLY certificates (tornpay/simulator/testcerts/).

A test CA and one merchant client certificate (CN = the demo mch_id 10000100)
signed by it. They protect nothing: the private keys are published in this
repository. Run: python scripts/make_sim_testcerts.py
"""

import datetime
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

OUT = os.path.join(os.path.dirname(__file__), "..", "tornpay", "simulator", "testcerts")
MCH_ID = "10000100"
ORG = "tornpay simulator TEST ONLY - not a WeChat certificate"


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
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name(MCH_ID)).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(until)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    _write("TEST-ONLY-ca.pem", ca.public_bytes(pem))
    _write(f"TEST-ONLY-merchant-{MCH_ID}-cert.pem", cert.public_bytes(pem))
    _write(f"TEST-ONLY-merchant-{MCH_ID}-key.pem", key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    # The CA key is not kept: nothing else can ever be signed by this CA.


if __name__ == "__main__":
    main()
