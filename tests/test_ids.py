"""Nonces and server-made order/refund numbers: length, charset, uniqueness, validation."""

import collections
import re

import pytest

from tornpay.protocol.ids import (is_valid_out_refund_no, is_valid_out_trade_no, make_out_refund_no,
                                  make_out_trade_no, nonce_str)

ALNUM = re.compile(r"^[A-Za-z0-9]+$")


@pytest.mark.parametrize("length", [1, 16, 32])
def test_nonce_length_and_charset(length):
    for _ in range(200):
        nonce = nonce_str(length)
        assert len(nonce) == length and ALNUM.match(nonce)


@pytest.mark.parametrize("length", [0, 33])
def test_nonce_length_out_of_range(length):
    with pytest.raises(ValueError):
        nonce_str(length)


def test_nonce_uses_all_62_characters_evenly():
    counts = collections.Counter("".join(nonce_str() for _ in range(5000)))
    assert len(counts) == 62
    expected = 5000 * 32 / 62
    assert all(0.8 * expected < n < 1.2 * expected for n in counts.values())


def test_order_and_refund_numbers_are_valid_and_unique():
    trades = {make_out_trade_no() for _ in range(2000)}
    refunds = {make_out_refund_no() for _ in range(2000)}
    assert len(trades) == 2000 and len(refunds) == 2000
    assert all(is_valid_out_trade_no(t) and len(t) <= 32 for t in trades)
    assert all(is_valid_out_refund_no(r) for r in refunds)


@pytest.mark.parametrize("value", ["", "a" * 33, "TP 1", "TP|1", "订单", None, 12345, "a\n"])
def test_invalid_out_trade_no(value):
    assert not is_valid_out_trade_no(value)
