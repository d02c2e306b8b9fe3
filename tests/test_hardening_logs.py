"""No API key, app secret, OAuth code or openid cookie value in any log line or response body."""

import json
import logging
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.flow_helpers import (ALICE, Browser, jsapi_from_page, location, notify_fields,
                                order_row, out_trade_no_of, sign_in, signed_notify, wait_for)
from tornpay.orders import service
from tornpay.protocol.xmlcodec import decode_xml
from tornpay.sqllog import is_sql_record

KEY = "192006250b4c09247ec02edce69f6a2d"


class Recorder(Browser):
    """A browser that keeps every response it got."""

    def __init__(self, *args):
        super().__init__(*args)
        self.responses = []

    async def fetch(self, path_or_url, **kwargs):
        response = await super().fetch(path_or_url, **kwargs)
        self.responses.append(response)
        return response


@pytest.fixture(params=["MD5", "HMAC-SHA256"])
def tp_overrides(request):
    return {"wechat": {"sign_type": request.param}, "server": {"log_level": "DEBUG"}}


@pytest.mark.gen_test(timeout=30)
async def test_whole_flow_at_debug_leaks_no_secret_in_logs_or_bodies(
        http_client, ctx, tp_settings, caplog, secret_scan, monkeypatch):
    monkeypatch.setattr(service, "RETRY_BACKOFF_SECONDS", 0.01)
    caplog.set_level(logging.DEBUG)  # every logger, every level
    browser = Recorder(http_client, tp_settings.server.public_url)
    ctx.simulator.faults.set("systemerror", count=1, endpoint="unifiedorder")  # a retry logged too

    start = await browser.get("/wxpay/checkout/coach-205")
    callback = await sign_in(browser, location(start), ALICE)
    code = parse_qs(urlsplit(callback).query)["code"][0]
    secret_scan.extra["oauth code"] = code
    done = await browser.get(callback)
    assert done.code == 303
    cookie = browser.cookies["tornpay_openid"]
    secret_scan.extra["openid cookie"] = cookie
    pay_path = location(done)
    no = out_trade_no_of(pay_path)
    page = await browser.get(pay_path)
    params = jsapi_from_page(page.body)
    paid = await browser.fetch("/_sim/cashier/pay", method="POST",
                               body=json.dumps({"params": params}),
                               headers={"Referer": browser.url(pay_path)})
    assert json.loads(paid.body)["ok"] is True

    async def is_paid():
        reply = await browser.get(f"/wxpay/orders/{no}")
        return json.loads(reply.body)["state"] == "PAID"

    await wait_for(is_paid)
    await browser.get(f"/wxpay/orders/{no}/result")
    await browser.get(callback)  # a replayed callback: WeChat's 40163, logged as a warning
    # A refused notify and a duplicate one are logged too.
    order = order_row(no)
    forged = signed_notify(notify_fields(order, total_fee=1), "0" * 32)
    await browser.fetch("/wxpay/notify", method="POST", body=forged)
    await browser.fetch("/healthz")
    await browser.fetch("/wxpay/metrics")

    secrets = {"api key": tp_settings.wechat.api_key,
               "app secret": tp_settings.wechat.app_secret,
               "cookie secret": tp_settings.server.cookie_secret,
               "oauth code": code, "openid cookie": cookie}
    # What peewee's DEBUG lines used to carry: the signed unified order and its answer.
    unified = decode_xml(order.unified_request)
    # (The pay page itself carries the prepay_id: these two are checked in logs only.)
    log_secrets = dict(secrets, **{"unified-order sign": unified["sign"],
                                   "prepay_id": order.prepay_id})
    secret_scan.extra.update(log_secrets)  # the suite-wide scan checks them too
    records = [r for r in caplog.records]
    assert len(records) > 20  # DEBUG really was on
    # The openid is in the simulator's own sign-in URLs (its user picker), nowhere else.
    assert not [r.name for r in records if ALICE in r.getMessage() and "/_sim/" not in
                r.getMessage()]
    sql = [r for r in records if is_sql_record(r)]
    assert any("INSERT INTO" in r.msg[0] and "tornpay_order" in r.msg[0] for r in sql)
    assert not [r for r in sql if "<xml>" in r.getMessage()]  # the stored signed request
    for record in sql:  # statements are kept exactly: placeholders, commas, parentheses
        assert "%2C" not in record.msg[0] and "%29" not in record.msg[0] and "=" not in \
            record.msg[0].rstrip()[-1:]
    for record in records:
        text = record.getMessage()
        for what, value in log_secrets.items():
            assert value not in text, f"{what} in a {record.name} log record"
    for what, value in log_secrets.items():
        assert value not in caplog.text, f"{what} in the formatted log"
    assert len(browser.responses) >= 10
    ours = [r for r in browser.responses if "/_sim/" not in r.effective_url]  # not WeChat's
    assert len(ours) >= 8
    for response in ours:
        body = response.body.decode("utf-8", "replace")
        headers = "\n".join(f"{k}: {v}" for k, v in response.headers.get_all()
                            if k.lower() != "set-cookie")  # the cookie's own header, of course
        for what, value in secrets.items():
            assert value not in body, f"{what} in the body of {response.effective_url}"
            assert value not in headers, f"{what} in the headers of {response.effective_url}"
    # The scan of the whole suite saw this test's records as well, and nothing leaked.
    this_test = "test_whole_flow_at_debug_leaks_no_secret_in_logs_or_bodies"
    assert not [leak for leak in secret_scan.leaks if this_test in leak[0]]


def test_secret_scan_catches_a_leaking_record(secret_scan):
    # The scanner itself works: a record with a secret in its arguments is caught.
    before = len(secret_scan.leaks)
    secret_scan.extra["probe"] = "probe-secret-value-123"
    logging.getLogger("tornpay.test").warning("oops %s", "probe-secret-value-123")
    assert len(secret_scan.leaks) == before + 1
    secret_scan.leaks.pop()  # this one was on purpose
