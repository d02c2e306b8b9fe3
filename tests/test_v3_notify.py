"""v3 notifies on /notify and /refund-notify: accepted once, every refusal changes nothing."""

import json
import logging

import pytest

from tests.flow_helpers import (Browser, checkout_to_pay_page, notify_fields, order_row,
                                out_trade_no_of, signed_notify)
from tests.v3_notify_helpers import notify, refund_resource, transaction
from tornpay.storage.models import Delivery, Event, Notification, Order, Refund

KEY = "192006250b4c09247ec02edce69f6a2d"


@pytest.fixture
def api_version():
    return "v3"


@pytest.fixture
def v3_order(http_client, tp_settings, io_loop):
    browser = Browser(http_client, tp_settings.server.public_url)
    no = out_trade_no_of(io_loop.run_sync(lambda: checkout_to_pay_page(browser, "coach-205")))
    order = order_row(no)
    assert (order.state, order.api_version, order.sign_type) == ("PREPAID", "v3", "RSA")
    return order


def world():
    return {"orders": {o["out_trade_no"]: o for o in Order.select().dicts()},
            "events": Event.select().count(), "deliveries": Delivery.select().count(),
            "refunds": {r["out_refund_no"]: r for r in Refund.select().dicts()}}


async def post(http_client, base_url, headers, body, path="/wxpay/notify"):
    return await http_client.fetch(base_url + path, method="POST", body=body, headers=headers,
                                   raise_error=False)


@pytest.mark.gen_test
async def test_v3_notify_pays_once_and_answers_204(http_client, base_url, v3_order):
    headers, body = notify(transaction(v3_order))
    first = await post(http_client, base_url, headers, body)
    assert (first.code, first.body) == (204, b"")
    again = await post(http_client, base_url, headers, body)
    assert again.code == 204
    order = order_row(v3_order.out_trade_no)
    assert (order.state, order.transaction_id, order.time_end) == (
        "PAID", "4200002315202406013425869417", "20261202100005")
    outcomes = [n.outcome for n in Notification.select().order_by(Notification.id)]
    assert outcomes == ["accepted", "duplicate"]


def _other_key():
    from cryptography.hazmat.primitives.asymmetric import rsa
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


CASES = {
    "bad_signature": (lambda o: notify(transaction(o), signer=_other_key()), "bad_signature"),
    "tampered_body": (lambda o: notify(transaction(o), tamper="body"), "bad_signature"),
    "probe": (lambda o: notify(transaction(o), signature="WECHATPAY/SIGNTEST/abc"),
              "signature_probe"),
    "wrong_serial": (lambda o: notify(transaction(o),
                                      serial="PUB_KEY_ID_0110000100209901010000000099"),
                     "unknown_serial"),
    "stale_timestamp": (lambda o: notify(transaction(o), stamp=1700000000), "stale_timestamp"),
    "tampered_ciphertext": (lambda o: notify(transaction(o), tamper="ciphertext"),
                            "does not decrypt"),
    "tampered_tag": (lambda o: notify(transaction(o), tamper="tag"), "does not decrypt"),
    "wrong_aad": (lambda o: notify(transaction(o), aad="refund"), "does not decrypt"),
    "wrong_apiv3_key": (lambda o: notify(transaction(o), key="x" * 32), "does not decrypt"),
    "wrong_amount": (lambda o: notify(transaction(o, total=o.total_fee + 1)), "total_fee"),
    "wrong_mchid": (lambda o: notify(transaction(o, mchid="1900000109")), "mch_id"),
    "wrong_appid": (lambda o: notify(transaction(o, appid="wx0000000000000000")), "appid"),
    "unknown_order": (lambda o: notify(dict(transaction(o), out_trade_no="TP00000000000000")),
                      "unknown out_trade_no"),
    "refund_resource": (lambda o: notify(transaction(o), original="refund"),
                        "at the transaction endpoint"),
    "unsigned_json": (lambda o: ({"Content-Type": "application/json"},
                                 json.dumps(transaction(o)).encode()), "missing_headers"),
}


@pytest.mark.gen_test
@pytest.mark.parametrize("case", sorted(CASES))
async def test_v3_refusals_change_nothing_and_say_why(http_client, base_url, v3_order, caplog,
                                                      case):
    build, why = CASES[case]
    headers, body = build(v3_order)
    before = world()
    with caplog.at_level(logging.WARNING):
        reply = await post(http_client, base_url, headers, body)
    assert reply.code == 400, (reply.code, reply.body)
    assert json.loads(reply.body)["code"] == "FAIL"
    assert world() == before
    refused = Notification.get(Notification.outcome == "refused")
    assert why in refused.reason and why in caplog.text


@pytest.mark.gen_test
async def test_v2_notify_for_a_v3_order_is_refused(http_client, base_url, v3_order):
    before = world()
    body = signed_notify(notify_fields(v3_order), KEY, "MD5")
    reply = await post(http_client, base_url, {"Content-Type": "text/xml"}, body)
    assert reply.code == 200 and b"FAIL" in reply.body and b"wrong API generation" in reply.body
    assert world() == before


@pytest.mark.gen_test
@pytest.mark.parametrize("api_version", ["v2"])
async def test_v3_notify_for_a_v2_order_is_refused(http_client, base_url, tp_settings,
                                                   api_version):
    browser = Browser(http_client, tp_settings.server.public_url)
    no = out_trade_no_of(await checkout_to_pay_page(browser, "coach-205"))
    order = order_row(no)
    assert order.api_version == "v2"
    before = world()
    headers, body = notify(transaction(order))
    reply = await post(http_client, base_url, headers, body)
    assert reply.code == 400 and b"wrong API generation" in reply.body
    assert world() == before


async def _paid_with_refund(ctx, order):
    from tornpay.orders.admin import query_order
    from tornpay.orders.refunds import request_refund
    ctx.simulator.config.refund_delay_seconds = None  # the test sends the refund notify
    sim_order = ctx.simulator.find_order(order.out_trade_no)
    ctx.simulator.pay(sim_order, notify=False)  # paid at WeChat; the query finds it
    assert await query_order(ctx, order.out_trade_no) == "SUCCESS"
    refund = await request_refund(ctx, order.out_trade_no, 100, "test")
    assert refund.state == "PROCESSING"
    return Refund.get_by_id(refund.out_refund_no), order_row(order.out_trade_no)


@pytest.mark.gen_test
@pytest.mark.parametrize("case", ["good", "bad_signature", "wrong_amount", "tampered_tag"])
async def test_v3_refund_notify(http_client, base_url, ctx, v3_order, case):
    refund, order = await _paid_with_refund(ctx, v3_order)
    kwargs = {"original": "refund"}
    plain = refund_resource(refund, order)
    if case == "bad_signature":
        kwargs["signer"] = _other_key()
    elif case == "wrong_amount":
        plain = refund_resource(refund, order, refund_fee=refund.refund_fee + 1)
    elif case == "tampered_tag":
        kwargs["tamper"] = "tag"
    headers, body = notify(plain, **kwargs)
    before = world()
    reply = await post(http_client, base_url, headers, body, "/wxpay/refund-notify")
    if case == "good":
        assert reply.code == 204
        assert Refund.get_by_id(refund.out_refund_no).state == "SUCCESS"
        assert order_row(order.out_trade_no).refunded_fee == 100
    else:
        assert reply.code == 400 and json.loads(reply.body)["code"] == "FAIL"
        assert world() == before
