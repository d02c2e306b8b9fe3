"""Issue 20 item 8: two tornpay processes share one standalone `tornpay simulator` and both pay."""

import html
import json
import os
import re
from urllib.parse import urljoin

import pytest
import yaml
from tornado.httpclient import AsyncHTTPClient

from flow_helpers import ALICE, BOB, USER_LINK_RE, Browser, jsapi_from_page, location, wait_for
from proc_helpers import (database_url, environ, free_port, request, start_process,
                          start_server, terminate)
from tornpay.simulator.clientcert import TEST_CERT, TEST_KEY

pytestmark = pytest.mark.slow

# The shipped demo credentials (settings.yaml): the simulator is only for test values.
SHIPPED = {"appid": "wxd930ea5d5a258f4f", "mch_id": "10000100",
           "api_key": "192006250b4c09247ec02edce69f6a2d",
           "app_secret": "tornpay-simulator-app-secret"}


def write_settings(directory, name, port, sim_port, server_ports, db_url):
    """One settings file per process, as docs/deploy.md describes the staging setup."""
    sim = f"http://127.0.0.1:{sim_port}"
    data = {
        "server": {"address": "127.0.0.1", "port": port, "public_url": f"http://127.0.0.1:{port}",
                   "prefix": "/wxpay", "cookie_secret": "staging-test-cookie-secret-0123456789",
                   "log_level": "INFO", "log_format": "json"},
        "wechat": dict(SHIPPED, cert_file=TEST_CERT, key_file=TEST_KEY, timeout=5,
                       pay_api_base=sim, oauth_api_base=sim,
                       oauth_authorize_url=sim + "/connect/oauth2/authorize"),
        "database": {"url": db_url},
        "orders": {"reconcile_after_seconds": 3600},
        "plugins": ["tornpay.plugins.catalog"],
        "catalog": {"products": {"coach-205": {"body": "Group clinic", "total_fee": 9900}}},
        "simulator": {"enabled": True, "notify_time_scale": 0.01, "public_url": sim,
                      "oauth_domains": ["127.0.0.1"],
                      "pay_directories": [f"http://127.0.0.1:{p}/wxpay/pay/"
                                          for p in server_ports]},
    }
    path = os.path.join(str(directory), f"{name}.yaml")
    with open(path, "w") as handle:
        yaml.safe_dump(data, handle)
    return path


def start_simulator(directory, settings, port, env):
    """The shared `tornpay simulator`; ready once its dashboard answers."""
    return start_process(directory, ["-m", "tornpay.cli", "simulator", "--port", str(port),
                                     "--settings", settings], port, env, "/")


async def pay_through(port, sim_port, openid):
    """Checkout on one process, sign in and pay at the shared simulator, end PAID."""
    browser = Browser(AsyncHTTPClient(), f"http://127.0.0.1:{port}")
    # WeChat's in-app browser (SPEC §9: JSAPI, so OAuth first).
    start = await browser.get("/wxpay/checkout/coach-205",
                              headers={"User-Agent": "Mozilla/5.0 MicroMessenger/8.0.47"})
    authorize = location(start)
    assert start.code == 302 and authorize.startswith(f"http://127.0.0.1:{sim_port}/"), authorize
    picker = await browser.get(authorize)
    links = {o: html.unescape(h) for o, h in USER_LINK_RE.findall(picker.body.decode())}
    chosen = await browser.get(urljoin(authorize, links[openid]))
    callback = location(chosen)
    assert chosen.code == 302 and callback.startswith(f"http://127.0.0.1:{port}/"), callback
    done = await browser.get(callback)  # the code is exchanged at the shared simulator
    assert done.code == 303, done.body
    page = await browser.get(location(done))
    bridge = f"http://127.0.0.1:{sim_port}/jsbridge.js"
    assert bridge.encode() in page.body
    script = (await browser.get(bridge)).body.decode()
    assert f'"http://127.0.0.1:{sim_port}/cashier"' in script
    paid = await browser.fetch(f"http://127.0.0.1:{sim_port}/cashier/pay", method="POST",
                               body=json.dumps({"params": jsapi_from_page(page.body)}),
                               headers={"Referer": browser.url(location(done))})
    assert json.loads(paid.body)["ok"] is True, paid.body
    no = location(done).rstrip("/").rsplit("/", 1)[-1]

    async def state():
        reply = await browser.get(f"/wxpay/orders/{no}", headers={"Accept": "application/json"})
        return json.loads(reply.body).get("state") == "PAID"

    await wait_for(state, timeout=15)
    return no


@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres),
                                     "sqlite"])
@pytest.mark.gen_test(timeout=90)
async def test_two_processes_pay_through_one_standalone_simulator(backend, tmp_path):
    env = environ(tmp_path)
    with database_url(backend, tmp_path) as url:
        sim_port, ports = free_port(), [free_port(), free_port()]
        procs = []
        try:
            sim_settings = write_settings(tmp_path, "sim", ports[0], sim_port, ports, url)
            procs.append(start_simulator(tmp_path, sim_settings, sim_port, env))
            for i, port in enumerate(ports):
                settings = write_settings(tmp_path, f"s{i}", port, sim_port, ports, url)
                procs.append(start_server(tmp_path, settings, port, env))
            # Sign-in on one process, pay on the same; both processes, one simulator state.
            first = await pay_through(ports[0], sim_port, ALICE)
            second = await pay_through(ports[1], sim_port, BOB)
            state = json.loads(request("GET", sim_port, "/control/state")[1])
            assert {o["out_trade_no"]: o["trade_state"] for o in state["orders"]} == {
                first: "SUCCESS", second: "SUCCESS"}
        finally:
            for proc in reversed(procs):
                terminate(proc)
        with open(tmp_path / f"server-{sim_port}.log", errors="replace") as handle:
            sim_log = handle.read()
        lines = [json.loads(line) for line in sim_log.splitlines() if line.strip()]
        # The server's format (one JSON object a line) and its scrubbing.
        assert any("/sns/oauth2/access_token" in line["msg"] for line in lines), sim_log
        assert SHIPPED["app_secret"] not in sim_log
        assert not re.search(r"[?&](code|secret)=(?!%5Bsecret%5D|\[secret\])", sim_log), sim_log
