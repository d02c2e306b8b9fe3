"""Benchmark: 100 concurrent checkouts against a simulator that answers unified order after 300 ms.

Run: ``python bench/checkout_concurrency.py [--n 100] [--latency 0.3]``. Not a test:
it prints timings. A blocking server would need n x latency; tornpay should
finish all of them in about the time of one. The simulator, the tornpay server
and the load generator run in three processes, so only the server's own work
is measured (``--one-process`` puts all three on one IOLoop instead).
"""

import argparse
import asyncio
import json
import multiprocessing
import socket
import statistics
import tempfile
import time

import tornado.web
from tornado.httpclient import AsyncHTTPClient
from tornado.httpserver import HTTPServer

from tornpay.app import make_app
from tornpay.settings import settings_from_dict

OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"  # the simulator's first test user


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


APPID, MCH_ID = "wxd930ea5d5a258f4f", "10000100"
APP_SECRET, API_KEY = "bench-app-secret", "bench" * 6 + "12"  # not the shipped test key


def bench_settings(port: int, tmp: str, sim_url: str = "", plugins=None):
    wechat = {"appid": APPID, "app_secret": APP_SECRET, "mch_id": MCH_ID, "api_key": API_KEY}
    if sim_url:  # a standalone simulator in its own process
        wechat.update(pay_api_base=sim_url, oauth_api_base=sim_url,
                      oauth_authorize_url=sim_url + "/connect/oauth2/authorize")
    else:  # the mounted simulator runs only with the shipped test credentials (SPEC §3)
        wechat.update(app_secret="tornpay-simulator-app-secret",
                      api_key="192006250b4c09247ec02edce69f6a2d")
    return settings_from_dict({
        "server": {"address": "127.0.0.1", "port": port, "public_url": f"http://127.0.0.1:{port}",
                   "cookie_secret": "bench-cookie-secret-0123456789abcdef"},
        "wechat": wechat,
        "database": {"url": f"sqlite:///{tmp}/bench.db"},
        # One payer makes every checkout, and each must be a new order: no limits, no reuse.
        "orders": {"reconcile_after_seconds": 3600, "max_open_per_payer": 0, "max_open_per_ip": 0, "reuse_open_order": False},
        "simulator": {"enabled": not sim_url},
        **({"plugins": plugins} if plugins is not None else {}),
        "catalog": {"products": {"coach-101": {"body": "Private coaching, 1 hour",
                                               "total_fee": 1}}},
    }, env={})


def run_simulator_process(port: int) -> None:
    from tornpay.simulator.app import run_simulator
    from tornpay.simulator.config import SimulatorConfig

    config = SimulatorConfig.single(APPID, APP_SECRET, MCH_ID, API_KEY)
    asyncio.run(run_simulator(config, "127.0.0.1", port))


def run_server_process(port: int, tmp: str, sim_url: str, plugins) -> None:
    async def serve():
        make_app(bench_settings(port, tmp, sim_url, plugins)).listen(port, "127.0.0.1")
        await asyncio.Event().wait()

    asyncio.run(serve())


async def wait_listening(client, url: str) -> None:
    for _ in range(200):
        try:
            await client.fetch(url, raise_error=False, request_timeout=1)
            return
        except Exception:  # not listening yet (CurlError, ConnectionRefusedError)
            await asyncio.sleep(0.05)
    raise SystemExit(f"{url} never answered")


def make_client():
    try:
        from tornado.curl_httpclient import CurlAsyncHTTPClient

        return CurlAsyncHTTPClient(force_instance=True, max_clients=1000)
    except ImportError:
        return AsyncHTTPClient(force_instance=True, max_clients=1000)


async def one_checkout(client, url: str, cookie: str) -> float:
    started = time.monotonic()
    reply = await client.fetch(url, headers={"Cookie": f"tornpay_openid={cookie}"},
                               follow_redirects=False, raise_error=False, request_timeout=60)
    if reply.code != 303:
        raise SystemExit(f"checkout answered {reply.code}: {reply.body[:300]!r}")
    return time.monotonic() - started


async def drive(client, url: str, cookie: str, n: int):
    await one_checkout(client, url, cookie)  # warm up: connections, tables, imports
    single = await one_checkout(client, url, cookie)
    started = time.monotonic()
    times = await asyncio.gather(*(one_checkout(client, url, cookie) for _ in range(n)))
    return single, time.monotonic() - started, sorted(times)


async def separate_processes(n: int, latency: float, tmp: str, plugins):
    sim_port, port = free_port(), free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    spawn = multiprocessing.get_context("spawn")
    procs = [spawn.Process(target=run_simulator_process, args=(sim_port,), daemon=True),
             spawn.Process(target=run_server_process, args=(port, tmp, sim_url, plugins),
                           daemon=True)]
    for proc in procs:
        proc.start()
    client = make_client()
    try:
        await wait_listening(client, sim_url + "/control/state")
        await wait_listening(client, f"http://127.0.0.1:{port}/healthz")
        await client.fetch(sim_url + "/control/faults", method="POST", body=json.dumps(
            {"name": "latency", "endpoint": "unifiedorder", "seconds": latency}))
        cookie = tornado.web.create_signed_value(bench_settings(port, tmp).server.cookie_secret,
                                                 "tornpay_openid", OPENID).decode()
        return await drive(client, f"http://127.0.0.1:{port}/wxpay/checkout/coach-101",
                           cookie, n)
    finally:
        client.close()
        for proc in procs:
            proc.terminate()
            proc.join(5)


async def one_process(n: int, latency: float, tmp: str, plugins):
    port = free_port()
    settings = bench_settings(port, tmp, "", plugins)
    app = make_app(settings)
    ctx = app.settings["tornpay"]
    server = HTTPServer(app)
    server.listen(port, "127.0.0.1")
    ctx.simulator.faults.set("latency", endpoint="unifiedorder", seconds=latency)
    cookie = tornado.web.create_signed_value(settings.server.cookie_secret,
                                             "tornpay_openid", OPENID).decode()
    client = make_client()
    try:
        return await drive(client, f"http://127.0.0.1:{port}/wxpay/checkout/coach-101",
                           cookie, n)
    finally:
        client.close()
        server.stop()
        await ctx.stop()


async def main(n: int, latency: float, together: bool, plugins=None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run = one_process if together else separate_processes
        single, wall, times = await run(n, latency, tmp, plugins)
    print("layout: " + ("client, server and simulator on one IOLoop" if together
                        else "client, server and simulator in three processes"))
    print(f"unified order latency (simulated): {latency * 1000:.0f} ms")
    print(f"one checkout alone:                {single * 1000:.0f} ms")
    print(f"{n} concurrent checkouts, wall:     {wall * 1000:.0f} ms "
          f"({wall / single:.2f}x one checkout; a blocking server: ~{n * latency:.0f} s)")
    print(f"per checkout: min {times[0] * 1000:.0f} ms, median "
          f"{statistics.median(times) * 1000:.0f} ms, p95 "
          f"{times[int(0.95 * (n - 1))] * 1000:.0f} ms, max {times[-1] * 1000:.0f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="concurrent checkouts")
    parser.add_argument("--latency", type=float, default=0.3, help="unified order delay (s)")
    parser.add_argument("--one-process", action="store_true",
                        help="run client, server and simulator on one IOLoop")
    parser.add_argument("--plugins", help="comma-separated plugin modules (default: settings')")
    args = parser.parse_args()
    plugins = args.plugins.split(",") if args.plugins else None
    asyncio.run(main(args.n, args.latency, args.one_process, plugins))
