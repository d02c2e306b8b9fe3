"""Known-answer tests of the pure v3 protocol against wechatpay-v3-reference.md Appendix A."""

import hashlib
import json

import pytest

from tests import vectors_v3 as V
from tornpay.protocol.v3 import aead
from tornpay.protocol.v3.certs import decode_certificates, verify_certificates_reply
from tornpay.protocol.v3.keys import (KeyFileError, private_key_from_pem, public_key_from_pem,
                                      same_serial, serial_hex)
from tornpay.protocol.v3.signing import (authorization, parse_authorization, pay_sign,
                                         request_message, rsa_sign, rsa_verify)
from tornpay.protocol.v3.verify import (PlatformCert, VerifyError, WeChatPayKeys,
                                        verify_signed)

MERCHANT = private_key_from_pem(V.MERCHANT_KEY.encode())
WECHATPAY_PUBLIC = public_key_from_pem(V.WECHATPAY_PUBLIC.encode())
PLATFORM_PUBLIC = public_key_from_pem(V.PLATFORM_CERT.encode())
FAR = 4102444800.0  # 2100-01-01: validity window for the test certificate


def platform_keys():
    return WeChatPayKeys(certificates=[PlatformCert(V.PLATFORM_SERIAL, PLATFORM_PUBLIC, 0, FAR)])


def public_keys():
    return WeChatPayKeys(public_key=WECHATPAY_PUBLIC, public_key_id=V.PUB_KEY_ID)


def headers(ts, nonce, sig, serial):
    return {"Wechatpay-Timestamp": str(ts), "Wechatpay-Nonce": nonce,
            "Wechatpay-Signature": sig, "Wechatpay-Serial": serial,
            "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048"}


@pytest.mark.parametrize("method,url,ts,nonce,body,expected", [
    ("POST", "/v3/pay/transactions/jsapi", 1735689600, "593BEC0C930BF1AFEB40B4A08C8FB242",
     V.V1_BODY, V.SIG_V1),
    ("GET", "/v3/pay/transactions/out-trade-no/20250101080000000123?mchid=1900000109",
     1735689700, "A1B2C3D4E5F60718293A4B5C6D7E8F90", b"", V.SIG_V2),
    ("POST", "/v3/pay/transactions/out-trade-no/20250101080000000123/close", 1735690000,
     "0F1E2D3C4B5A69788796A5B4C3D2E1F0", b'{"mchid":"1900000109"}', V.SIG_V3),
    ("GET", "/v3/billdownload/file?token=TESTTOKEN0123456789&tartype=gzip", 1735779600,
     "7C6B5A4938271605F4E3D2C1B0A99887", b"", V.SIG_V4),
])
def test_request_signatures_reproduce_v1_to_v4(method, url, ts, nonce, body, expected):
    header = authorization(V.MCHID, V.MERCHANT_SERIAL, MERCHANT, method, url, str(ts), nonce,
                           body)
    items = parse_authorization(header)
    assert items["signature"] == expected
    assert items["serial_no"] == V.MERCHANT_SERIAL and items["mchid"] == V.MCHID
    merchant_public = public_key_from_pem(V.MERCHANT_PUBLIC.encode())
    assert rsa_verify(merchant_public, request_message(method, url, str(ts), nonce, body),
                      expected)


def test_reserialised_v1_body_does_not_verify():
    redumped = json.dumps(json.loads(V.V1_BODY)).encode()
    message = request_message("POST", "/v3/pay/transactions/jsapi", "1735689600",
                              "593BEC0C930BF1AFEB40B4A08C8FB242", redumped)
    assert not rsa_verify(MERCHANT.public_key(), message, V.SIG_V1)


def test_v5_replies_verify_with_the_key_their_serial_names():
    body = b'{"prepay_id":"wx01080000912345a1b2c3d4e5f607182900"}'
    nonce = "C5E6F7A8B9C0D1E2F3A4B5C6D7E8F901"
    assert verify_signed(public_keys(), headers(1735689601, nonce, V.SIG_V5a, V.PUB_KEY_ID),
                         body, now=1735689601) == V.PUB_KEY_ID
    empty = headers(1735690001, "D7E8F9A0B1C2D3E4F5A6B7C8D9E0F1A2", V.SIG_V5b, V.PUB_KEY_ID)
    verify_signed(public_keys(), empty, b"", now=1735690001)  # a signed 204 (P9)
    cert = headers(1735689601, nonce, V.SIG_V5c, V.PLATFORM_SERIAL.lower())
    assert verify_signed(platform_keys(), cert, body, now=1735689601)
    # (c)'s signature under the public-key serial: the serial selects the wrong key.
    both = public_keys()
    both.add(platform_keys().certificates())
    with pytest.raises(VerifyError) as err:
        verify_signed(both, headers(1735689601, nonce, V.SIG_V5c, V.PUB_KEY_ID), body,
                      now=1735689601)
    assert err.value.reason == "bad_signature"


@pytest.mark.parametrize("change,reason", [
    ("body", "bad_signature"), ("probe", "signature_probe"), ("stale", "stale_timestamp"),
    ("serial", "unknown_serial"), ("missing", "missing_headers"),
])
def test_v5_refusals(change, reason):
    body = b'{"prepay_id":"wx01080000912345a1b2c3d4e5f607182900"}'
    h = headers(1735689601, "C5E6F7A8B9C0D1E2F3A4B5C6D7E8F901", V.SIG_V5a, V.PUB_KEY_ID)
    now = 1735689601
    if change == "body":
        body = body.replace(b"wx01", b"wx02")
    elif change == "probe":
        h["Wechatpay-Signature"] = V.SIG_V5d
    elif change == "stale":
        now += 300
    elif change == "serial":
        h["Wechatpay-Serial"] = "PUB_KEY_ID_0119000001092025010100000002"
    else:
        del h["Wechatpay-Nonce"]
    with pytest.raises(VerifyError) as err:
        verify_signed(public_keys(), h, body, now=now)
    assert err.value.reason == reason


def test_v6_pay_sign():
    package = "prepay_id=" + V.PREPAY_ID
    args = (V.APPID, "1735689605", "e61463f8efa94090b1f366cccfbbb444")
    assert pay_sign(MERCHANT, *args, package) == V.SIG_V6
    assert pay_sign(MERCHANT, *args, V.PREPAY_ID) == V.SIG_V6bare != V.SIG_V6


@pytest.mark.parametrize("body,ts,nonce,sig,serial,plain,aad", [
    (V.V7_BODY, 1735689672, "Q8w7E6r5T4y3U2i1O0p9A8s7D6f5G4h3", V.SIG_V7, V.PUB_KEY_ID,
     V.V7_PLAIN, "transaction"),
    (V.V8_BODY, 1735783207, "Z1x2C3v4B5n6M7a8S9d0F1g2H3j4K5l6", V.SIG_V8, V.PLATFORM_SERIAL,
     V.V8_PLAIN, "refund"),
])
def test_v7_v8_notifies_verify_and_decrypt(body, ts, nonce, sig, serial, plain, aad):
    keys = public_keys()
    keys.add(platform_keys().certificates())
    verify_signed(keys, headers(ts, nonce, sig, serial), body, now=ts + 10)
    resource = json.loads(body)["resource"]
    assert aead.decrypt_resource(V.APIV3_KEY, resource) == plain
    for bad in ({"associated_data": ""}, {"associated_data": aad + "x"},
                {"ciphertext": "A" + resource["ciphertext"][1:]}):
        with pytest.raises(aead.DecryptError):
            aead.decrypt_resource(V.APIV3_KEY, dict(resource, **bad))
    with pytest.raises(aead.DecryptError):
        aead.decrypt_resource("0123456789abcdefghijklmnopqrstuw", resource)
    redumped = json.dumps(json.loads(body)).encode()
    with pytest.raises(VerifyError):
        verify_signed(keys, headers(ts, nonce, sig, serial), redumped, now=ts + 10)


def test_encrypt_reproduces_v7_ciphertext():
    resource = json.loads(V.V7_BODY)["resource"]
    assert aead.encrypt(V.APIV3_KEY, resource["nonce"], "transaction",
                        V.V7_PLAIN) == resource["ciphertext"]


def test_v9_certificates_decrypt_and_bootstrap_verify():
    h = headers(1735689500, "N0n1C2e3F4o5R6c7E8r9T0s1L2i3S4t5", V.SIG_V9, V.PLATFORM_SERIAL)
    certs = verify_certificates_reply(WeChatPayKeys(), V.APIV3_KEY, h, V.V9_BODY, 1735689500)
    assert [c.serial_no for c in certs] == [V.PLATFORM_SERIAL]
    assert certs[0].public_key.public_numbers() == PLATFORM_PUBLIC.public_numbers()
    with pytest.raises(VerifyError):  # another APIv3 key cannot read the list
        decode_certificates("0123456789abcdefghijklmnopqrstuw", V.V9_BODY)
    with pytest.raises(VerifyError):  # signed by no listed certificate
        verify_certificates_reply(WeChatPayKeys(), V.APIV3_KEY,
                                  dict(h, **{"Wechatpay-Signature": V.SIG_V5a}), V.V9_BODY,
                                  1735689500)


def test_v10_bill_hash():
    assert hashlib.sha1(V.BILL).hexdigest() == V.BILL_SHA1


def test_serials_compare_as_integers():
    from cryptography import x509
    cert = x509.load_pem_x509_certificate(V.PLATFORM_CERT.encode())
    assert serial_hex(cert) == V.PLATFORM_SERIAL
    assert same_serial("00" + V.PLATFORM_SERIAL.lower(), V.PLATFORM_SERIAL)
    assert not same_serial("not-hex", V.PLATFORM_SERIAL)


def test_rsa_sign_is_deterministic_and_key_checks():
    assert rsa_sign(MERCHANT, b"x") == rsa_sign(MERCHANT, b"x")
    with pytest.raises(KeyFileError):
        private_key_from_pem(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")


@pytest.mark.parametrize("value", [
    None, "", "WECHATPAY2-SHA256-RSA2048", 'WECHATPAY2-SHA256-RSA2048 mchid="1"',
    'OTHER mchid="1",nonce_str="n",signature="s",timestamp="1",serial_no="x"',
    'WECHATPAY2-SHA256-RSA2048 mchid="1",mchid="1",signature="s",timestamp="1",serial_no="x"',
])
def test_malformed_authorization(value):
    assert parse_authorization(value) is None
