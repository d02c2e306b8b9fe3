"""Helpers for the console tests: an operator, a signed-in browser, recording plugins."""

import urllib.parse

import pytest

from flow_helpers import Browser, location

OPERATOR, PASSWORD = "alice", "correct horse battery"
ADMIN = "/wxpay/admin"


class Recorder:
    """A plugin recording every on_paid and on_refund call."""

    __name__ = "console_recorder"

    def __init__(self):
        self.paid, self.refunds = [], []

    def on_paid(self, order):
        self.paid.append((order.out_trade_no, order.delivery_id))

    def on_refund(self, order, refund):
        self.refunds.append((order.out_trade_no, refund.out_refund_no, refund.refund_fee))


@pytest.fixture
def tp_overrides():
    # The shipped default language (the suite's base settings read English pages).
    return {"admin": {"enabled": True}, "server": {"default_locale": "zh_CN"}}


@pytest.fixture
def recorder():
    return Recorder()  # registered in the app by conftest's tp_plugins


@pytest.fixture
def operator(app):
    from tornpay.console.passwords import set_password

    set_password(OPERATOR, PASSWORD)
    return OPERATOR


def form(**fields) -> str:
    return urllib.parse.urlencode(fields)


async def xsrf(browser: Browser) -> str:
    """The browser's XSRF token (fetching the login page sets it)."""
    if "_xsrf" not in browser.cookies:
        await browser.get(f"{ADMIN}/login")
    return browser.cookies["_xsrf"]


async def post(browser: Browser, path: str, with_xsrf: bool = True, headers=None, **fields):
    if with_xsrf:
        fields["_xsrf"] = await xsrf(browser)
    return await browser.fetch(path, method="POST", body=form(**fields), headers=headers)


async def login(http_client, base_url, name=OPERATOR, password=PASSWORD, **headers) -> Browser:
    """A browser signed in to the console (asserts success)."""
    browser = Browser(http_client, base_url)
    response = await post(browser, f"{ADMIN}/login", name=name, password=password)
    assert response.code == 303 and location(response) == f"{ADMIN}/", response.body
    return browser
