"""Loading and checking the v3 PEM files: RSA-2048 keys, certificates and their serials."""

from typing import Optional

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

RSA_BITS = 2048


class KeyFileError(ValueError):
    """A PEM file that cannot serve as a v3 key; the message names the file, never its content."""


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise KeyFileError(f"{what} {path}: cannot be read ({exc.strerror or exc})") from None


def _check_rsa(key, path: str, what: str):
    if not isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        raise KeyFileError(f"{what} {path}: not an RSA key")
    if key.key_size != RSA_BITS:
        raise KeyFileError(f"{what} {path}: RSA key of {key.key_size} bits, "
                           f"WeChat Pay v3 uses {RSA_BITS}")
    return key


def private_key_from_pem(data: bytes, path: str = "<pem>",
                         what: str = "private key") -> rsa.RSAPrivateKey:
    """An unencrypted RSA-2048 private key (PKCS#8 or PKCS#1 PEM)."""
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise KeyFileError(f"{what} {path}: not an unencrypted PEM private key") from None
    return _check_rsa(key, path, what)


def public_key_from_pem(data: bytes, path: str = "<pem>",
                        what: str = "public key") -> rsa.RSAPublicKey:
    """An RSA-2048 public key from a PEM public key or a PEM certificate."""
    try:
        if b"BEGIN CERTIFICATE" in data:
            key = x509.load_pem_x509_certificate(data).public_key()
        else:
            key = serialization.load_pem_public_key(data)
    except ValueError:
        raise KeyFileError(f"{what} {path}: not a PEM public key or certificate") from None
    return _check_rsa(key, path, what)


def load_private_key(path: str, what: str = "private key") -> rsa.RSAPrivateKey:
    return private_key_from_pem(_read(path, what), path, what)


def load_public_key(path: str, what: str = "public key") -> rsa.RSAPublicKey:
    return public_key_from_pem(_read(path, what), path, what)


def load_certificate(path: str, what: str = "certificate") -> x509.Certificate:
    data = _read(path, what)
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError:
        raise KeyFileError(f"{what} {path}: not a PEM certificate") from None


def serial_hex(cert: x509.Certificate) -> str:
    """The certificate serial as WeChat writes it: upper-case hex, 40 digits zero-padded (P5)."""
    return format(cert.serial_number, "X").zfill(40)


def same_serial(a: str, b: str) -> bool:
    """Serials compared as integers, so case and leading zeros do not matter (P5)."""
    try:
        return int(a, 16) == int(b, 16)
    except (TypeError, ValueError):
        return False


def same_public_key(a, b) -> bool:
    return a.public_numbers() == b.public_numbers()


def public_pem(key) -> bytes:
    """A public key (or a private key's public half) as SubjectPublicKeyInfo PEM."""
    if isinstance(key, rsa.RSAPrivateKey):
        key = key.public_key()
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def cert_key(cert: x509.Certificate) -> Optional[rsa.RSAPublicKey]:
    key = cert.public_key()
    return key if isinstance(key, rsa.RSAPublicKey) else None
