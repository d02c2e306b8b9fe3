"""SPEC §12 proved by a guard: no main flow runs a database call on the IOLoop's thread.

``loop_guard`` (tests/loop_guard.py) records every cursor tornpay asks the
database for on the loop's thread; each test drives one flow through HTTP and
the background workers, then ``check()`` fails naming every place that did.
"""

import datetime
import json
import re
from urllib.parse import parse_qs, quote, urlsplit

import pytest

# The operator is made before the guard starts watching (set_password is the CLI's way).
from console_helpers import (ADMIN, OPERATOR, PASSWORD, login, operator, post,  # noqa: F401
                             recorder)
from flow_helpers import (ALICE, Browser, checkout_to_pay_page, jsapi_from_page, location,
                          order_row, out_trade_no_of, sim_control, wait_for)
from loop_guard import loop_guard  # noqa: F401 (the fixture)
from tornpay.storage.models import Delivery, Order, Refund
from tornpay.storage.opsmodels import BillRun

pytestmark = pytest.mark.hold_refunds  # refunds finish only through the control API

PHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
         "Mobile/15E148 Safari/604.1")
WECHAT = PHONE + " MicroMessenger/8.0.47"
DESKTOP = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"
XSRF_RE = re.compile(r'name="_xsrf" value="([^"]+)"')
EN, ZH = {"Accept-Language": "en"}, {"Accept-Language": "zh-CN"}


@pytest.fixture
def tp_overrides():
    return {"orders": {"trade_types": ["JSAPI", "NATIVE", "MWEB"]},
            "admin": {"enabled": True}}


class UABrowser(Browser):
    """A browser that sends its own User-Agent with every request (it picks the trade type)."""

    def __init__(self, http_client, base_url, user_agent: str):
        super().__init__(http_client, base_url)
        self.user_agent = user_agent

    async def fetch(self, path_or_url: str, **kwargs):
        headers = dict(kwargs.pop("headers", None) or {})
        headers.setdefault("User-Agent", self.user_agent)
        return await super().fetch(path_or_url, headers=headers, **kwargs)


async def result_status(browser, no) -> str:
    page = await browser.get(f"/wxpay/orders/{no}/result")
    assert page.code == 200, page.body
    return re.search(r'data-status="(\w+)"', page.body.decode()).group(1)


@pytest.mark.gen_test
async def test_the_guard_sees_a_query_on_the_loop_and_not_one_off_it(http_client, ctx,
                                                                     loop_guard):
    from tornpay.orders.pages import find_order

    assert await ctx.db_read(find_order, "TP-none") is None
    assert loop_guard.violations == [] and loop_guard.off_loop > 0
    find_order("TP-none")  # what a handler must never do
    # A test's own look at the database (tests/) is not counted against tornpay.
    assert loop_guard.violations and "tornpay/orders/pages.py" in loop_guard.violations[0]
    with pytest.raises(Order.DoesNotExist):
        order_row("TP-none")
    assert loop_guard.test_queries >= 1 and len(loop_guard.violations) == 1
    loop_guard.violations.clear()
    loop_guard.check()


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("api_version", ["v2", "v3"])
async def test_jsapi_checkout_pay_notify_result_and_cancel(http_client, base_url, tp_settings,
                                                          ctx, recorder, loop_guard):
    browser = UABrowser(http_client, tp_settings.server.public_url, WECHAT)
    pay_path = await checkout_to_pay_page(browser)  # OAuth, the order, its prepay
    no = out_trade_no_of(pay_path)
    page = await browser.get(pay_path)
    assert page.code == 200 and jsapi_from_page(page.body)["package"].startswith("prepay_id=")
    await sim_control(http_client, base_url, "pay", out_trade_no=no)  # the simulator notifies

    async def paid():
        answer = await browser.get(f"/wxpay/orders/{no}")
        return json.loads(answer.body)["state"] == "PAID"
    await wait_for(paid)
    assert await result_status(browser, no) == "paid"
    assert location(await browser.get(pay_path)) == f"/wxpay/orders/{no}/result"
    await wait_for(lambda: recorder.paid)
    await sim_control(http_client, base_url, "notify/resend", out_trade_no=no)  # a duplicate
    forged = await http_client.fetch(base_url + "/wxpay/notify", method="POST",
                                     body=b"<xml><return_code>SUCCESS</return_code></xml>")
    assert b"FAIL" in forged.body or forged.code == 400  # refused, and stored as such
    # A second order, cancelled by its payer from the pay page's form.
    again = await browser.get("/wxpay/checkout/coach-205")  # signed in: straight to it
    assert again.code == 303, again.body
    second = out_trade_no_of(location(again))
    token = XSRF_RE.search((await browser.get(f"/wxpay/pay/{second}")).body.decode()).group(1)
    done = await browser.fetch(f"/wxpay/orders/{second}/cancel", method="POST",
                               body=f"_xsrf={token}")
    assert done.code == 303 and await result_status(browser, second) == "cancelled"
    loop_guard.check()


@pytest.mark.gen_test(timeout=60)
async def test_native_and_mweb_pages_and_payments(http_client, base_url, tp_settings, ctx,
                                                  loop_guard):
    desktop = UABrowser(http_client, tp_settings.server.public_url, DESKTOP)
    start = await desktop.get("/wxpay/checkout/coach-205")
    assert start.code == 303, start.body
    native = out_trade_no_of(location(start))
    page = await desktop.get(location(start))
    assert page.code == 200 and b'id="tornpay-qr"' in page.body
    await sim_control(http_client, base_url, "pay", out_trade_no=native)
    await wait_for(lambda: order_row(native).state == "PAID")
    assert await result_status(desktop, native) == "paid"

    phone = UABrowser(http_client, tp_settings.server.public_url, PHONE)
    start = await phone.get("/wxpay/checkout/coach-101")
    assert start.code == 303 and "checkmweb" in location(start)
    result = parse_qs(urlsplit(location(start)).query)["redirect_url"][0]
    mweb = result.rsplit("/", 2)[-2]
    assert await result_status(phone, mweb) == "pending"  # one orderquery on the way back
    again = await phone.get(f"/wxpay/pay/{mweb}")  # "pay again": a fresh mweb_url
    assert again.code == 303 and "checkmweb" in location(again)
    await sim_control(http_client, base_url, "pay", out_trade_no=mweb)
    await wait_for(lambda: order_row(mweb).state == "PAID")
    assert await result_status(phone, mweb) == "paid"
    loop_guard.check()


async def paid_at_wechat_only(ctx, http_client, base_url) -> str:
    """An order WeChat took payment for whose notify never came (the bill finds it)."""
    from tornpay.orders.service import create_order

    await sim_control(http_client, base_url, "faults", name="notify_drop")
    no = (await create_order(ctx, "coach-205", ALICE, "127.0.0.1")).out_trade_no
    await sim_control(http_client, base_url, "pay", out_trade_no=no)
    return no


async def run_daily_job(ctx, monkeypatch) -> list:
    from tornpay.bills import scheduler
    from tornpay.protocol.wechat_time import BEIJING

    today = datetime.datetime.now(BEIJING).date()
    tomorrow = datetime.datetime.combine(today + datetime.timedelta(days=1),
                                         datetime.time(10, 31), BEIJING)
    monkeypatch.setattr(scheduler, "utcnow", lambda: tomorrow.astimezone(
        datetime.timezone.utc).replace(tzinfo=None))
    return await scheduler.BillScheduler(ctx).run_once()


@pytest.mark.gen_test(timeout=90)
async def test_console_refund_refund_notify_deliveries_and_the_daily_bill(
        http_client, base_url, ctx, operator, recorder, monkeypatch, loop_guard):
    no = await paid_at_wechat_only(ctx, http_client, base_url)
    lines = await run_daily_job(ctx, monkeypatch)  # fetch, compare, settle by orderquery
    assert len(lines) == 3 and order_row(no).state == "PAID"
    await http_client.fetch(f"{base_url}/_sim/control/faults?name=notify_drop", method="DELETE")
    await wait_for(lambda: recorder.paid)

    wrong = Browser(http_client, base_url)  # a failure is counted (lockout) and audited
    refused = await post(wrong, f"{ADMIN}/login", name=OPERATOR, password="not it")
    assert refused.code == 401
    browser = await login(http_client, base_url)
    for path in ("/", "/orders", "/orders?state=PAID&q=" + no, f"/orders/{no}",
                 "/deliveries", "/deliveries?state=done", "/bills",
                 f"/bills/{BillRun.select().order_by(BillRun.bill_date.desc()).first().bill_date}"):
        page = await browser.get(ADMIN + path, headers=EN)
        assert page.code == 200, (path, page.body)
    confirm = await post(browser, f"{ADMIN}/orders/{no}/refund", fee="900", reason="late")
    assert confirm.code == 200 and b"tornpay-refund-confirm" in confirm.body
    done = await post(browser, f"{ADMIN}/orders/{no}/refund", fee="900", reason="late",
                      confirm="1")
    assert done.code == 200, done.body
    refund = Refund.get()
    await sim_control(http_client, base_url, "refunds/finish", out_refund_no=refund.out_refund_no)
    await wait_for(lambda: recorder.refunds)  # the refund notify, then on_refund
    await wait_for(lambda: order_row(no).state == "PARTIAL_REFUNDED")
    delivery = Delivery.select().first()
    retried = await post(browser, f"{ADMIN}/deliveries/{quote(delivery.id, safe='')}/retry")
    assert retried.code == 409  # done: never repeated (read, refused, audited)
    assert (await post(browser, f"{ADMIN}/logout")).code == 303
    loop_guard.check()


@pytest.mark.gen_test(timeout=60)
async def test_json_api_health_and_metrics(http_client, base_url, tp_settings, ctx, loop_guard):
    from api_helpers import ApiBrowser

    browser = ApiBrowser(http_client, base_url)
    browser.set_openid(tp_settings, ALICE)
    await browser.session()
    status, made = await browser.api("POST", "/orders", {"product_id": "coach-101"},
                                     headers={"User-Agent": WECHAT})
    assert status == 201, made
    no = made["out_trade_no"]
    status, seen = await browser.api("GET", "/orders/" + no)
    assert status == 200 and seen["state"] == "PREPAID"
    status, missing = await browser.api("GET", "/orders/TPnosuchorder")
    assert status == 404
    status, cancelled = await browser.api("POST", f"/orders/{no}/cancel")
    assert status == 200 and cancelled["state"] == "CLOSED", cancelled
    await python_api(ctx, http_client, base_url)
    health = await http_client.fetch(base_url + "/healthz", raise_error=False)
    assert health.code == 200, health.body
    metrics = await http_client.fetch(base_url + "/metrics", raise_error=False)
    assert metrics.code == 200 and b"tornpay_" in metrics.body
    loop_guard.check()


async def python_api(ctx, http_client, base_url) -> None:
    """An estate's calls (tornpay.Embedded's methods) on the same running context."""
    from tornpay import errors
    from tornpay.pyapi import OrderAPI

    class Estate(OrderAPI):
        def __init__(self, ctx):
            self.ctx = ctx

    estate = Estate(ctx)
    made = await estate.create_order("coach-205", ALICE)
    assert (await estate.get_order(made.out_trade_no)).state == "PREPAID"
    assert (await estate.query(made.out_trade_no)).state == "PREPAID"  # orderquery: NOTPAY
    with pytest.raises(errors.InvalidState):
        await estate.close(made.out_trade_no)  # too young for WeChat's closeorder
    await sim_control(http_client, base_url, "pay", out_trade_no=made.out_trade_no)
    await wait_for(lambda: order_row(made.out_trade_no).state == "PAID")
    refund = await estate.refund(made.out_trade_no, 100, "partial")
    assert refund.state == "PROCESSING"
    other = await estate.create_order(total_fee=5, body="an estate's own price", payer=ALICE)
    assert (await estate.cancel(other.out_trade_no)).state == "CLOSED"


def busy(ctx, monkeypatch):
    """Every database job of the app gives up at once, as when the wait bound is reached."""
    from tornpay.storage.dbjobs import DbBusy

    async def refuse(*args, **kwargs):
        raise DbBusy("database busy; nothing written (test)")
    monkeypatch.setattr(ctx.dbx, "read", refuse)
    monkeypatch.setattr(ctx.dbx, "write", refuse)


@pytest.mark.gen_test(timeout=60)
async def test_a_busy_database_asks_to_try_again_everywhere(http_client, base_url, tp_settings,
                                                           ctx, operator, monkeypatch):
    browser = UABrowser(http_client, tp_settings.server.public_url, WECHAT)
    no = out_trade_no_of(await checkout_to_pay_page(browser))
    console = await login(http_client, base_url)
    busy(ctx, monkeypatch)
    for path in (f"/wxpay/pay/{no}", f"/wxpay/orders/{no}/result"):
        en, zh = await browser.get(path, headers=EN), await browser.get(path, headers=ZH)
        assert en.code == zh.code == 503, (path, en.body)
        assert b"please try again" in en.body and "请稍后再试".encode() in zh.body
    assert (await browser.get(f"/wxpay/orders/{no}")).code == 503
    for path in ("/", "/orders", f"/orders/{no}", "/deliveries", "/bills"):
        en, zh = await console.get(ADMIN + path, headers=EN), await console.get(ADMIN + path,
                                                                                 headers=ZH)
        assert en.code == zh.code == 503, (path, en.body)
        assert b"please try again" in en.body and "请稍后再试".encode() in zh.body
    signin = await post(Browser(http_client, base_url), f"{ADMIN}/login", name=OPERATOR,
                        password=PASSWORD)
    assert signin.code == 503
    from api_helpers import ApiBrowser

    api = ApiBrowser(http_client, base_url)
    api.set_openid(tp_settings, ALICE)
    await api.session()
    status, answer = await api.api("GET", "/orders/" + no)
    assert status == 503 and answer["error"]["code"] == "database_busy", answer
    assert order_row(no).state == "PREPAID"  # nothing was written
