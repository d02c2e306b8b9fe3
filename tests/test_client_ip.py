"""spbill_create_ip is the payer's address: X-Real-IP counts only with HTTPServer(xheaders)."""

import pytest
from tornado.httpclient import AsyncHTTPClient
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port

from flow_helpers import ALICE, openid_cookie
from tornpay.storage.models import Order


@pytest.fixture
def tp_overrides():
    return {"server": {"xheaders": True}}


async def checkout_through(app, tp_settings, xheaders):
    # The simulator answering unified order is mounted on the http_server fixture.

    sock, port = bind_unused_port()
    server = HTTPServer(app, xheaders=xheaders)
    server.add_sockets([sock])
    client = AsyncHTTPClient(force_instance=True)
    try:
        cookie = openid_cookie(tp_settings, ALICE)
        response = await client.fetch(
            f"http://127.0.0.1:{port}/wxpay/checkout/coach-101", follow_redirects=False,
            raise_error=False, headers={"Cookie": f"tornpay_openid={cookie}",
                                        "X-Real-IP": "203.0.113.7"})
        assert response.code == 303, response.body
        out_trade_no = response.headers["Location"].rsplit("/", 1)[1]
        return Order.get_by_id(out_trade_no).spbill_create_ip
    finally:
        client.close()
        server.stop()
        await server.close_all_connections()


@pytest.mark.gen_test(timeout=15)
async def test_x_real_ip_used_behind_nginx(app, tp_settings, http_server):
    assert await checkout_through(app, tp_settings, xheaders=True) == "203.0.113.7"


@pytest.mark.gen_test(timeout=15)
async def test_x_real_ip_ignored_without_xheaders(app, tp_settings, http_server):
    assert await checkout_through(app, tp_settings, xheaders=False) == "127.0.0.1"
