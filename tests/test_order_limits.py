"""Issue 14.8: open-order limits per payer and per address, reuse, no cross-site order creation."""

import re

import pytest

from tests.flow_helpers import ALICE, BOB, Browser, location, out_trade_no_of, sign_in
from tornpay.storage.models import Order

CROSS_SITE = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}


CATALOG = {"products": {f"p{i}": {"body": f"Product {i}", "total_fee": 100 + i}
                        for i in range(5)}}
LIMITS = {"orders": {"max_open_per_payer": 2, "max_open_per_ip": 3}, "catalog": CATALOG}
with_limits = pytest.mark.parametrize("tp_overrides", [LIMITS])


@pytest.fixture
def tp_overrides():
    return {"catalog": CATALOG}  # the shipped limits


def _browser(http_client, base_url, settings, openid):
    browser = Browser(http_client, base_url)
    browser.set_openid(settings, openid)
    return browser


async def _checkout(browser, product, headers=None):
    return await browser.get(f"/wxpay/checkout/{product}", headers=headers)


@pytest.mark.gen_test
@pytest.mark.parametrize("api_version", ["v2", "v3"])
async def test_same_product_reuses_the_open_order(http_client, base_url, tp_settings,
                                                  api_version):
    alice = _browser(http_client, base_url, tp_settings, ALICE)
    first = await _checkout(alice, "p0")
    again = await _checkout(alice, "p0")
    assert first.code == again.code == 303
    assert location(first) == location(again)  # the same pay page, the same order
    assert Order.select().count() == 1


@pytest.mark.gen_test
@with_limits
async def test_open_orders_per_payer_are_limited_with_a_clear_page(tp_overrides, http_client,
                                                                    base_url, tp_settings):
    alice = _browser(http_client, base_url, tp_settings, ALICE)
    assert (await _checkout(alice, "p0")).code == 303
    assert (await _checkout(alice, "p1")).code == 303
    refused = await _checkout(alice, "p2")
    assert refused.code == 429
    page = refused.body.decode()
    assert "未支付订单过多" in page and "Too many unpaid orders" in page
    assert Order.select().count() == 2
    # Paying (or cancelling) one frees a place.
    first = Order.select().order_by(Order.created_at).first()
    Order.update(state="PAID").where(Order.out_trade_no == first.out_trade_no).execute()
    assert (await _checkout(alice, "p2")).code == 303


@pytest.mark.gen_test
@with_limits
async def test_open_orders_per_address_are_limited(tp_overrides, http_client, base_url,
                                                   tp_settings):
    payers = [f"o-payer-{i}" for i in range(4)]
    codes = [(await _checkout(_browser(http_client, base_url, tp_settings, openid), "p0")).code
             for openid in payers]
    assert codes == [303, 303, 303, 429]
    # The count is per address: once those orders belong to another one, 127.0.0.1 may order.
    Order.update(spbill_create_ip="10.9.9.9").execute()
    last = _browser(http_client, base_url, tp_settings, payers[3])
    assert (await _checkout(last, "p0")).code == 303


@pytest.mark.gen_test
async def test_cross_site_get_creates_nothing_until_the_payer_confirms(http_client, base_url,
                                                                       tp_settings, exchanges):
    alice = _browser(http_client, base_url, tp_settings, ALICE)
    page = await _checkout(alice, "p1", CROSS_SITE)
    assert page.code == 200 and Order.select().count() == 0
    body = page.body.decode()
    assert "确认订单" in body and "Confirm your order" in body and "Product 1" in body
    token = re.search(r'name="_xsrf" value="([^"]+)"', body).group(1)
    # A cross-site POST cannot carry the token (nor the XSRF cookie): refused.
    forged = await alice.fetch("/wxpay/checkout/p1", method="POST", body="",
                               headers=CROSS_SITE)
    assert forged.code == 403 and Order.select().count() == 0
    confirmed = await alice.fetch("/wxpay/checkout/p1", method="POST", body=f"_xsrf={token}",
                                  headers={"Sec-Fetch-Site": "same-origin"})
    assert confirmed.code == 303 and "/wxpay/pay/" in location(confirmed)
    assert Order.select().count() == 1
    assert exchanges == []


@pytest.mark.gen_test
async def test_cross_site_get_without_a_payer_does_not_start_sign_in(http_client, base_url):
    stranger = Browser(http_client, base_url)
    page = await stranger.get("/wxpay/checkout/p1", headers=CROSS_SITE)
    assert page.code == 200 and "Location" not in page.headers
    assert "tornpay_oauth" not in stranger.cookies  # no sign-in state was minted
    unknown = await stranger.get("/wxpay/checkout/nope", headers=CROSS_SITE)
    assert unknown.code == 404


@pytest.mark.gen_test
async def test_oauth_callback_from_wechat_still_creates_the_order(http_client, base_url):
    # The payer confirms, goes to WeChat's authorize page, and comes back by a
    # cross-site navigation: the signed state, not Sec-Fetch-Site, guards that.
    bob = Browser(http_client, base_url)
    page = await bob.get("/wxpay/checkout/p3", headers=CROSS_SITE)
    token = re.search(r'name="_xsrf" value="([^"]+)"', page.body.decode()).group(1)
    start = await bob.fetch("/wxpay/checkout/p3", method="POST", body=f"_xsrf={token}",
                            headers={"Sec-Fetch-Site": "same-origin"})
    assert start.code == 303
    callback = await sign_in(bob, location(start), BOB)
    done = await bob.get(callback, headers=CROSS_SITE)
    assert done.code == 303, done.body
    order = Order.get_by_id(out_trade_no_of(location(done)))
    assert order.openid == BOB and order.product_id == "p3"
