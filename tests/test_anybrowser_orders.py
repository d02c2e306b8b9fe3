"""NATIVE and MWEB orders through refunds, hooks, close, the CLI and nginx's X-Real-IP."""

from urllib.parse import parse_qs, urlsplit

import pytest
import tornado.httpserver
import yaml
from click.testing import CliRunner

from conftest import base_settings_dict
from flow_helpers import Browser, order_row, sim_control, wait_for
from helpers_orders import RecordingPlugin, make_db, make_order
from tornpay.orders import refunds as refunds_mod
from tornpay.orders.service import create_order
from tornpay.storage.models import Order, Refund

pytestmark = pytest.mark.hold_refunds  # refunds finish only through the control API

PAYER = "p" * 32
PHONE = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Mobile Safari/537.36"
PHONE_IP = "198.51.100.23"


@pytest.fixture
def tp_overrides():
    return {"orders": {"trade_types": ["JSAPI", "NATIVE", "MWEB"]}}


@pytest.fixture
def recorder():
    return RecordingPlugin()  # registered in the app by conftest's tp_plugins


@pytest.fixture
def http_server(io_loop, _unused_port, app):
    # As behind nginx: the payer's address arrives in X-Real-IP (server.xheaders).
    server = tornado.httpserver.HTTPServer(app, xheaders=True)
    server.add_socket(_unused_port[0])
    yield server
    server.stop()


@pytest.mark.parametrize("trade_type", ["NATIVE", "MWEB"])
@pytest.mark.parametrize("api_version", ["v2", "v3"])
@pytest.mark.gen_test(timeout=20)
async def test_paid_then_refunded_with_hooks_seeing_the_trade_type(ctx, http_client, base_url,
                                                                   recorder, trade_type,
                                                                   api_version):
    order = await create_order(ctx, "coach-205", "", "203.0.113.7", trade_type=trade_type,
                               payer=PAYER)
    no = order.out_trade_no
    assert (order.trade_type, order.payer, order.openid) == (trade_type, PAYER, "")
    assert order.api_version == api_version and order.prepay_id
    assert (order.code_url or order.mweb_url).startswith(
        "weixin://" if trade_type == "NATIVE" else "http")
    await sim_control(http_client, base_url, "pay", out_trade_no=no)
    await wait_for(lambda: order_row(no).state == "PAID")
    refund = await refunds_mod.request_refund(ctx, no, 4000)
    assert refund.state == "PROCESSING", refund.last_error
    await sim_control(http_client, base_url, "refunds/finish", out_refund_no=refund.out_refund_no)
    await wait_for(lambda: Refund.get_by_id(refund.out_refund_no).state == "SUCCESS")
    await wait_for(lambda: recorder.hooks_called("on_paid") and recorder.hooks_called("on_refund"))
    assert {kw["order"].trade_type for _, kw in recorder.calls} == {trade_type}
    assert order_row(no).state == "PARTIAL_REFUNDED"


@pytest.mark.gen_test(timeout=20)
@pytest.mark.parametrize("api_version", ["v2", "v3"])
async def test_expired_native_order_is_closed_by_the_reconciler(ctx, recorder, http_client,
                                                                api_version):
    order = await create_order(ctx, "coach-101", "", "203.0.113.7", trade_type="NATIVE",
                               payer=PAYER)
    Order.update(expire_at=order.created_at, created_at=order.created_at.replace(year=2020)) \
        .where(Order.out_trade_no == order.out_trade_no).execute()
    ctx.simulator.advance(3600)
    assert await ctx.reconciler.check(order.out_trade_no) == "NOTPAY"
    await wait_for(lambda: recorder.hooks_called("on_cancel"))
    view = recorder.hooks_called("on_cancel")[0]
    assert (view["reason"], view["order"].trade_type) == ("expired", "NATIVE")


@pytest.mark.gen_test
async def test_mweb_sends_the_payers_nginx_address_and_checkmweb_compares_it(
        http_client, tp_settings):
    browser = Browser(http_client, tp_settings.server.public_url)
    phone = {"User-Agent": PHONE, "X-Real-IP": PHONE_IP}
    start = await browser.get("/wxpay/checkout/coach-101", headers=phone)
    assert start.code == 303, start.body
    mweb = start.headers["Location"]
    no = parse_qs(urlsplit(mweb).query)["redirect_url"][0].rsplit("/", 2)[-2]
    assert order_row(no).spbill_create_ip == PHONE_IP
    assert f"<spbill_create_ip><![CDATA[{PHONE_IP}]]></spbill_create_ip>" in \
        order_row(no).unified_request
    shop = {"Referer": tp_settings.server.public_url + "/"}
    moved = await browser.get(mweb, headers=dict(phone, **shop, **{"X-Real-IP": "203.0.113.99"}))
    assert "网络环境未能通过安全验证，请稍后再试" in moved.body.decode()
    same = await browser.get(mweb, headers=dict(phone, **shop))
    assert 'id="tornpay-sim-cashier"' in same.body.decode()


def test_cli_lists_and_shows_the_trade_type(tmp_path):
    make_db(tmp_path)
    make_order("TPNATIVE1", trade_type="NATIVE", openid="", payer=PAYER)
    make_order("TPMWEB1", trade_type="MWEB", openid="", payer=PAYER)
    from proc_helpers import suite_database_url
    data = base_settings_dict(tmp_path, 8899)
    data["database"]["url"] = suite_database_url(tmp_path)
    path = tmp_path / "settings.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    from tornpay.cli import cli

    runner = CliRunner()
    listing = runner.invoke(cli, ["orders", "list", "--settings", str(path)])
    assert listing.exit_code == 0, listing.output
    rows = {line.split()[0]: line.split()[2] for line in listing.output.splitlines()[1:]}
    assert rows["TPNATIVE1"] == "NATIVE" and rows["TPMWEB1"] == "MWEB"
    shown = runner.invoke(cli, ["orders", "show", "TPMWEB1", "--settings", str(path)])
    assert ["trade_type:", "MWEB"] in [line.split() for line in shown.output.splitlines()]
