"""The simulator's downloadbill: signed requests, gzip, WeChat's error replies and bill faults."""

import datetime
import gzip

import pytest

from bill_samples import ALL_BILL, load_ledger
from sim_helpers import API_KEY, APPID, MCH_ID, app, box, sim, sim_config, signed, state  # noqa
from tornpay.bills.parse import parse_bill
from tornpay.protocol.xmlcodec import decode_xml


def request(**over):
    params = {"appid": APPID, "mch_id": MCH_ID, "nonce_str": "d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6",
              "bill_date": "20240601", "bill_type": "ALL"}
    params.update(over)
    return {k: v for k, v in params.items() if v is not None}


async def download(sim, key=API_KEY, **over):
    response = await sim.raw("/pay/downloadbill", signed(request(**over), key))
    assert response.code == 200
    return response.body


@pytest.mark.gen_test
async def test_bill_of_the_ledger_plain_and_gzip(sim, state):
    load_ledger(state)
    assert await download(sim) == ALL_BILL
    zipped = await download(sim, tar_type="GZIP")
    assert zipped[:2] == b"\x1f\x8b" and gzip.decompress(zipped) == ALL_BILL


@pytest.mark.gen_test
async def test_errors_are_wechats_xml(sim, state):
    load_ledger(state)
    bad_sign = decode_xml(await download(sim, key="0" * 32))
    assert (bad_sign["return_code"], bad_sign["return_msg"]) == ("FAIL", "签名错误")
    assert decode_xml(await download(sim, bill_type="NOPE"))["return_msg"] == "invalid bill_type"
    empty = decode_xml(await download(sim, bill_date="20240602"))
    assert (empty["return_msg"], empty["error_code"]) == ("No Bill Exist", "20002")


@pytest.mark.gen_test
async def test_today_is_served_from_the_records(sim, state):
    order = await sim.paid_order()
    today = datetime.datetime.now(datetime.timezone(datetime.timedelta(hours=8))).date()
    bill = parse_bill(await download(sim, bill_date=today.strftime("%Y%m%d")))
    assert [(p.out_trade_no, p.total_fee) for p in bill.payments] == [
        (order["out_trade_no"], 100)]


@pytest.mark.gen_test
async def test_bill_faults(sim, state):
    load_ledger(state)
    state.faults.set("bill_creating", count=1)
    assert decode_xml(await download(sim))["return_msg"] == "Bill Creating"
    state.faults.set("bill_no_bill", count=1)
    assert decode_xml(await download(sim))["return_msg"] == "No Bill Exist"
    state.faults.set("bill_unknown_order", count=1)
    state.faults.set("bill_amount_differs", count=1)
    bill = parse_bill(await download(sim))  # still adds up: it disagrees with the merchant only
    fees = {p.out_trade_no: p.total_fee for p in bill.payments}
    assert fees["20240601123045000123"] == 101 and fees["SIMFOREIGN20240601"] == 100
    assert parse_bill(await download(sim)) == parse_bill(ALL_BILL)  # faults used up
