"""The Python API example estate in docs/embedding.md runs: basket, payment, refunds, close."""

import importlib.util
import json
import pathlib
import re

import pytest
import tornado.web

from conftest import base_settings_dict, merge
from flow_helpers import ALICE, wait_for
from tornpay.storage.models import Event

DOC = pathlib.Path(__file__).resolve().parent.parent / "docs" / "embedding.md"
XSRF = "0123456789abcdef"  # the estate's XSRF cookie and header (Tornado's unversioned form)


def load_example(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    source = next(b for b in blocks if b.startswith("# basket_estate.py"))
    path = tmp_path / "basket_estate.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("basket_estate", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def example(tmp_path, http_port, io_loop):
    module = load_example(tmp_path)
    settings = merge(base_settings_dict(tmp_path, http_port),
                     {"orders": {"min_close_age_seconds": 0},
                      "simulator": {"close_min_age_seconds": 0}, "plugins": []})
    del settings["server"]["prefix"]
    app, tp, shop = module.build(settings)
    tp.start()
    yield app, tp, shop
    io_loop.run_sync(tp.stop)


@pytest.fixture
def app(example):
    return example[0]


async def call(http_client, base_url, method, path, data=None):
    cookie = tornado.web.create_signed_value("the-estate-own-cookie-secret", "estate_openid",
                                             ALICE).decode()
    response = await http_client.fetch(
        base_url + path, method=method, raise_error=False,
        body=None if method == "GET" else json.dumps(data or {}),
        headers={"Cookie": f"estate_openid={cookie}; _xsrf={XSRF}", "X-XSRFToken": XSRF})
    return response.code, json.loads(response.body)


@pytest.mark.gen_test(timeout=40)
async def test_documented_python_api_estate(http_client, base_url, example):
    _app, _tp, shop = example
    status, basket = await call(http_client, base_url, "POST", "/basket",
                                {"items": ["ball", "racket"], "total_fee": 1})
    assert status == 200 and basket["total_fee"] == 33500, basket
    number = basket["out_trade_no"]
    assert basket["pay_params"]["package"].startswith("prepay_id=")
    await http_client.fetch(base_url + "/_sim/control/pay", method="POST",
                            body=json.dumps({"out_trade_no": number}))
    await wait_for(lambda: shop.paid == [number], timeout=10)

    status, first = await call(http_client, base_url, "POST", f"/admin/orders/{number}/refund",
                               {"fee": 1500})
    assert status == 200 and first["state"] in ("PROCESSING", "SUCCESS")
    await wait_for(lambda: shop.refunded == [(number, 1500)], timeout=10)
    status, too_much = await call(http_client, base_url, "POST",
                                  f"/admin/orders/{number}/refund", {"fee": 40000})
    assert (status, too_much["error"]) == (409, "invalid_state")
    status, rest = await call(http_client, base_url, "POST", f"/admin/orders/{number}/refund")
    assert status == 200
    await wait_for(lambda: shop.refunded == [(number, 1500), (number, 32000)], timeout=10)
    status, queried = await call(http_client, base_url, "GET", f"/admin/orders/{number}")
    assert queried == {"state": "REFUNDED", "refunded_fee": 33500}

    status, other = await call(http_client, base_url, "POST", "/basket", {"items": ["ball"]})
    status, closed = await call(http_client, base_url, "POST",
                                f"/admin/orders/{other['out_trade_no']}/close")
    assert (status, closed["state"]) == (200, "CLOSED")
    status, missing = await call(http_client, base_url, "GET", "/admin/orders/TP000")
    assert (status, missing["error"]) == (404, "not_found")
    assert shop.paid == [number]
    assert Event.select().where(Event.out_trade_no == number).count() == 3  # paid, 2 refunds
