"""OAuth callback abuse: reused, expired and foreign codes; tampered, foreign and replayed state."""

import time
import types
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from flow_helpers import ALICE, BOB, Browser, location, order_row, out_trade_no_of, sign_in
from tornpay.handlers import checkout
from tornpay.protocol import oauth_state
from tornpay.storage.models import Order


@pytest.fixture
def browser(http_client, tp_settings):
    return Browser(http_client, tp_settings.server.public_url)


async def callback_url(browser, product="coach-101", openid=ALICE):
    start = await browser.get(f"/wxpay/checkout/{product}")
    assert start.code == 302
    return await sign_in(browser, location(start), openid)


def parts(callback):
    url = urlsplit(callback)
    query = parse_qs(url.query)
    return url.path, query["code"][0], query["state"][0]


def rebuild(callback, **params):
    path, code, state = parts(callback)
    values = {"code": code, "state": state}
    values.update(params)
    return path + "?" + urlencode({k: v for k, v in values.items() if v is not None})


def assert_refused_page(reply, status, text):
    assert reply.code == status, (reply.code, reply.body[:300])
    assert reply.headers["Content-Type"].startswith("text/html")
    assert text.encode() in reply.body
    assert b"Traceback" not in reply.body


def assert_nothing_created(browser):
    assert Order.select().count() == 0
    assert "tornpay_openid" not in browser.cookies


# -- codes (WeChat decides; we show its errcode and create nothing) -----------------------


@pytest.mark.gen_test
async def test_reused_code_is_refused_by_wechat_and_creates_no_second_order(browser, exchanges):
    callback = await callback_url(browser)
    first = await browser.get(callback)
    assert first.code == 303
    again = await browser.get(callback)  # a refresh, or a duplicate callback
    assert_refused_page(again, 400, "40163")
    assert Order.select().count() == 1
    assert exchanges == [parts(callback)[1]] * 2  # each request tried once, never retried


@pytest.mark.gen_test
async def test_expired_code_is_refused_and_creates_nothing(browser, ctx, exchanges):
    callback = await callback_url(browser)
    ctx.simulator.advance(5 * 60 + 1)  # codes live five minutes
    assert_refused_page(await browser.get(callback), 400, "40029")
    assert_nothing_created(browser)
    assert len(exchanges) == 1


@pytest.mark.gen_test
async def test_code_issued_for_another_appid_is_refused(browser, ctx, exchanges):
    callback = await callback_url(browser)
    foreign = ctx.simulator.issue_code("wx1111111111111111", ALICE)
    assert_refused_page(await browser.get(rebuild(callback, code=foreign)), 400, "40029")
    assert_nothing_created(browser)


@pytest.mark.gen_test
async def test_made_up_code_is_refused(browser, exchanges):
    callback = await callback_url(browser)
    assert_refused_page(await browser.get(rebuild(callback, code="0" * 32)), 400, "40029")
    assert_nothing_created(browser)


@pytest.mark.gen_test
async def test_missing_code_is_refused_without_asking_wechat(browser, exchanges):
    callback = await callback_url(browser)
    assert_refused_page(await browser.get(rebuild(callback, code=None)), 400, "Sign-in cancelled")
    assert_nothing_created(browser)
    assert exchanges == []


@pytest.mark.gen_test
async def test_code_with_markup_is_not_reflected(browser, exchanges):
    callback = await callback_url(browser)
    evil = '"><script>alert("tp")</script>'
    reply = await browser.get(rebuild(callback, code=evil))
    assert reply.code == 400
    assert b"<script>alert" not in reply.body and b"alert(" not in reply.body
    assert_nothing_created(browser)


# -- state (ours: checked before any call to WeChat) --------------------------------------


def tamper(state, i):
    c = state[i]
    return state[:i] + ("1" if c != "1" else "2") + state[i + 1:]


@pytest.mark.gen_test
@pytest.mark.parametrize("where", ["timestamp", "nonce", "product", "mac"])
async def test_tampered_state_is_refused_before_wechat(browser, exchanges, where):
    callback = await callback_url(browser)
    _, _, state = parts(callback)
    index = {"timestamp": 3, "nonce": 12, "product": 27, "mac": len(state) - 1}[where]
    reply = await browser.get(rebuild(callback, state=tamper(state, index)))
    assert_refused_page(reply, 400, "Sign-in link not valid")
    assert_nothing_created(browser)
    assert exchanges == []


@pytest.mark.gen_test
@pytest.mark.parametrize("state", ["", "a" * 129, "not-alnum!", "日本語", "0" * 58,
                                   "%00", "state"], ids=["empty", "overlong", "punctuation",
                                                         "non_ascii", "zeros", "nul", "word"])
async def test_malformed_state_is_refused_before_wechat(browser, exchanges, state):
    callback = await callback_url(browser)
    reply = await browser.get(rebuild(callback, state=state))
    assert_refused_page(reply, 400, "Sign-in link not valid")
    assert_nothing_created(browser)
    assert exchanges == []


@pytest.mark.gen_test
async def test_state_signed_with_another_secret_is_refused(browser, exchanges):
    callback = await callback_url(browser)
    _, _, state = parts(callback)
    nonce = state[10:26]
    forged = oauth_state.make_state("another-server-secret-0123456789", "coach-101", nonce,
                                 time.time())
    assert_refused_page(await browser.get(rebuild(callback, state=forged)), 400,
                        "Sign-in link not valid")
    assert_nothing_created(browser)
    assert exchanges == []


@pytest.mark.gen_test
async def test_state_replayed_after_ten_minutes_is_refused(browser, exchanges, monkeypatch):
    callback = await callback_url(browser)
    later = time.time() + oauth_state.STATE_MAX_AGE + 1
    monkeypatch.setattr(checkout, "time", types.SimpleNamespace(time=lambda: later))
    assert_refused_page(await browser.get(callback), 400, "Sign-in link not valid")
    assert_nothing_created(browser)
    assert exchanges == []


@pytest.mark.gen_test
async def test_state_from_the_future_is_refused(browser, exchanges, monkeypatch):
    callback = await callback_url(browser)
    earlier = time.time() - 60
    monkeypatch.setattr(checkout, "time", types.SimpleNamespace(time=lambda: earlier))
    assert_refused_page(await browser.get(callback), 400, "Sign-in link not valid")
    assert exchanges == []


@pytest.mark.gen_test
async def test_state_replayed_in_another_browser_is_refused(browser, http_client, tp_settings,
                                                             exchanges):
    # Login CSRF: an attacker's own callback link (their code, their state)
    # opened by a victim, whose browser holds a different nonce.
    attacker_link = await callback_url(browser, openid=BOB)
    victim = Browser(http_client, tp_settings.server.public_url)
    await victim.get("/wxpay/checkout/coach-101")  # the victim's own nonce cookie
    reply = await victim.get(attacker_link)
    assert_refused_page(reply, 400, "Sign-in link not valid")
    assert "tornpay_openid" not in victim.cookies
    assert Order.select().count() == 0 and exchanges == []


@pytest.mark.gen_test
async def test_state_replayed_without_the_nonce_cookie_is_refused(http_client, tp_settings,
                                                                  browser, exchanges):
    link = await callback_url(browser)
    stranger = Browser(http_client, tp_settings.server.public_url)
    assert_refused_page(await stranger.get(link), 400, "Sign-in link not valid")
    assert Order.select().count() == 0 and exchanges == []


@pytest.mark.gen_test
async def test_replayed_callback_never_creates_a_second_order_or_changes_the_payer(
        browser, exchanges):
    callback = await callback_url(browser, "coach-205", ALICE)
    first = await browser.get(callback)
    assert first.code == 303
    no = out_trade_no_of(location(first))
    cookie = browser.cookies["tornpay_openid"]
    for _ in range(3):
        again = await browser.get(callback)
        assert again.code == 400
    assert [o.out_trade_no for o in Order.select()] == [no]
    assert order_row(no).openid == ALICE and order_row(no).total_fee == 9900
    assert browser.cookies["tornpay_openid"] == cookie


@pytest.mark.gen_test
async def test_state_is_bound_to_its_product(browser, exchanges):
    # Start for the cheap product, come back claiming the dear one: the MAC covers the product.
    callback = await callback_url(browser, "coach-101")
    _, _, state = parts(callback)
    swapped = state[:26] + "coach-205".encode().hex() + state[-32:]
    assert_refused_page(await browser.get(rebuild(callback, state=swapped)), 400,
                        "Sign-in link not valid")
    assert_nothing_created(browser)
