"""The Python API in an embedding estate: create (product, own price), pay, query, refund, close."""

import json
import types

import pytest
import tornado.web

import tornpay
from conftest import base_settings_dict, merge
from flow_helpers import ALICE, wait_for
from tornpay import errors
from tornpay.storage.models import Event, Order

OVERRIDES = {
    # Closing needs an order older than WeChat's minimum age: none here, in both places.
    "simulator": {"close_min_age_seconds": 0},
    "orders": {"min_close_age_seconds": 0, "trade_types": ["JSAPI", "NATIVE", "MWEB"]},
}


class Recorder:
    """The estate's fulfilment: every hook call it receives, in order."""

    def __init__(self):
        self.calls = []

    def on_order_created(self, order):
        self.calls.append(("created", order.out_trade_no, order.total_fee))

    def on_paid(self, order):
        self.calls.append(("paid", order.out_trade_no, order.delivery_id))

    def on_cancel(self, order, reason):
        self.calls.append(("cancel", order.out_trade_no, reason))

    def on_refund(self, order, refund):
        self.calls.append(("refund", order.out_trade_no, refund.refund_fee))

    def of(self, kind, out_trade_no):
        return [c for c in self.calls if c[0] == kind and c[1] == out_trade_no]


@pytest.fixture
def estate(tmp_path, http_port, io_loop):
    settings = merge(base_settings_dict(tmp_path, http_port), OVERRIDES)
    del settings["server"]["prefix"]
    recorder = Recorder()
    tp = tornpay.routes(settings, prefix="/pay", plugins=[recorder], env={})
    app = tornado.web.Application(tp.routes, xsrf_cookies=True,
                                  cookie_secret="estate-secret-0123456789abcdef")
    tp.start()
    yield types.SimpleNamespace(app=app, tp=tp, recorder=recorder)
    io_loop.run_sync(tp.stop)


@pytest.fixture
def app(estate):
    return estate.app


async def sim_pay(http_client, base_url, out_trade_no):
    response = await http_client.fetch(base_url + "/_sim/control/pay", method="POST",
                                       body=json.dumps({"out_trade_no": out_trade_no}))
    assert json.loads(response.body)["ok"]


def events(out_trade_no, hook):
    return Event.select().where((Event.out_trade_no == out_trade_no) & (Event.hook == hook))


@pytest.mark.gen_test(timeout=30)
async def test_create_by_product_pay_and_refund_partially_then_fully(http_client, base_url,
                                                                     estate):
    tp, rec = estate.tp, estate.recorder
    order = await tp.create_order(product_id="coach-205", payer=ALICE, client_ip="10.1.2.3",
                                  attach="booking-7")
    assert (order.state, order.total_fee, order.trade_type) == ("PREPAID", 9900, "JSAPI")
    assert order.attach == "booking-7" and order.body == "Group clinic"
    assert set(order.pay_params) == {"appId", "timeStamp", "nonceStr", "package", "signType",
                                     "paySign"}
    assert rec.of("created", order.out_trade_no) == [("created", order.out_trade_no, 9900)]
    await sim_pay(http_client, base_url, order.out_trade_no)
    await wait_for(lambda: rec.of("paid", order.out_trade_no), timeout=10)
    paid = await tp.get_order(order.out_trade_no)
    assert paid.state == "PAID" and paid.transaction_id and paid.pay_params is None

    first = await tp.refund(order.out_trade_no, fee=900, reason="one seat less")
    assert first.state in ("PROCESSING", "SUCCESS") and first.refund_fee == 900
    await wait_for(lambda: len(rec.of("refund", order.out_trade_no)) == 1, timeout=10)
    assert (await tp.get_order(order.out_trade_no)).state == "PARTIAL_REFUNDED"
    with pytest.raises(errors.InvalidState):
        await tp.refund(order.out_trade_no, fee=9001)  # more than is left: nothing changes
    rest = await tp.refund(order.out_trade_no)  # None: everything left
    assert rest.refund_fee == 9000
    await wait_for(lambda: len(rec.of("refund", order.out_trade_no)) == 2, timeout=10)
    done = await tp.get_order(order.out_trade_no)
    assert (done.state, done.refunded_fee) == ("REFUNDED", 9900)
    # Each hook once: one paid, two refunds (900 then 9000), nothing repeated.
    await tp.query(order.out_trade_no)
    assert [c[2] for c in rec.of("refund", order.out_trade_no)] == [900, 9000]
    assert len(rec.of("paid", order.out_trade_no)) == 1
    assert events(order.out_trade_no, "on_paid").count() == 1


@pytest.mark.gen_test(timeout=30)
async def test_create_with_an_estate_price_and_query_finds_a_missed_payment(
        http_client, base_url, estate):
    tp, rec = estate.tp, estate.recorder
    order = await tp.create_order(product_id="basket-42", payer=ALICE, body="Basket of 3 items",
                                  total_fee=12345)
    row = Order.get_by_id(order.out_trade_no)
    assert (row.total_fee, row.body, row.product_id) == (12345, "Basket of 3 items", "basket-42")
    assert "<total_fee>12345</total_fee>" in row.unified_request
    # Paid at WeChat with the notify lost: query applies the payment like a notify.
    await http_client.fetch(base_url + "/_sim/control/faults", method="POST",
                            body=json.dumps({"name": "notify_drop"}))
    await sim_pay(http_client, base_url, order.out_trade_no)
    queried = await tp.query(order.out_trade_no)
    assert queried.state == "PAID"
    await wait_for(lambda: rec.of("paid", order.out_trade_no), timeout=10)
    await tp.query(order.out_trade_no)
    assert len(rec.of("paid", order.out_trade_no)) == 1


@pytest.mark.gen_test(timeout=30)
async def test_close_an_unpaid_order_once(http_server, estate):
    tp, rec = estate.tp, estate.recorder
    order = await tp.create_order(product_id="coach-101", payer=ALICE)
    closed = await tp.close(order.out_trade_no)
    assert closed.state == "CLOSED" and closed.pay_params is None
    await wait_for(lambda: rec.of("cancel", order.out_trade_no), timeout=10)
    with pytest.raises(errors.InvalidState):
        await tp.close(order.out_trade_no)
    assert rec.of("cancel", order.out_trade_no) == [("cancel", order.out_trade_no, "closed")]
    assert events(order.out_trade_no, "on_cancel").count() == 1


@pytest.mark.gen_test(timeout=30)
async def test_typed_errors(http_server, estate):
    tp = estate.tp
    with pytest.raises(errors.UnknownProduct):
        await tp.create_order(product_id="no-such-thing", payer=ALICE)
    with pytest.raises(errors.OrderNotFound):
        await tp.get_order("TP0000000000000000000000000000")
    with pytest.raises(errors.OrderNotFound):
        await tp.refund("TP0000000000000000000000000000")
    with pytest.raises(errors.TradeTypeNotEnabled):
        await tp.create_order(product_id="coach-101", payer=ALICE, trade_type="MINIPROGRAM")
    for bad in (0, -1, 1.5, "100", True):
        with pytest.raises(errors.InvalidRequest):
            await tp.create_order(payer=ALICE, body="x", total_fee=bad)
    order = await tp.create_order(product_id="coach-101", payer=ALICE)
    with pytest.raises(errors.InvalidState):
        await tp.refund(order.out_trade_no)  # not paid
    assert Order.select().count() == 1


@pytest.mark.gen_test(timeout=30)
async def test_wechat_refusal_carries_its_code(http_client, base_url, estate):
    await http_client.fetch(base_url + "/_sim/control/faults", method="POST",
                            body=json.dumps({"name": "systemerror", "endpoint": "unifiedorder"}))
    with pytest.raises(errors.WeChatRefused) as refused:
        await estate.tp.create_order(product_id="coach-101", payer=ALICE)
    assert refused.value.wechat_code == "SYSTEMERROR" and refused.value.retryable
    assert Order.get_by_id(refused.value.out_trade_no).state == "CREATED"


@pytest.mark.gen_test(timeout=30)
async def test_an_estate_price_is_never_a_reused_order(http_server, estate):
    tp = estate.tp
    by_product = [await tp.create_order(product_id="coach-101", payer=ALICE) for _ in range(2)]
    assert by_product[0].out_trade_no == by_product[1].out_trade_no  # the limits' reuse
    priced = [await tp.create_order(product_id="basket", payer=ALICE, body="Basket",
                                    total_fee=700) for _ in range(2)]
    assert priced[0].out_trade_no != priced[1].out_trade_no
    with pytest.raises(errors.TooManyOpenOrders):
        for _ in range(5):  # orders.max_open_per_payer: 5 open orders at most
            await tp.create_order(product_id="basket", payer=ALICE, body="Basket",
                                  total_fee=700)
    assert Order.select().count() == 5


@pytest.mark.gen_test(timeout=30)
async def test_json_api_in_an_estate_with_xsrf_cookies(http_client, base_url, estate):
    from flow_helpers import openid_cookie

    cookie = openid_cookie(estate.tp.settings, ALICE)
    response = await http_client.fetch(
        base_url + "/pay/api/orders", method="POST", raise_error=False,
        body=json.dumps({"product_id": "coach-101"}),
        headers={"Cookie": f"tornpay_openid={cookie}"})
    assert response.code == 403
    assert json.loads(response.body)["error"]["code"] == "xsrf_failed"
    response = await http_client.fetch(
        base_url + "/pay/api/orders", method="POST", raise_error=False,
        body=json.dumps({"product_id": "coach-101"}),
        headers={"Cookie": f"tornpay_openid={cookie}; _xsrf=00112233", "X-XSRFToken": "00112233"})
    assert response.code == 201 and json.loads(response.body)["state"] == "PREPAID"


@pytest.mark.gen_test(timeout=30)
async def test_native_and_mweb_from_an_estate(http_client, base_url, estate):
    tp, rec = estate.tp, estate.recorder
    native = await tp.create_order(product_id="coach-101", payer="estate-user-7",
                                   trade_type="NATIVE", client_ip="10.0.0.7")
    assert native.trade_type == "NATIVE" and native.openid == ""
    assert native.pay_params["code_url"].startswith("weixin://wxpay/bizpayurl?pr=")
    mweb = await tp.create_order(payer="estate-user-7", trade_type="MWEB", body="Basket",
                                 total_fee=300, client_ip="10.0.0.7")
    assert mweb.pay_params["mweb_url"] and Order.get_by_id(mweb.out_trade_no).payer == \
        "estate-user-7"
    await sim_pay(http_client, base_url, native.out_trade_no)
    await wait_for(lambda: rec.of("paid", native.out_trade_no), timeout=10)
    assert (await tp.get_order(native.out_trade_no)).state == "PAID"
    with pytest.raises(errors.InvalidRequest):
        await tp.create_order(product_id="coach-101", trade_type="NATIVE")  # no payer
