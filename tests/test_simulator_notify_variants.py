"""Issue 20 item 2: genuine notify variants as fault switches, checked by wechatpy independently."""

import pytest
import xmltodict
from wechatpy.pay.utils import calculate_signature, calculate_signature_hmac

from sim_helpers import (  # noqa: F401  (fixtures)
    API_KEY, APPID, MCH_ID, app, box, sim, sim_config, state, wait_for,
)
from tornpay.protocol.sign import HMAC_SHA256, MD5
from tornpay.simulator.faults import FAULTS
from tornpay.simulator.notifyfields import VARIANTS

WECHATPY = {MD5: calculate_signature, HMAC_SHA256: calculate_signature_hmac}


async def notify_with(sim, faults, sign_type=MD5, total_fee="100"):
    """Arm `faults`, pay a new order signed with `sign_type`; return (raw body, fields)."""
    for name in faults:
        code, reply = await sim.control("faults", {"name": name, "count": 1})
        assert code == 200, reply
    reply = await sim.api("/pay/unifiedorder", sim.order_params(total_fee=total_fee),
                          sign_type=sign_type)
    out_trade_no = sim.state.find_order(prepay_id=reply["prepay_id"]).out_trade_no
    code, _ = await sim.control("pay", {"out_trade_no": out_trade_no})
    assert code == 200
    await wait_for(lambda: sim.box.received)
    raw = sim.box.received[-1][1]
    fields = dict(xmltodict.parse(raw)["xml"])  # not our own decoder
    return raw, {k: (v or "") for k, v in fields.items()}


def genuine(fields, sign_type):
    """wechatpy's own signature over every received field but sign."""
    rest = {k: v for k, v in fields.items() if k != "sign"}
    return fields["sign"] == WECHATPY[sign_type](rest, API_KEY)


def test_every_variant_is_a_documented_fault():
    for name in list(VARIANTS) + ["notify_coupon", "bridge_ok_early"]:
        assert name in FAULTS and FAULTS[name]


@pytest.mark.parametrize("sign_type", [MD5, HMAC_SHA256])
@pytest.mark.gen_test
async def test_coupon_payment(sim, sign_type):
    raw, fields = await notify_with(sim, ["notify_coupon"], sign_type)
    assert genuine(fields, sign_type)
    total, cash, coupon = (int(fields[k]) for k in ("total_fee", "cash_fee", "coupon_fee"))
    assert total == 100 and cash < total and total - coupon == cash
    assert fields["coupon_count"] == "1" and fields["coupon_id_0"] and fields["coupon_fee_0"]
    assert fields["coupon_type_0"] == "NO_CASH" and fields["cash_fee_type"] == "CNY"
    assert int(fields["settlement_total_fee"]) == total - coupon
    query = await sim.api("/pay/orderquery", {"appid": APPID, "mch_id": MCH_ID, "nonce_str": "q",
                                              "out_trade_no": fields["out_trade_no"]})
    assert (query["total_fee"], query["cash_fee"]) == ("100", str(cash))


@pytest.mark.parametrize("sign_type", [MD5, HMAC_SHA256])
@pytest.mark.parametrize("with_sign_type", [False, True])
@pytest.mark.gen_test
async def test_sign_type_present_or_absent(sim, sign_type, with_sign_type):
    _, fields = await notify_with(sim, ["notify_sign_type"] if with_sign_type else [], sign_type)
    assert genuine(fields, sign_type)
    if with_sign_type:
        assert fields["sign_type"] == sign_type
    else:
        assert "sign_type" not in fields


@pytest.mark.gen_test
async def test_extra_fields_reordered_cash_fee_type_subscribed(sim):
    raw, fields = await notify_with(sim, ["notify_extra_fields", "notify_reordered",
                                          "notify_cash_fee_type", "notify_subscribed"])
    assert genuine(fields, MD5)
    assert fields["tornpay_sim_unknown"] and fields["promotion_detail"] and "version" in fields
    assert fields["sub_openid"] == ""  # an empty element, outside the signature
    assert fields["cash_fee_type"] == "CNY" and fields["is_subscribe"] == "Y"
    names = list(xmltodict.parse(raw)["xml"])
    assert names[0] == "sign" and names != sorted(names)


@pytest.mark.gen_test
async def test_plain_notify_is_unchanged(sim):
    _, fields = await notify_with(sim, [])
    assert genuine(fields, MD5)
    assert not {"coupon_fee", "sign_type", "cash_fee_type", "tornpay_sim_unknown"} & set(fields)
    assert fields["cash_fee"] == fields["total_fee"]
