"""Parsing the daily bill: the reference's samples, BOM/CRLF, gzip, the legacy layout, bad bills."""

import datetime
import gzip
import hashlib

import pytest

from bill_samples import (ALL_BILL, ALL_HEADER, ALL_ROWS, ALL_SUMMARY, C15_ALL, C16_SUCCESS,
                          C17_REFUND, LEGACY, SUMMARY_HEADER, load_ledger)
from sim_helpers import make_config
from tornpay.bills.parse import BillFormatError, parse_bill, yuan_to_fen
from tornpay.simulator.billapi import collect_rows, render_bill
from tornpay.simulator.state import SimulatorState


def test_sample_is_the_references_bytes():
    assert hashlib.sha256(ALL_BILL).hexdigest() == C15_ALL


def test_all_sample_parses_to_fen_and_utc():
    bill = parse_bill(ALL_BILL)
    assert bill.layout == "current"
    assert [(p.out_trade_no, p.total_fee, p.trade_type) for p in bill.payments] == [
        ("20240601123045000123", 1, "JSAPI"), ("20240601140500000201", 9900, "NATIVE"),
        ("20240601153000000301", 2580, "MWEB")]
    assert bill.payments[1].transaction_id == "4200002317202406012718350951"
    assert bill.payments[0].trade_time == datetime.datetime(2024, 6, 1, 4, 31, 10)  # 12:31 +08
    (refund,) = bill.refunds
    assert (refund.out_trade_no, refund.out_refund_no, refund.refund_fee, refund.status) == (
        "20240601140500000201", "R20240601000007", 1900, "SUCCESS")
    # C14: payments 12481 fen, refunds 1900 fen.
    assert sum(p.total_fee for p in bill.payments) == 12481


def test_framing_does_not_matter_and_gzip_is_read():
    plain = "\n".join([ALL_HEADER] + ALL_ROWS + [SUMMARY_HEADER, ALL_SUMMARY]).encode()
    expected = parse_bill(ALL_BILL)
    assert parse_bill(plain) == expected
    assert parse_bill(gzip.compress(ALL_BILL)) == expected


def test_legacy_layout_by_header_name_with_commas_inside_fields():
    bill = parse_bill(LEGACY.encode("utf-8"))
    assert bill.layout == "legacy"
    assert [(p.out_trade_no, p.total_fee) for p in bill.payments] == [("LEGACY0001", 1234)]
    assert [(r.out_refund_no, r.refund_fee) for r in bill.refunds] == [("LR0001", 200)]


def test_yuan_becomes_fen_exactly():
    assert [yuan_to_fen(v) for v in ("0.01", "25.80", "99.00", "-0.11", "0.00")] == [
        1, 2580, 9900, -11, 0]


@pytest.mark.parametrize("body", [
    b"<xml><return_code>FAIL</return_code><return_msg>No Bill Exist</return_msg></xml>",
    ALL_BILL.replace("`4,`124.81".encode(), "`5,`124.81".encode()),  # summary miscounts
    ALL_BILL.replace("`124.81,`19.00\r\n".encode(), "`124.80,`19.00\r\n".encode()),
    ALL_BILL.replace(SUMMARY_HEADER.encode(), b"something else"),
    b"\x1f\x8b not gzip at all",
    ALL_BILL.replace("`99.00,`0.00,`".encode(), "`99.00,`".encode(), 1),  # a field lost
])
def test_unreadable_bills_are_refused(body):
    with pytest.raises(BillFormatError):
        parse_bill(body)


@pytest.mark.parametrize("bill_type,digest", [("ALL", C15_ALL), ("SUCCESS", C16_SUCCESS),
                                              ("REFUND", C17_REFUND)])
def test_simulator_renders_the_references_bills_byte_for_byte(bill_type, digest):
    state = SimulatorState(make_config())
    load_ledger(state)
    rows = collect_rows(state, "10000100", datetime.date(2024, 6, 1), bill_type)
    body = render_bill(rows, bill_type)
    assert hashlib.sha256(body).hexdigest() == digest
    if bill_type != "REFUND":
        parse_bill(body)
