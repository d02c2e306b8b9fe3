"""Test helpers for the payment flow: a cookie-keeping browser, the simulator's pages, notifies."""

import asyncio
import html
import json
import re
from http.cookies import SimpleCookie
from urllib.parse import urljoin, urlsplit

import tornado.web

from tornpay.orders.service import create_order
from tornpay.protocol.sign import make_sign
from tornpay.protocol.xmlcodec import encode_xml
from tornpay.storage.models import Order

ALICE = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"  # the simulator's first test user
BOB = "oUpF8uN95-Ptaags6E_roPHg7AG0"
JSAPI_RE = re.compile(r'<script type="application/json" id="tornpay-jsapi">(.*?)</script>', re.S)
USER_LINK_RE = re.compile(r'<a class="tornpay-sim-user" data-openid="([^"]+)" href="([^"]+)"')


class Browser:
    """Follows nothing by itself and keeps cookies by hand, like a strict test browser."""

    def __init__(self, http_client, base_url):
        self.http_client = http_client
        self.base_url = base_url
        self.cookies = {}

    def url(self, path_or_url: str) -> str:
        return urljoin(self.base_url + "/", path_or_url).split("#", 1)[0]

    async def fetch(self, path_or_url: str, **kwargs):
        headers = dict(kwargs.pop("headers", None) or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        response = await self.http_client.fetch(self.url(path_or_url), headers=headers,
                                                follow_redirects=False, raise_error=False,
                                                **kwargs)
        for header in response.headers.get_list("Set-Cookie"):
            jar = SimpleCookie()
            jar.load(header)
            for name, morsel in jar.items():
                if morsel.value:
                    self.cookies[name] = morsel.value
                else:
                    self.cookies.pop(name, None)
        return response

    async def get(self, path_or_url: str, **kwargs):
        return await self.fetch(path_or_url, **kwargs)

    def set_openid(self, settings, openid: str) -> None:
        """Hold a valid signed openid cookie, as after an earlier sign-in."""
        self.cookies["tornpay_openid"] = openid_cookie(settings, openid)


def openid_cookie(settings, openid: str) -> str:
    return tornado.web.create_signed_value(settings.server.cookie_secret, "tornpay_openid",
                                           openid).decode()


def location(response) -> str:
    return response.headers.get("Location", "")


async def sign_in(browser: Browser, authorize_url: str, openid: str = ALICE) -> str:
    """Open the simulator's authorize page, pick ``openid``; return the callback URL."""
    page = await browser.get(authorize_url)
    assert page.code == 200, page.body
    links = {o: html.unescape(href) for o, href in USER_LINK_RE.findall(page.body.decode())}
    assert openid in links, links
    redirect = await browser.get(links[openid])
    assert redirect.code == 302, redirect.body
    return location(redirect)


async def checkout_to_pay_page(browser: Browser, product_id: str = "coach-101",
                               openid: str = ALICE, query: str = "") -> str:
    """Checkout -> authorize -> callback; return the pay page path the callback sent us to."""
    start = await browser.get(f"/wxpay/checkout/{product_id}{query}")
    assert start.code == 302, start.body
    callback = await sign_in(browser, location(start), openid)
    done = await browser.get(callback)
    assert done.code == 303, done.body
    return location(done)


def payer_browser(http_client, settings, openid: str = ALICE) -> Browser:
    """A browser already holding ``openid``'s signed cookie (signed in earlier)."""
    browser = Browser(http_client, settings.server.public_url)
    browser.set_openid(settings, openid)
    return browser


async def prepaid_order(browser: Browser, product_id: str = "coach-205") -> Order:
    """A PREPAID order made through checkout by a payer whose openid cookie is held."""
    reply = await browser.get(f"/wxpay/checkout/{product_id}")
    assert reply.code == 303, reply.body
    row = order_row(out_trade_no_of(location(reply)))
    assert row.state == "PREPAID"
    return row


def jsapi_from_page(body: bytes) -> dict:
    match = JSAPI_RE.search(body.decode("utf-8"))
    assert match, "no script#tornpay-jsapi on the page"
    return json.loads(match.group(1))


def out_trade_no_of(pay_path: str) -> str:
    return urlsplit(pay_path).path.rstrip("/").rsplit("/", 1)[-1]


async def wait_for(predicate, timeout: float = 5.0, interval: float = 0.02):
    """Await until ``predicate()`` (sync or async) is truthy; return its value."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


async def sim_control(http_client, base_url, action, method="POST", **data) -> dict:
    """The in-process simulator's control API (JSON), e.g. ``"pay"``, ``"faults"``,
    ``"refunds/finish"`` or ``f"orders/{no}"`` with GET; asserts it answered 200."""
    response = await http_client.fetch(f"{base_url}/_sim/control/{action}", method=method,
                                       body=json.dumps(data) if method == "POST" else None,
                                       raise_error=False)
    assert response.code == 200, response.body
    return json.loads(response.body)


async def paid_order(ctx, http_client, base_url, product_id="coach-205") -> str:
    """Create an order (unified order at the simulator), pay it there, wait for the notify
    to make it PAID; its out_trade_no."""
    order = await create_order(ctx, product_id, ALICE, "127.0.0.1")
    await sim_control(http_client, base_url, "pay", out_trade_no=order.out_trade_no)
    await wait_for(lambda: order_row(order.out_trade_no).state == "PAID")
    return order.out_trade_no


def order_row(out_trade_no: str) -> Order:
    return Order.get_by_id(out_trade_no)


def order_snapshot(out_trade_no: str) -> dict:
    """Every column of the order, to prove a refused notify changed nothing."""
    return Order.select().where(Order.out_trade_no == out_trade_no).dicts().get()


def notify_fields(order: Order, *, appid="wxd930ea5d5a258f4f", mch_id="10000100",
                  transaction_id="4200002315202406013425869417", total_fee=None, **extra) -> dict:
    """An unsigned §11.2 payment notify for ``order``."""
    fields = {
        "appid": appid, "mch_id": mch_id, "nonce_str": "5d2b6c2a8db53831f7eda20af46e531c",
        "result_code": "SUCCESS", "return_code": "SUCCESS", "openid": order.openid,
        "is_subscribe": "N", "trade_type": "JSAPI", "bank_type": "OTHERS",
        "total_fee": str(order.total_fee if total_fee is None else total_fee),
        "fee_type": "CNY", "cash_fee": str(order.total_fee), "transaction_id": transaction_id,
        "out_trade_no": order.out_trade_no, "time_end": "20240601123110",
    }
    fields.update(extra)
    return fields


def signed_notify(fields: dict, key: str, sign_type: str = "MD5") -> bytes:
    """Sign ``fields`` as WeChat does (no sign_type element added) and encode them."""
    out = dict(fields)
    out["sign"] = make_sign(out, key, sign_type)
    return encode_xml(out)
