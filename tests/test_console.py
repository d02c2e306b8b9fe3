"""The operator console: off by default, nothing without a session, lockout, XSRF, languages."""

import datetime
import time

import pytest

from console_helpers import (ADMIN, OPERATOR, PASSWORD, Recorder, login,  # noqa: F401
                             operator, post, recorder, tp_overrides, xsrf)
from flow_helpers import Browser, location
from tornpay.console import lockout, sessions
from tornpay.console.passwords import set_password
from tornpay.storage.models import Order, Refund, utcnow
from tornpay.storage.opsmodels import AuditEntry, LoginFailure, Operator

pytestmark = pytest.mark.hold_refunds  # refunds finish only through the control API

NO = "T20240601000000000001"
GETS = ["/", "/orders", f"/orders/{NO}", "/deliveries?state=failed", "/bills",
        "/bills/2024-06-01"]
POSTS = [f"/orders/{NO}/refund", "/deliveries/ev1%3Aplugin/retry", "/logout"]


def paid_order(no=NO, fee=9900, **extra):
    now = utcnow()
    values = dict(out_trade_no=no, product_id="coach-205", openid="o-secret-openid",
                  body="Group clinic", total_fee=fee, state="PAID", created_at=now,
                  updated_at=now, expire_at=now, paid_at=now,
                  transaction_id="4200000000" + no[-10:])
    values.update(extra)
    return Order.create(**values)


def test_console_is_off_by_default(tmp_path, io_loop):
    from conftest import base_settings_dict
    from tornpay import handlers
    from tornpay.app import make_app
    from tornpay.settings import settings_from_dict

    application = make_app(settings_from_dict(base_settings_dict(tmp_path, 8888), env={}),
                           start=False)
    ctx = application.settings["tornpay"]
    try:
        assert ctx.settings.admin.enabled is False
        assert not [s for s in handlers.routes(ctx) if "/admin" in s.regex.pattern]
    finally:
        io_loop.run_sync(ctx.stop)


@pytest.mark.gen_test
async def test_no_page_or_action_without_a_session(app, operator, http_client, base_url):
    paid_order()
    forged = sessions.make_value("another-secret-0123456789abcdef", Operator.get_by_id(OPERATOR),
                                 60)
    for cookie in (None, forged, "garbage"):
        browser = Browser(http_client, base_url)
        await xsrf(browser)
        if cookie:
            browser.cookies[sessions.COOKIE] = cookie
        for path in GETS:
            response = await browser.get(ADMIN + path)
            assert response.code == 303 and location(response) == f"{ADMIN}/login", path
            assert b"o-secret-openid" not in response.body and NO.encode() not in response.body
        for path in POSTS:
            response = await post(browser, ADMIN + path, fee="100", confirm="1")
            assert response.code == 403, path
            assert NO.encode() not in response.body
    assert Refund.select().count() == 0
    login_page = await Browser(http_client, base_url).get(f"{ADMIN}/login")
    assert login_page.code == 200 and b'name="password"' in login_page.body


@pytest.mark.gen_test
async def test_sign_in_sets_a_strict_httponly_session_and_sign_out_ends_it(
        app, operator, http_client, base_url):
    browser = Browser(http_client, base_url)
    response = await post(browser, f"{ADMIN}/login", name=OPERATOR, password=PASSWORD)
    assert response.code == 303
    cookie = [c for c in response.headers.get_list("Set-Cookie")
              if c.startswith(sessions.COOKIE + "=")][0]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/wxpay/admin/" in cookie
    page = await browser.get(f"{ADMIN}/")
    assert page.code == 200 and OPERATOR.encode() in page.body
    out = await post(browser, f"{ADMIN}/logout")
    assert out.code == 303 and sessions.COOKIE not in browser.cookies
    assert (await browser.get(f"{ADMIN}/")).code == 303
    actions = [(a.operator, a.action, a.outcome)
               for a in AuditEntry.select().order_by(AuditEntry.id)]
    assert actions == [(OPERATOR, "login", "ok"), (OPERATOR, "logout", "ok")]


@pytest.mark.gen_test
async def test_session_expires_and_a_new_password_ends_it(app, operator, http_client, base_url):
    secret = app.settings["tornpay"].settings.server.cookie_secret
    op = Operator.get_by_id(OPERATOR)
    browser = Browser(http_client, base_url)
    browser.cookies[sessions.COOKIE] = sessions.make_value(secret, op, 60,
                                                           now=time.time() - 3601)
    assert (await browser.get(f"{ADMIN}/orders")).code == 303
    browser.cookies[sessions.COOKIE] = sessions.make_value(secret, op, 60)
    assert (await browser.get(f"{ADMIN}/orders")).code == 200
    set_password(OPERATOR, "another long password")
    assert (await browser.get(f"{ADMIN}/orders")).code == 303


@pytest.mark.gen_test
async def test_five_failures_lock_the_name_for_fifteen_minutes(app, operator, http_client,
                                                               base_url):
    browser = Browser(http_client, base_url)
    for _ in range(5):
        response = await post(browser, f"{ADMIN}/login", name=OPERATOR, password="wrong guess")
        assert response.code == 401 and b"tornpay-login-error" in response.body
    locked = await post(browser, f"{ADMIN}/login", name=OPERATOR, password=PASSWORD)
    assert locked.code == 429 and sessions.COOKIE not in browser.cookies
    assert LoginFailure.select().count() == 5  # refused unchecked, not counted
    # Fifteen minutes later the lock is gone.
    LoginFailure.update(at=utcnow() - datetime.timedelta(minutes=16)).execute()
    await login(http_client, base_url)
    outcomes = [a.outcome for a in AuditEntry.select().order_by(AuditEntry.id)]
    assert outcomes == ["failed"] * 5 + ["refused", "ok"]


def test_lockout_counts_per_name_and_per_ip(app, http_server):
    for i in range(5):
        lockout.record_failure("alice", f"198.51.100.{i}")
    assert lockout.locked_until("alice", "203.0.113.1") is not None  # the name, from anywhere
    assert lockout.locked_until("bob", "198.51.100.1") is None
    for name in ("u1", "u2", "u3", "u4", "u5"):
        lockout.record_failure(name, "203.0.113.9")
    assert lockout.locked_until("carol", "203.0.113.9") is not None  # the IP, for any name
    assert lockout.locked_until("carol", "203.0.113.8") is None
    # Five failures spread over more than 15 minutes lock nothing.
    for minutes in (0, 5, 10, 15, 20):
        LoginFailure.create(name="dave", remote_ip=f"192.0.2.{minutes}",
                            at=utcnow() - datetime.timedelta(minutes=minutes))
    assert lockout.locked_until("dave", "192.0.2.200") is None


@pytest.mark.gen_test
async def test_every_form_needs_xsrf(app, operator, http_client, base_url):
    paid_order()
    browser = Browser(http_client, base_url)
    await xsrf(browser)
    no_token = await post(browser, f"{ADMIN}/login", with_xsrf=False, name=OPERATOR,
                          password=PASSWORD)
    assert no_token.code == 403 and sessions.COOKIE not in browser.cookies
    browser = await login(http_client, base_url)
    refund = await post(browser, f"{ADMIN}/orders/{NO}/refund", with_xsrf=False, fee="100",
                        confirm="1")
    assert refund.code == 403 and Refund.select().count() == 0
    page = await browser.get(f"{ADMIN}/orders/{NO}")
    assert page.body.count(b'name="_xsrf"') == 2  # the refund form and sign-out


@pytest.mark.gen_test
async def test_pages_speak_chinese_or_english(app, operator, http_client, base_url):
    browser = await login(http_client, base_url)
    zh = await browser.get(f"{ADMIN}/orders", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert b'<html lang="zh-CN">' in zh.body and "商户订单号".encode() in zh.body
    en = await browser.get(f"{ADMIN}/orders", headers={"Accept-Language": "en-US,en;q=0.8"})
    assert b'<html lang="en">' in en.body and b"Order no." in en.body
    default = await browser.get(f"{ADMIN}/orders", headers={"Accept-Language": "fr"})
    assert b'<html lang="zh-CN">' in default.body  # server.default_locale


@pytest.mark.gen_test
async def test_orders_filter_search_and_pages(app, operator, http_client, base_url):
    for i in range(27):
        paid_order(f"T2024060100000000{i:04d}", fee=100 + i, openid=f"o-user-{i % 3}",
                   state="PAID" if i % 2 else "CLOSED", trade_type="NATIVE" if i < 5 else "JSAPI")
    old = utcnow() - datetime.timedelta(days=10)
    paid_order("TOLD0001", created_at=old)
    browser = await login(http_client, base_url)
    en = {"Accept-Language": "en"}

    async def numbers(query):
        body = (await browser.get(f"{ADMIN}/orders?{query}", headers=en)).body.decode()
        return {n for n in body.split('data-out-trade-no="')[1:] for n in [n.split('"')[0]]}

    assert len(await numbers("")) == 25 and len(await numbers("page=2")) == 3
    assert len(await numbers("state=CLOSED")) == 14
    assert len(await numbers("trade_type=NATIVE")) == 5
    assert await numbers("q=T20240601000000000007") == {"T20240601000000000007"}
    assert await numbers("q=4200000000" + "0000000007") == {"T20240601000000000007"}
    assert len(await numbers("q=o-user-1")) == 9
    today = (utcnow() + datetime.timedelta(hours=8)).date()
    assert "TOLD0001" not in await numbers(f"since={today}&until={today}")
    assert await numbers(f"until={today - datetime.timedelta(days=5)}") == {"TOLD0001"}
    bad = await browser.get(f"{ADMIN}/orders?state=STOLEN", headers=en)
    assert bad.code == 400


def test_password_hashes_are_salted_scrypt_and_checked_exactly():
    from tornpay.console.passwords import hash_password, verify_password

    one, two = hash_password(PASSWORD), hash_password(PASSWORD)
    assert one != two and one.startswith("scrypt$32768$8$1$") and PASSWORD not in one
    assert verify_password(PASSWORD, one) and verify_password(PASSWORD, two)
    assert not verify_password(PASSWORD + " ", one)
    assert not any(verify_password(PASSWORD, bad) for bad in
                   ("", "scrypt$1$2", "md5$x$y$z$a$b", one.replace("scrypt$32768", "scrypt$x")))
