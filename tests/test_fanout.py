"""SPEC §6 fan-out: a change made by the CLI reaches plugins only a serving process has loaded."""

import asyncio
import copy
import json
import os
import sys

import pytest
import yaml

import tornpay
from cli_helpers import (environ, free_port, new_order, run_cli, start, stop, wait_until,
                         write_settings)
from helpers_orders import make_order
from tornpay.storage.models import DONE, KnownPlugin, Delivery, Event

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def with_plugins(path, name, plugins):
    """A copy of the settings file at ``path`` loading ``plugins``, written as ``name``."""
    with open(path) as f:
        data = yaml.safe_load(f)
    data["plugins"] = plugins
    out = os.path.join(os.path.dirname(path), name)
    with open(out, "w") as f:
        yaml.safe_dump(data, f)
    return out


def cancels(directory):
    path = environ(directory)["TORNPAY_TEST_RECORD"] + ".cancel"
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f]


@pytest.mark.slow
def test_server_plugin_the_cli_does_not_load_gets_on_cancel_from_tornpay_close(tmp_path):
    port = free_port()
    base_file = write_settings(tmp_path, port)
    server_file = with_plugins(base_file, "server.yaml", ["tornpay.plugins.catalog",
                                                          "fanout_plugin"])
    cli_file = with_plugins(base_file, "cli.yaml", ["tornpay.plugins.catalog"])
    base = f"http://127.0.0.1:{port}"
    proc = start(tmp_path, [sys.executable, os.path.join(ROOT, "server.py"), "--settings",
                            server_file], base + "/healthz")
    try:
        out_trade_no = new_order(base)
        result = run_cli(tmp_path, "close", out_trade_no, settings=cli_file)
        assert result.returncode == 0, result.stderr
        (line,) = wait_until(lambda: cancels(tmp_path), timeout=20)
        assert line[:2] == [out_trade_no, "closed"] and line[3] == proc.pid
        assert line[2].endswith(":fanout_plugin")
    finally:
        code, err = stop(proc)
    assert code == 0, err
    assert len(cancels(tmp_path)) == 1  # once in total


class Warehouse:
    """An estate's plugin, registered only in code (``tornpay.routes(plugins=[...])``)."""

    def __init__(self):
        self.cancelled = []

    def on_cancel(self, order, reason):
        self.cancelled.append((order.out_trade_no, reason, order.delivery_id))


@pytest.fixture
def estate(tp_settings_dict, io_loop):
    data = copy.deepcopy(tp_settings_dict)
    del data["server"]["prefix"]
    data["plugins"] = []
    data["orders"]["min_close_age_seconds"] = 0
    warehouse = Warehouse()
    tp = tornpay.routes(data, prefix="/pay", plugins=[warehouse], env={})
    tp.warehouse, tp.data = warehouse, data
    yield tp
    io_loop.run_sync(tp.stop)


@pytest.fixture
def app(estate):
    import tornado.web

    estate.start()
    return tornado.web.Application(estate.routes)


@pytest.mark.gen_test(timeout=60)
@pytest.mark.slow
async def test_code_registered_estate_plugin_gets_on_cancel_from_tornpay_close(estate, http_server,
                                                                               tmp_path):
    assert KnownPlugin.get_by_id("Warehouse").on_cancel
    make_order("ESTATE0001", openid="o-payer", age_seconds=600)
    settings = tmp_path / "cli.yaml"  # the estate's settings; the CLI has no Warehouse
    settings.write_text(yaml.safe_dump(dict(estate.data, server=dict(
        estate.data["server"], prefix="/pay"))))
    loop = asyncio.get_running_loop()
    result = await loop.run_in_executor(None, lambda: run_cli(tmp_path, "close", "ESTATE0001",
                                                              settings=str(settings)))
    assert result.returncode == 0, result.stderr
    for _ in range(400):
        if estate.warehouse.cancelled:
            break
        await asyncio.sleep(0.05)
    (call,) = estate.warehouse.cancelled
    assert call[:2] == ("ESTATE0001", "closed") and call[2].endswith(":Warehouse")
    (delivery,) = Delivery.select().join(Event).where(Event.out_trade_no == "ESTATE0001")
    for _ in range(100):
        if Delivery.get_by_id(delivery.id).state == DONE:
            break
        await asyncio.sleep(0.05)
    assert Delivery.get_by_id(delivery.id).state == DONE
