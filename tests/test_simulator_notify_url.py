"""Issue 20 item 4: notify_url refused as WeChat does; unreachable ones accepted, with a warning."""

import logging

import pytest

from sim_helpers import app, box, sim, sim_config, state  # noqa: F401  (fixtures)
from tornpay.simulator.notifyurl import notify_url_refusal, notify_url_warning


@pytest.mark.parametrize("url", [
    "https://m.example/notify?x=1",           # a query string
    "https://m.example/notify?",              # an empty one too
    "ftp://m.example/notify",                 # not http/https
    "m.example/notify",                       # not absolute
    "https:///notify",                        # no host
    "https://m.example/" + "n" * 250,         # longer than String(256)
])
@pytest.mark.gen_test
async def test_refused_like_wechat(sim, url):
    reply = await sim.api("/pay/unifiedorder", sim.order_params(notify_url=url))
    assert (reply["result_code"], reply["err_code"]) == ("FAIL", "INVALID_REQUEST")
    assert "notify_url" in reply["err_code_des"]
    assert not sim.state.orders


@pytest.mark.parametrize("url", [
    "http://localhost:8888/wxpay/notify", "http://127.0.0.1/n", "http://10.1.2.3/n",
    "http://192.168.0.9/n", "http://172.16.5.5/n", "http://[::1]:8080/n", "http://shop.local/n",
    "http://intranet/n", "http://169.254.1.1/n",
])
def test_unreachable_urls_are_warned_about(url):
    assert notify_url_refusal(url) is None
    assert "could not reach" in notify_url_warning(url)


@pytest.mark.parametrize("url", ["https://pay.merchant.example/wxpay/notify",
                                 "http://203.0.113.0.example.com/n", "https://8.8.8.8/n"])
def test_public_urls_pass_quietly(url):
    assert notify_url_refusal(url) is None and notify_url_warning(url) is None


@pytest.mark.gen_test
async def test_warning_on_the_dashboard_and_in_the_log(sim, caplog):
    caplog.set_level(logging.WARNING, logger="tornpay.simulator")
    order = await sim.order()  # notify_url on 127.0.0.1: accepted (local demos need it)
    record = sim.state.find_order(order["out_trade_no"])
    assert "could not reach" in record.notify_url_warning
    assert any(order["out_trade_no"] in r.getMessage() and "could not reach" in r.getMessage()
               for r in caplog.records)
    again = await sim.order()  # the log says it once per URL, the dashboard on every order
    assert sim.state.find_order(again["out_trade_no"]).notify_url_warning
    assert not any(again["out_trade_no"] in r.getMessage() for r in caplog.records)
    page = (await sim.client.fetch(sim.base + "/")).body.decode()
    assert "tornpay-sim-notify-warning" in page and "could not reach" in page
    code, listed = await sim.control(f"orders/{order['out_trade_no']}", method="GET")
    assert "could not reach" in listed["order"]["notify_url_warning"]
