"""The whole JSAPI flow on loopback against the simulator, and every refusal on the way."""

import json
import logging
import re
import types
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.flow_helpers import (ALICE, BOB, Browser, checkout_to_pay_page, jsapi_from_page,
                                location, order_row, out_trade_no_of, sign_in, wait_for)
from tornpay.orders import service
from tornpay.orders.service import jsapi_params
from tornpay.storage.models import Notification, Order

REF_KEY = "192006250b4c09247ec02edce69f6a2d"


@pytest.fixture(params=["MD5", "HMAC-SHA256"])
def tp_overrides(request):
    return {"wechat": {"sign_type": request.param}}


@pytest.fixture
def browser(http_client, tp_settings):
    # public_url (127.0.0.1), not base_url (localhost): the registered pay directory is on it.
    return Browser(http_client, tp_settings.server.public_url)


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch):
    monkeypatch.setattr(service, "RETRY_BACKOFF_SECONDS", 0.01)


async def pay_in_simulator(browser, pay_path):
    """Open the pay page, then do what the simulator's bridge does when the payer taps Pay."""
    page = await browser.get(pay_path)
    assert page.code == 200, page.body
    params = jsapi_from_page(page.body)
    reply = await browser.fetch("/_sim/cashier/pay", method="POST",
                                body=json.dumps({"params": params}),
                                headers={"Referer": browser.url(pay_path)})
    assert json.loads(reply.body)["ok"] is True, reply.body
    return params


# -- the happy path, in both sign types ------------------------------------------------


@pytest.mark.gen_test
@pytest.mark.parametrize("api_version", ["v2", "v3"])
async def test_full_flow_pays_the_order(browser, ctx, tp_settings, api_version):
    start = await browser.get("/wxpay/checkout/coach-101")
    assert start.code == 302
    auth = urlsplit(location(start))
    assert auth.path == "/_sim/connect/oauth2/authorize" and auth.fragment == "wechat_redirect"
    query = parse_qs(auth.query)
    assert query["scope"] == ["snsapi_base"] and query["response_type"] == ["code"]
    assert query["redirect_uri"] == [tp_settings.server.public_url + "/wxpay/oauth/callback"]
    assert re.fullmatch(r"[A-Za-z0-9]{1,128}", query["state"][0])
    assert "tornpay_oauth" in browser.cookies

    callback = await sign_in(browser, location(start), ALICE)
    done = await browser.get(callback)
    assert done.code == 303
    pay_path = location(done)
    assert re.fullmatch(r"/wxpay/pay/[A-Za-z0-9_-]{1,32}", pay_path)
    cookie = " ".join(done.headers.get_list("Set-Cookie"))
    assert "tornpay_openid=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie

    no = out_trade_no_of(pay_path)
    order = order_row(no)
    assert (order.state, order.openid, order.total_fee) == ("PREPAID", ALICE, 1)
    assert order.api_version == api_version and order.prepay_id
    if api_version == "v2":
        assert order.sign_type == tp_settings.wechat.sign_type
        assert f"<out_trade_no><![CDATA[{no}]]></out_trade_no>" in order.unified_request
    else:  # the exact signed JSON, path first (re-sent byte for byte on a retry)
        assert order.sign_type == "RSA"
        assert order.unified_request.startswith("/v3/pay/transactions/jsapi\n{")
        assert f'"out_trade_no":"{no}"' in order.unified_request

    page = await browser.get(pay_path)
    text = page.body.decode()
    assert 'src="%s/_sim/jsbridge.js"' % tp_settings.server.public_url in text
    assert 'id="tornpay-pay-button"' in text and 'id="tornpay-status"' in text
    assert tp_settings.wechat.api_key not in text and "app_secret" not in text
    first = jsapi_from_page(page.body)
    assert set(first) == {"appId", "timeStamp", "nonceStr", "package", "signType", "paySign"}
    assert first["signType"] == order.sign_type
    assert first["package"] == "prepay_id=" + order.prepay_id
    assert re.fullmatch(r"\d{10}", first["timeStamp"])
    again = jsapi_from_page((await browser.get(pay_path)).body)
    assert again["nonceStr"] != first["nonceStr"]  # fresh on every load, no second order
    assert Order.select().count() == 1

    await pay_in_simulator(browser, pay_path)

    async def paid():
        reply = await browser.get(f"/wxpay/orders/{no}")
        return json.loads(reply.body)["state"] == "PAID" and json.loads(reply.body)

    data = await wait_for(paid)
    assert data["out_trade_no"] == no and data["total_fee"] == 1 and data["transaction_id"]
    assert set(data) == {"out_trade_no", "product_id", "total_fee", "state", "transaction_id",
                         "created_at", "paid_at", "trade_type"}
    assert data["trade_type"] == "JSAPI"
    assert Notification.get(Notification.out_trade_no == no).outcome == "accepted"

    # The pay page of a paid order goes to success_url; the result page says paid.
    revisit = await browser.get(pay_path)
    assert revisit.code == 302 and location(revisit) == f"/wxpay/orders/{no}/result"

    async def confirmed():
        body = (await browser.get(f"/wxpay/orders/{no}/result")).body.decode()
        return 'data-status="paid"' in body and 'data-booking="confirmed"' in body

    await wait_for(confirmed)


@pytest.mark.gen_test
async def test_openid_cookie_skips_oauth_and_price_in_query_is_ignored(browser, tp_settings):
    browser.set_openid(tp_settings, BOB)
    reply = await browser.get("/wxpay/checkout/coach-205?total_fee=1&price=0.01&fee=1")
    assert reply.code == 303
    order = order_row(out_trade_no_of(location(reply)))
    assert order.total_fee == 9900 and order.openid == BOB
    assert "<total_fee>9900</total_fee>" in order.unified_request


@pytest.mark.gen_test
async def test_price_in_query_ignored_through_oauth(browser):
    pay_path = await checkout_to_pay_page(browser, "coach-205", query="?total_fee=1")
    assert order_row(out_trade_no_of(pay_path)).total_fee == 9900


@pytest.mark.gen_test
async def test_unified_order_request_fields(browser, tp_settings):
    browser.set_openid(tp_settings, ALICE)
    reply = await browser.get("/wxpay/checkout/coach-101",
                              headers={"X-Real-IP": "203.0.113.9"})
    order = order_row(out_trade_no_of(location(reply)))
    req = order.unified_request
    for part in ("<trade_type><![CDATA[JSAPI]]></trade_type>",
                 f"<notify_url><![CDATA[{tp_settings.server.public_url}/wxpay/notify]]>",
                 f"<openid><![CDATA[{ALICE}]]></openid>",
                 "<body><![CDATA[Private coaching, 1 hour]]></body>"):
        assert part in req
    start = re.search(r"<time_start>(\d{14})</time_start>", req).group(1)
    expire = re.search(r"<time_expire>(\d{14})</time_expire>", req).group(1)
    assert int(expire) > int(start)
    assert ("<sign_type><![CDATA[HMAC-SHA256]]></sign_type>" in req) == (
        tp_settings.wechat.sign_type == "HMAC-SHA256")


# -- OAuth refusals: nothing reaches WeChat --------------------------------------------


async def _callback_for(browser, product="coach-101"):
    start = await browser.get(f"/wxpay/checkout/{product}")
    return await sign_in(browser, location(start))


def _with_state(callback, state):
    parts = urlsplit(callback)
    code = parse_qs(parts.query)["code"][0]
    return f"{parts.path}?code={code}&state={state}"


@pytest.mark.gen_test
@pytest.mark.parametrize("how", ["missing", "tampered", "forged_product", "expired", "foreign",
                                 "no_cookie"])
async def test_bad_state_refused_before_wechat(browser, http_client, base_url, exchanges,
                                               monkeypatch, how):
    callback = await _callback_for(browser)
    state = parse_qs(urlsplit(callback).query)["state"][0]
    if how == "missing":
        callback = _with_state(callback, "")
    elif how == "tampered":
        callback = _with_state(callback, state[:-1] + ("0" if state[-1] != "0" else "1"))
    elif how == "forged_product":
        # Same nonce and time, product swapped for the dearer one: the MAC no longer fits.
        forged = state[:26] + "coach-205".encode().hex() + state[-32:]
        callback = _with_state(callback, forged)
    elif how == "expired":
        from tornpay.handlers import checkout

        later = checkout.time.time() + checkout.STATE_MAX_AGE + 5
        monkeypatch.setattr(checkout, "time", types.SimpleNamespace(time=lambda: later))
    elif how == "foreign":
        other = Browser(http_client, base_url)
        await other.get("/wxpay/checkout/coach-101")  # another browser, its own nonce
        browser.cookies["tornpay_oauth"] = other.cookies["tornpay_oauth"]
    elif how == "no_cookie":
        browser.cookies.pop("tornpay_oauth")
    reply = await browser.get(callback)
    assert reply.code == 400
    assert b"Sign-in link not valid" in reply.body
    assert exchanges == [] and Order.select().count() == 0


@pytest.mark.gen_test
async def test_reused_code_shows_40163_and_creates_nothing(browser, exchanges):
    callback = await _callback_for(browser)
    first = await browser.get(callback)
    assert first.code == 303
    again = await browser.get(callback)  # a refresh of the callback page
    assert again.code == 400 and b"40163" in again.body
    assert len(exchanges) == 2 and Order.select().count() == 1


@pytest.mark.gen_test
async def test_invalid_code_shows_40029(browser):
    callback = await _callback_for(browser)
    parts = urlsplit(callback)
    state = parse_qs(parts.query)["state"][0]
    reply = await browser.get(f"{parts.path}?code=notarealcode&state={state}")
    assert reply.code == 400 and b"40029" in reply.body
    assert Order.select().count() == 0 and "tornpay_openid" not in browser.cookies


@pytest.mark.gen_test
async def test_unknown_product_is_404(browser, tp_settings, exchanges):
    reply = await browser.get("/wxpay/checkout/no-such-thing")
    assert reply.code == 404 and b"no-such-thing" in reply.body
    browser.set_openid(tp_settings, ALICE)
    reply = await browser.get("/wxpay/checkout/no-such-thing")
    assert reply.code == 404 and Order.select().count() == 0 and exchanges == []


# -- owner only --------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_foreign_owner_gets_403_without_parameters(browser, http_client, base_url,
                                                         tp_settings):
    pay_path = await checkout_to_pay_page(browser)
    no = out_trade_no_of(pay_path)
    stranger = Browser(http_client, base_url)
    stranger.set_openid(tp_settings, BOB)
    for who in (stranger, Browser(http_client, base_url)):
        page = await who.get(pay_path)
        assert page.code == 403 and b"tornpay-jsapi" not in page.body
        assert b"prepay_id" not in page.body and b"paySign" not in page.body
        data = await who.get(f"/wxpay/orders/{no}")
        assert data.code == 403 and no.encode() not in data.body
        assert (await who.get(f"/wxpay/orders/{no}/result")).code == 403
    assert (await browser.get(f"/wxpay/orders/{no}")).code == 200


@pytest.mark.gen_test
async def test_unknown_order_is_404(browser, tp_settings):
    browser.set_openid(tp_settings, ALICE)
    assert (await browser.get("/wxpay/pay/TPnosuchorder")).code == 404
    assert (await browser.get("/wxpay/orders/TPnosuchorder")).code == 404


# -- unified order failures --------------------------------------------------------------


@pytest.mark.gen_test
async def test_systemerror_retried_with_same_bytes_then_succeeds(browser, ctx, tp_settings,
                                                                 monkeypatch):
    sent = []
    real = ctx.pay_client.send_prepared

    async def spy(path, body):
        sent.append(body)
        return await real(path, body)

    monkeypatch.setattr(ctx.pay_client, "send_prepared", spy)
    ctx.simulator.faults.set("systemerror", count=2, endpoint="unifiedorder")
    browser.set_openid(tp_settings, ALICE)
    reply = await browser.get("/wxpay/checkout/coach-101")
    assert reply.code == 303
    assert len(sent) == 3 and len(set(sent)) == 1
    order = order_row(out_trade_no_of(location(reply)))
    assert order.state == "PREPAID" and order.unified_request.encode() == sent[0]


@pytest.mark.gen_test
async def test_systemerror_exhausted_shows_error_and_records_why(browser, ctx, tp_settings):
    ctx.simulator.faults.set("systemerror", endpoint="unifiedorder")
    browser.set_openid(tp_settings, ALICE)
    reply = await browser.get("/wxpay/checkout/coach-101")
    assert reply.code == 502 and b"SYSTEMERROR" in reply.body
    order = Order.get()
    assert order.state == "CREATED" and "SYSTEMERROR" in order.last_error
    assert "3 attempt" in order.last_error and order.unified_request
    # The pay page of such an order says so, with no parameters.
    page = await browser.get(f"/wxpay/pay/{order.out_trade_no}")
    assert page.code == 409 and b"tornpay-jsapi" not in page.body


@pytest.mark.gen_test
@pytest.mark.parametrize("tp_overrides", [{"wechat": {"timeout": 0.3}}])
async def test_timeout_retried_then_error_page(browser, ctx, tp_settings):
    ctx.simulator.faults.set("latency", endpoint="unifiedorder", seconds=1.0)
    browser.set_openid(tp_settings, ALICE)
    reply = await browser.get("/wxpay/checkout/coach-101", request_timeout=20)
    assert reply.code == 502 and b"not answering" in reply.body
    order = Order.get()
    assert order.state == "CREATED" and "TransportError" in order.last_error
    assert "3 attempt" in order.last_error


@pytest.mark.gen_test
async def test_business_refusal_not_retried(browser, ctx, tp_settings, caplog):
    ctx.simulator.faults.set("reply_bad_sign", endpoint="unifiedorder")
    browser.set_openid(tp_settings, ALICE)
    with caplog.at_level(logging.WARNING):
        reply = await browser.get("/wxpay/checkout/coach-101")
    assert reply.code == 502
    order = Order.get()
    assert order.state == "CREATED" and "1 attempt" in order.last_error


# -- the pure parts ----------------------------------------------------------------------


@pytest.mark.parametrize("sign_type, expected", [
    ("MD5", "C84B37DCD7DF0CD209CB3C94F3C2F5DF"),  # B7
    ("HMAC-SHA256", "6BAB5E7F14B8805753FF10426C7D2D478ED5DFA1E652E1B0061C0B144C9FC9AC"),  # B8
])
def test_jsapi_params_vectors(sign_type, expected):
    from tornpay.gateway.router import Gateways
    from tornpay.gateway.v2 import V2Gateway
    settings = types.SimpleNamespace(
        wechat=types.SimpleNamespace(appid="wxd930ea5d5a258f4f", api_key=REF_KEY))
    ctx = types.SimpleNamespace(settings=settings, gateways=Gateways(V2Gateway(None, settings)))
    order = types.SimpleNamespace(prepay_id="wx01123045912345a1b2c3d4e5f60718290000",
                                  sign_type=sign_type)
    params = jsapi_params(ctx, order, timestamp=1717216245,
                          nonce="e61463f8efa94090b1f366cccfbbb444")
    assert params == {
        "appId": "wxd930ea5d5a258f4f", "timeStamp": "1717216245",
        "nonceStr": "e61463f8efa94090b1f366cccfbbb444",
        "package": "prepay_id=wx01123045912345a1b2c3d4e5f60718290000",
        "signType": sign_type, "paySign": expected,
    }


@pytest.mark.gen_test
async def test_create_order_returns_the_row_as_stored(ctx, http_server):
    # create_order builds its answer without reading the row back: it must
    # match the database exactly where plugins and pages look.
    order = await service.create_order(ctx, "coach-205", ALICE, "203.0.113.9")
    stored = order_row(order.out_trade_no)
    for field in ("out_trade_no", "product_id", "openid", "body", "attach", "total_fee",
                  "fee_type", "sign_type", "state", "spbill_create_ip", "unified_request",
                  "prepay_id", "created_at", "expire_at", "transaction_id", "paid_at"):
        assert getattr(order, field) == getattr(stored, field), field
    assert stored.state == "PREPAID"
