"""Pages of a safely started server (issue 14 items 1, 4, 11): prefix, framing, cookies."""

import pytest

from conftest import base_settings_dict, merge
from flow_helpers import ALICE, Browser, location, out_trade_no_of
from test_safe_start import REAL, merchant_dict  # noqa: F401
from tornpay.app import make_app
from tornpay.orders import transitions
from tornpay.settings import settings_from_dict


@pytest.fixture
def browser(http_client, tp_settings):
    return Browser(http_client, tp_settings.server.public_url)


async def alice_pay_page(browser, tp_settings):
    """Check out as Alice (already signed in); return the pay page path."""
    prefix = tp_settings.server.prefix
    browser.set_openid(tp_settings, ALICE)
    reply = await browser.get(f"{prefix}/checkout/coach-101")
    assert reply.code == 303, reply.body
    return location(reply)


# -- item 1: the simulator is off unless the settings turn it on -------------------------


@pytest.mark.gen_test
async def test_merchant_file_without_simulator_section_runs_against_real_wechat(tmp_path):
    settings = settings_from_dict(merchant_dict(tmp_path), env={})
    assert settings.simulator.enabled is False
    app = make_app(settings, start=False)
    ctx = app.settings["tornpay"]
    try:
        assert ctx.simulator is None
        assert not any(spec.matcher.regex.pattern.startswith("/_sim") for spec in
                       app.default_router.rules[0].target.rules)
        assert settings.effective_wechat_urls()["pay_api_base"] == "https://api.mch.weixin.qq.com"
    finally:
        await ctx.stop()


@pytest.mark.gen_test
async def test_only_the_named_test_setting_allows_real_credentials_with_the_simulator(tmp_path):
    data = merge(base_settings_dict(tmp_path, 8899),
                 {"wechat": REAL, "simulator": {"allow_real_credentials": True}})
    app = make_app(settings_from_dict(data, env={}), start=False)
    assert app.settings["tornpay"].simulator is not None
    await app.settings["tornpay"].stop()


@pytest.mark.gen_test
async def test_debug_with_the_simulator_and_shipped_credentials_is_fine(tmp_path):
    data = merge(base_settings_dict(tmp_path, 8899), {"server": {"debug": True}})
    app = make_app(settings_from_dict(data, env={}), start=False)
    await app.settings["tornpay"].stop()

# -- item 4: success_url follows server.prefix --------------------------------------------


@pytest.mark.gen_test
@pytest.mark.parametrize("tp_overrides", [{"server": {"prefix": "/shop"}}])
async def test_page_after_payment_lives_under_a_custom_prefix(browser, ctx, tp_settings):
    pay_path = await alice_pay_page(browser, tp_settings)
    assert pay_path.startswith("/shop/pay/")
    no = out_trade_no_of(pay_path)
    assert transitions.mark_paid(no, transaction_id="4200000000000000000000000001",
                                 time_end="20240601123110", bank_type="CMC", cash_fee=1,
                                 source="notify", hooks=ctx.hooks)
    revisit = await browser.get(pay_path)
    assert revisit.code == 302 and location(revisit) == f"/shop/orders/{no}/result"
    result = await browser.get(location(revisit))
    assert result.code == 200 and 'data-status="paid"' in result.body.decode()


# -- item 11: framing, the version banner, the _xsrf cookie ----------------------------------


def assert_safe_headers(reply):
    assert reply.headers.get("X-Frame-Options") == "DENY", reply.effective_url
    assert "frame-ancestors 'none'" in reply.headers.get("Content-Security-Policy", "")
    assert "Server" not in reply.headers, reply.headers.get("Server")


@pytest.mark.gen_test
async def test_every_kind_of_answer_forbids_framing_and_hides_the_version(browser, tp_settings):
    pay_path = await alice_pay_page(browser, tp_settings)
    for path in ("/", pay_path, "/wxpay/no-such-route", "/healthz", "/_sim/",
                 "/_sim/jsbridge.js", "/wxpay/static/no-such-file.css"):
        assert_safe_headers(await browser.get(path))
    notify = await browser.fetch("/wxpay/notify", method="POST", body=b"<xml></xml>")
    assert_safe_headers(notify)


@pytest.mark.gen_test
async def test_pay_page_still_works_with_the_simulator_bridge(browser, tp_settings):
    page = await browser.get(await alice_pay_page(browser, tp_settings))
    assert page.code == 200 and b"/_sim/jsbridge.js" in page.body
    bridge = await browser.get("/_sim/jsbridge.js")
    assert bridge.code == 200 and b"/_sim/cashier" in bridge.body


def xsrf_cookie(reply):
    (header,) = [h for h in reply.headers.get_list("Set-Cookie") if h.startswith("_xsrf=")]
    return [part.strip().lower() for part in header.split(";")]


@pytest.mark.gen_test
async def test_xsrf_cookie_is_same_site_lax_and_not_secure_over_http(browser, tp_settings):
    flags = xsrf_cookie(await browser.get(await alice_pay_page(browser, tp_settings)))
    assert "samesite=lax" in flags and "secure" not in flags


@pytest.mark.gen_test
@pytest.mark.parametrize("tp_overrides", [{"server": {"public_url": "https://127.0.0.1"}}])
async def test_xsrf_cookie_is_secure_under_an_https_public_url(http_client, base_url, ctx,
                                                               tp_settings):
    browser = Browser(http_client, base_url)
    flags = xsrf_cookie(await browser.get(await alice_pay_page(browser, tp_settings)))
    assert "samesite=lax" in flags and "secure" in flags
