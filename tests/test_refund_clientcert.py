"""tornpay's refund path against the simulator's strict default: no client cert, no refund."""

import pytest

from flow_helpers import paid_order
from tornpay.orders import refunds as refunds_mod
from tornpay.simulator.clientcert import NO_CERT
from tornpay.storage.models import Order


@pytest.fixture(params=[False, True], ids=["strict", "relaxed"])
def relaxed(request):
    return request.param


@pytest.fixture
def tp_overrides(relaxed):
    overrides = {"wechat": {"cert_file": "", "key_file": ""}}
    if relaxed:
        overrides["simulator"] = {"require_client_cert": False}
    return overrides


@pytest.mark.gen_test(timeout=20)
async def test_refund_needs_the_client_certificate_unless_relaxed(app, ctx, http_client,
                                                                  base_url, relaxed):
    out_trade_no = await paid_order(ctx, http_client, base_url)
    refund = await refunds_mod.request_refund(ctx, out_trade_no, 100)
    if relaxed:
        assert refund.state == "PROCESSING" and refund.refund_id
        return
    # Refused at layer 1 as WeChat's mutual TLS would: a definite FAILED, amount released.
    assert refund.state == "FAILED" and NO_CERT in refund.last_error
    assert Order.get_by_id(out_trade_no).reserved_refund_fee == 0
