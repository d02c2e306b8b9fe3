"""Refund req_info crypto: the §12.4 known answer both ways, and every way decryption must fail."""

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

import vectors as V  # tests/ is on sys.path (pytest rootdir-relative import)
from tornpay.protocol.refundcrypto import RefundDecryptError, decrypt_req_info, encrypt_req_info


def _raw_encrypt(plain: bytes, key: str = V.KEY) -> str:
    aes_key = hashlib.md5(key.encode()).hexdigest().encode()
    enc = Cipher(algorithms.AES(aes_key), modes.ECB()).encryptor()
    return base64.b64encode(enc.update(plain) + enc.finalize()).decode()


def _raw_decrypt(b64: str, key: str = V.KEY) -> bytes:
    aes_key = hashlib.md5(key.encode()).hexdigest().encode()
    dec = Cipher(algorithms.AES(aes_key), modes.ECB()).decryptor()
    return dec.update(base64.b64decode(b64)) + dec.finalize()


def test_aes_key_is_hex_md5_of_api_key():
    assert hashlib.md5(V.KEY.encode()).hexdigest() == V.REFUND_AES_KEY


def test_encrypt_reproduces_reference_byte_for_byte():
    assert encrypt_req_info(V.REFUND_PLAIN_FIELDS, V.KEY) == V.REQ_INFO_12_4


def test_encrypt_is_independent_of_field_order():
    reversed_fields = dict(reversed(list(V.REFUND_PLAIN_FIELDS.items())))
    assert encrypt_req_info(reversed_fields, V.KEY) == V.REQ_INFO_12_4


def test_reference_plaintext_and_padding():
    padded = _raw_decrypt(V.REQ_INFO_12_4)
    assert len(padded) == 800 and padded[-8:] == b"\x08" * 8
    assert hashlib.sha256(padded[:-8]).hexdigest() == V.REFUND_PLAIN_SHA256


def test_decrypt_reference_gives_13_fields():
    fields = decrypt_req_info(V.REQ_INFO_12_4, V.KEY)
    assert fields == V.REFUND_PLAIN_FIELDS
    assert len(fields) == 13
    assert fields["refund_recv_accout"] == "支付用户零钱"
    assert fields["success_time"] == "2024-06-02 10:15:32"


def test_round_trip_with_awkward_values():
    fields = {"a": "x]]>y", "b": "0", "c": "", "d": "<&>"}
    assert decrypt_req_info(encrypt_req_info(fields, "k" * 32), "k" * 32) == fields


def test_accepts_32_byte_block_padding():
    # wechatpy's encoder pads to 32-byte blocks (§12.2); a pad of 24 must be accepted.
    plain = b"<root><a><![CDATA[1]]></a></root>"  # 34 bytes -> 30 pad bytes to 64
    pad = 32 - len(plain) % 32
    assert pad > 16
    assert decrypt_req_info(_raw_encrypt(plain + bytes([pad]) * pad), V.KEY) == {"a": "1"}


def test_wrong_key_fails_cleanly():
    with pytest.raises(RefundDecryptError):
        decrypt_req_info(V.REQ_INFO_12_4, "0" * 32)


@pytest.mark.parametrize(
    "tail",
    [b"\x00" * 16, b"\x21" * 16, b"A" * 15 + b"\x03", b"\x10" * 15 + b"\x0f"],
    ids=["zero", "over32", "inconsistent", "mixed"],
)
def test_bad_padding(tail):
    plain = b"<root><a>1</a></root>" + b" " * 11  # 32 bytes, then one bad final block
    with pytest.raises(RefundDecryptError, match="padding"):
        decrypt_req_info(_raw_encrypt(plain + tail), V.KEY)


@pytest.mark.parametrize(
    "garbage",
    ["not base64 at all!", "", "QUJD", "====", V.REQ_INFO_12_4[:-4], "\u4e2d\u6587"],
    ids=["symbols", "empty", "short", "padding_only", "truncated", "non_ascii"],
)
def test_garbage_base64(garbage):
    with pytest.raises(RefundDecryptError):
        decrypt_req_info(garbage, V.KEY)


def test_wrong_root_or_not_xml():
    for plain in (b"<xml><a>1</a></xml>", b"just text here!", b"\xff\xfe not utf8"):
        pad = 16 - len(plain) % 16
        with pytest.raises(RefundDecryptError, match="XML"):
            decrypt_req_info(_raw_encrypt(plain + bytes([pad]) * pad), V.KEY)


def test_decrypt_error_is_value_error_without_key():
    with pytest.raises(ValueError) as info:
        decrypt_req_info(V.REQ_INFO_12_4, "secret-key-never-shown-0000000000")
    assert "secret-key" not in str(info.value)
