"""Signing known answers: every Appendix B vector, both algorithms, and the edge cases of §3.5."""

import pytest

from tornpay.protocol.sign import (
    HMAC_SHA256,
    MD5,
    UnknownSignType,
    guess_sign_type,
    make_sign,
    sign_params,
    signing_string,
    verify_sign,
)

import vectors as V  # tests/ is on sys.path (pytest rootdir-relative import)

IDS = [v[0] for v in V.SIGN_VECTORS]


@pytest.mark.parametrize("vid,message,key,sign_type,expected", V.SIGN_VECTORS, ids=IDS)
def test_make_sign_known_answer(vid, message, key, sign_type, expected):
    assert make_sign(message, key, sign_type) == expected


@pytest.mark.parametrize("vid,message,key,sign_type,expected", V.SIGN_VECTORS, ids=IDS)
def test_verify_sign_known_answer(vid, message, key, sign_type, expected):
    received = dict(message, sign=expected)
    assert verify_sign(received, key, sign_type)
    other = HMAC_SHA256 if sign_type == MD5 else MD5
    # An MD5 sign is rejected when verifying as HMAC, and vice versa.
    assert not verify_sign(received, key, other)
    assert not verify_sign(received, key + "x", sign_type)


@pytest.mark.parametrize("vid,message,key,sign_type,expected", V.SIGN_VECTORS, ids=IDS)
def test_tampered_value_fails(vid, message, key, sign_type, expected):
    received = dict(message, sign=expected)
    name = next(n for n in sorted(received) if n != "sign" and received[n])
    received[name] = received[name] + "1"
    assert not verify_sign(received, key, sign_type)


def test_signing_string_of_official_example():
    assert signing_string(V.B1, V.KEY) == V.B1_SIGNING_STRING


def test_reply_messages_carry_their_own_sign():
    # The samples' own sign elements equal the Appendix B values (copy check).
    for vid, message, key, sign_type, expected in V.SIGN_VECTORS:
        if "sign" in message and vid != "B2":
            assert message["sign"] == expected, vid


def test_zero_kept_empty_skipped():
    # B16 has an empty refund_channel and "0" coupon fields (§8.4).
    assert V.B16["refund_channel"] == "" and V.B16["coupon_refund_fee"] == "0"
    text = signing_string(V.B16, V.KEY)
    assert "refund_channel" not in text
    assert "coupon_refund_fee=0&" in text and "coupon_refund_count=0&" in text
    without_empty = {k: v for k, v in V.B16.items() if k != "refund_channel"}
    assert make_sign(without_empty, V.KEY) == V.B16["sign"]
    without_zero = {k: v for k, v in V.B16.items() if k != "coupon_refund_fee"}
    assert make_sign(without_zero, V.KEY) != V.B16["sign"]


def test_int_zero_and_none():
    assert signing_string({"a": 0, "b": None, "c": "", "d": 1}, "k") == "a=0&d=1&key=k"


def test_sign_field_skipped():
    assert make_sign(dict(V.B1, sign="anything"), V.KEY) == make_sign(V.B1, V.KEY)
    assert "sign=" not in signing_string(V.B1, V.KEY).replace("nonce_str", "")


def test_unknown_fields_included():
    received = dict(V.B20, cash_fee_type="CNY")
    assert not verify_sign(received, V.KEY, MD5)
    received["sign"] = make_sign(received, V.KEY)
    assert verify_sign(received, V.KEY, MD5)
    assert "cash_fee_type=CNY" in signing_string(received, V.KEY)


def test_sign_type_field_is_signed():
    without = {k: v for k, v in V.B4.items() if k != "sign_type"}
    assert make_sign(without, V.KEY, HMAC_SHA256) != V.B4["sign"]


@pytest.mark.parametrize(
    "bad",
    [
        V.B3["sign"].lower(),  # case matters: WeChat signs upper-case hex
        V.B3["sign"][:-1],
        V.B3["sign"] + "0",
        V.B3["sign"][:-1] + "é",
        "",
        None,
    ],
)
def test_wrong_sign_forms_fail(bad):
    received = dict(V.B3)
    if bad is None:
        del received["sign"]
    else:
        received["sign"] = bad
    assert not verify_sign(received, V.KEY, MD5)


def test_unknown_sign_type():
    with pytest.raises(UnknownSignType):
        make_sign(V.B1, V.KEY, "SHA1")
    assert not verify_sign(V.B1, V.KEY, "SHA1")


def test_sign_params_adds_sign_and_sign_type():
    base = {k: v for k, v in V.B4.items() if k not in ("sign", "sign_type")}
    signed = sign_params(base, V.KEY, HMAC_SHA256)
    assert signed["sign_type"] == HMAC_SHA256
    assert signed["sign"] == V.B4["sign"]
    md5 = sign_params({k: v for k, v in V.B3.items() if k != "sign"}, V.KEY)
    assert "sign_type" not in md5 and md5["sign"] == V.B3["sign"]


def test_guess_sign_type():
    assert guess_sign_type(V.B4) == HMAC_SHA256
    assert guess_sign_type(V.B22) == HMAC_SHA256  # no sign_type: by length
    assert guess_sign_type(V.B20) == MD5
    assert guess_sign_type(V.B22, default=MD5) == MD5  # the order's type wins over length
