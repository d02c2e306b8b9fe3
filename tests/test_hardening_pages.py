"""Pages under attack: other payers' orders, path traversal, markup in ids and queries (escaped)."""

import json

import pytest

from flow_helpers import (ALICE, BOB, Browser, checkout_to_pay_page, jsapi_from_page,
                                location, order_row, out_trade_no_of)
from tornpay.storage.models import Order

MARK = '"><script>alert("tp")</script>'
MARK_ENCODED = "%22%3E%3Cscript%3Ealert(%22tp%22)%3C%2Fscript%3E"
EVIL_BODY = '</script><script>alert("tp")</script><img src=x onerror=alert(1)>'


@pytest.fixture
def tp_overrides():
    products = {"coach-101": {"body": "Private coaching, 1 hour", "total_fee": 1},
                "coach-205": {"body": "Group clinic", "total_fee": 9900},
                "markup-1": {"body": EVIL_BODY, "total_fee": 100}}
    return {"catalog": {"products": products}}


@pytest.fixture
def browser(http_client, tp_settings):
    return Browser(http_client, tp_settings.server.public_url)


def assert_not_reflected(reply):
    body = reply.body.decode("utf-8", "replace")
    assert reply.code < 500, (reply.code, body[:300])
    assert '<script>alert("tp")' not in body and "<script>alert(&quot;tp" not in body
    assert "Traceback" not in body
    for value in reply.headers.get_list("Location") + reply.headers.get_list("Set-Cookie"):
        assert "<script" not in value.lower()


async def alice_order(browser, tp_settings, product="coach-205"):
    browser.set_openid(tp_settings, ALICE)
    reply = await browser.get(f"/wxpay/checkout/{product}")
    assert reply.code == 303
    return out_trade_no_of(location(reply))


# -- someone else's order ---------------------------------------------------------------


@pytest.mark.gen_test
@pytest.mark.parametrize("path", ["/wxpay/pay/{no}", "/wxpay/orders/{no}",
                                  "/wxpay/orders/{no}/result"],
                         ids=["pay_page", "status_json", "result_page"])
@pytest.mark.parametrize("who", ["other_payer", "no_cookie", "forged_cookie", "unsigned_cookie"])
async def test_someone_elses_order_is_403_and_shows_nothing(browser, http_client, tp_settings,
                                                            path, who):
    no = await alice_order(browser, tp_settings)
    order = order_row(no)
    stranger = Browser(http_client, tp_settings.server.public_url)
    if who == "other_payer":
        stranger.set_openid(tp_settings, BOB)
    elif who == "forged_cookie":
        # Alice's openid signed with a guessed secret.
        import tornado.web
        stranger.cookies["tornpay_openid"] = tornado.web.create_signed_value(
            "guessed-secret-0123456789abcdef", "tornpay_openid", ALICE).decode()
    elif who == "unsigned_cookie":
        stranger.cookies["tornpay_openid"] = ALICE
    reply = await stranger.get(path.format(no=no))
    assert reply.code == 403
    body = reply.body.decode()
    for secret in (order.prepay_id, "paySign", "tornpay-jsapi", str(order.total_fee), ALICE):
        assert secret not in body
    assert (await browser.get(path.format(no=no))).code in (200, 302)  # the owner still can


@pytest.mark.gen_test
async def test_owner_cookie_of_a_paid_order_cannot_open_another_payers_order(
        browser, http_client, tp_settings):
    theirs = await alice_order(browser, tp_settings)
    bob = Browser(http_client, tp_settings.server.public_url)
    bob.set_openid(tp_settings, BOB)
    mine = out_trade_no_of(location(await bob.get("/wxpay/checkout/coach-101")))
    assert (await bob.get(f"/wxpay/orders/{mine}")).code == 200
    assert (await bob.get(f"/wxpay/orders/{theirs}")).code == 403


@pytest.mark.gen_test
async def test_status_json_answers_json_even_when_refused(browser, http_client, tp_settings):
    no = await alice_order(browser, tp_settings)
    stranger = Browser(http_client, tp_settings.server.public_url)
    reply = await stranger.get(f"/wxpay/orders/{no}")
    assert reply.code == 403 and json.loads(reply.body)["status"] == 403


# -- path traversal ---------------------------------------------------------------------


@pytest.mark.gen_test
@pytest.mark.parametrize("path", [
    "/wxpay/static/../../settings.yaml",
    "/wxpay/static/..%2f..%2fsettings.yaml",
    "/wxpay/static/%2e%2e/%2e%2e/settings.yaml",
    "/wxpay/static/....//....//settings.yaml",
    "/wxpay/static//etc/passwd",
    "/wxpay/static/%2fetc%2fpasswd",
    "/wxpay/checkout/..%2f..%2fsettings.yaml",
    "/wxpay/checkout/../../settings.yaml",
    "/wxpay/pay/..%2F..%2Fetc%2Fpasswd",
    "/wxpay/orders/..%2f..%2fetc%2fpasswd",
    "/wxpay/orders/%2e%2e/result",
], ids=lambda p: p.replace("/", "_").replace("%", "pct"))
async def test_path_traversal_reaches_no_file(browser, tp_settings, path):
    browser.set_openid(tp_settings, ALICE)
    reply = await browser.get(path)
    assert reply.code in (400, 403, 404), (reply.code, reply.body[:200])
    for leak in (b"api_key", b"cookie_secret", b"root:x:0:0", tp_settings.wechat.api_key.encode()):
        assert leak not in reply.body
    assert Order.select().count() == 0


# -- markup in product ids and query strings --------------------------------------------


@pytest.mark.gen_test
@pytest.mark.parametrize("path", [
    "/wxpay/checkout/" + MARK_ENCODED,
    "/wxpay/checkout/coach-101" + MARK_ENCODED,
    "/wxpay/checkout/coach-101?x=" + MARK_ENCODED,
    "/wxpay/checkout/no-such-product?x=" + MARK_ENCODED,
    "/wxpay/checkout/coach-101?total_fee=" + MARK_ENCODED,
    "/wxpay/pay/" + MARK_ENCODED,
    "/wxpay/pay/TPnosuch?x=" + MARK_ENCODED,
    "/wxpay/orders/" + MARK_ENCODED,
    "/wxpay/orders/TPnosuch/result?x=" + MARK_ENCODED,
    "/wxpay/oauth/callback?code=" + MARK_ENCODED + "&state=" + MARK_ENCODED,
    "/wxpay/oauth/callback?state=" + MARK_ENCODED,
    "/?q=" + MARK_ENCODED,
    "/healthz?x=" + MARK_ENCODED,
    "/wxpay/" + MARK_ENCODED,
    "/wxpay/notify?x=" + MARK_ENCODED,
], ids=["checkout_id", "checkout_id_suffix", "checkout_query", "unknown_product_query",
        "checkout_price_query", "pay_id", "pay_query", "orders_id", "result_query",
        "callback_code_state", "callback_state", "shop_query", "healthz_query",
        "unknown_route", "notify_query"])
@pytest.mark.parametrize("signed_in", [False, True], ids=["anonymous", "signed_in"])
async def test_markup_in_url_is_never_reflected_unescaped(browser, tp_settings, path, signed_in):
    if signed_in:
        browser.set_openid(tp_settings, ALICE)
    reply = await browser.get(path)
    assert_not_reflected(reply)
    for order in Order.select():
        assert order.total_fee == 1  # coach-101's price, whatever the query said


@pytest.mark.gen_test
async def test_markup_in_a_product_body_is_escaped_on_pay_and_result_pages(browser, tp_settings):
    no = await alice_order(browser, tp_settings, "markup-1")
    page = await browser.get(f"/wxpay/pay/{no}")
    assert page.code == 200
    text = page.body.decode()
    assert EVIL_BODY not in text and "<img src=x" not in text
    assert "&lt;/script&gt;&lt;script&gt;" in text  # shown, as text
    assert jsapi_from_page(page.body)["package"].startswith("prepay_id=")  # JSON block intact
    result = await browser.get(f"/wxpay/orders/{no}/result")
    assert result.code == 200 and EVIL_BODY not in result.body.decode()
    shop = await browser.get("/")
    assert shop.code == 200 and EVIL_BODY not in shop.body.decode()


@pytest.mark.gen_test
async def test_checkout_redirect_goes_only_to_the_authorize_url(browser, tp_settings):
    reply = await browser.get("/wxpay/checkout/coach-101?redirect_uri=https://evil.example/"
                              "&next=//evil.example")
    assert reply.code == 302
    target = location(reply)
    assert target.startswith(tp_settings.server.public_url + "/_sim/connect/oauth2/authorize?")
    assert "evil.example" not in target


@pytest.mark.gen_test
async def test_pay_path_from_checkout_stays_in_the_pay_directory(browser, tp_settings):
    pay_path = await checkout_to_pay_page(browser, "coach-101", query="?x=" + MARK_ENCODED)
    assert pay_path.startswith("/wxpay/pay/") and pay_path.count("/") == 3
    assert "script" not in pay_path


@pytest.mark.gen_test
async def test_error_pages_never_show_a_traceback(browser, ctx, tp_settings, monkeypatch):
    # A bug deep inside a page handler: a plain 500 page, no stack trace, no secrets.
    from tornpay.handlers import pay

    def boom(*args, **kwargs):
        raise RuntimeError("secret internals 7f3a")

    no = await alice_order(browser, tp_settings)
    monkeypatch.setattr(pay, "jsapi_params", boom)
    reply = await browser.get(f"/wxpay/pay/{no}")
    assert reply.code == 500
    body = reply.body.decode()
    assert "Traceback" not in body and "secret internals" not in body
    assert tp_settings.wechat.api_key not in body
