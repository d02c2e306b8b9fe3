"""Junk flood: valid notify latency while unauthenticated junk floods /notify, against idle.

Run: ``python bench/junk_flood.py [--junk 20000] [--valid 200] [--connections 50]``.
It starts ``python server.py`` with SQLite in a temporary directory, inserts
PREPAID orders, then

1. idle: sends the valid notifies one at a time and times each;
2. flood: sends the same number of valid notifies (for other orders), one at a
   time, while ``--connections`` clients post ``--junk`` junk notifies (bad XML,
   unknown orders, return_code FAIL, from many X-Real-IP addresses);

and prints the latency spread of both, the ratio of the medians, the refused
rows and log lines the flood left, and the database size. It is a benchmark,
not a timed test (issue 14, item 7): ``tests/test_refused_flood.py`` checks the
behaviour (every valid notify paid, the table bounded).
"""

import argparse
import asyncio
import os
import sqlite3
import subprocess
import sys
import tempfile
import time

import notify_storm  # same directory: settings, order rows and signed notify bodies

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def junk_body(i: int) -> bytes:
    kinds = (b"junk %d" % i,
             b"<xml><return_code>SUCCESS</return_code><out_trade_no>TPNOPE%024d</out_trade_no>"
             b"</xml>" % i,
             b"<xml><return_code>FAIL</return_code><return_msg>x%d</return_msg></xml>" % i)
    return kinds[i % len(kinds)]


async def _valid_latencies(client, base, indices):
    latencies = []
    for i in indices:
        t0 = time.perf_counter()
        reply = await client.fetch(base + "/wxpay/notify", method="POST",
                                   body=notify_storm.notify_body(i), raise_error=False)
        latencies.append(time.perf_counter() - t0)
        assert b"SUCCESS" in (reply.body or b""), reply.body
    return sorted(latencies)


async def _junk(client, base, n, connections):
    sem = asyncio.Semaphore(connections)

    async def send(i):
        async with sem:
            await client.fetch(base + "/wxpay/notify", method="POST", body=junk_body(i),
                               headers={"X-Real-IP": f"10.{i % 250}.{(i // 250) % 250}.1"},
                               raise_error=False, request_timeout=120)
    await asyncio.gather(*(send(i) for i in range(n)))


async def run(base, args):
    from tornado.httpclient import AsyncHTTPClient

    client = AsyncHTTPClient(force_instance=True, max_clients=args.connections + 1)
    idle = await _valid_latencies(client, base, range(args.valid))
    flood = asyncio.ensure_future(_junk(client, base, args.junk, args.connections))
    await asyncio.sleep(0.2)  # the flood is under way
    during = await _valid_latencies(client, base, range(args.valid, 2 * args.valid))
    started = time.perf_counter()
    await flood
    client.close()
    return idle, during, time.perf_counter() - started


def _spread(name, lat):
    pick = lambda q: 1000 * lat[min(len(lat) - 1, int(q * len(lat)))]  # noqa: E731
    print(f"{name:<28} p50 {pick(0.5):7.2f} ms   p90 {pick(0.9):7.2f} ms   "
          f"max {1000 * lat[-1]:7.2f} ms")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--junk", type=int, default=20000)
    parser.add_argument("--valid", type=int, default=200)
    parser.add_argument("--connections", type=int, default=50)
    args = parser.parse_args(argv)
    directory = tempfile.mkdtemp(prefix="junk-flood-")
    port = notify_storm.free_port()
    base = f"http://127.0.0.1:{port}"
    settings = notify_storm.write_settings(directory, port)
    env = dict(os.environ, NOTIFY_STORM_RECORD=os.path.join(directory, "on_paid.txt"),
               PYTHONPATH=os.pathsep.join(filter(None, [os.path.dirname(__file__),
                                                        os.environ.get("PYTHONPATH")])))
    log_path = os.path.join(directory, "server.log")
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "server.py"), "--settings",
                                 settings], cwd=directory, env=env, stderr=log)
    try:
        notify_storm.wait_healthz(base)
        notify_storm.insert_orders(directory, 2 * args.valid)
        idle, during, flood_seconds = asyncio.run(run(base, args))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    db = sqlite3.connect(os.path.join(directory, "storm.db"))
    refused = db.execute("SELECT COUNT(*) FROM tornpay_notification "
                         "WHERE outcome = 'refused'").fetchone()[0]
    paid = db.execute("SELECT COUNT(*) FROM tornpay_order WHERE state = 'PAID'").fetchone()[0]
    db.close()
    size = sum(os.path.getsize(os.path.join(directory, f)) for f in os.listdir(directory)
               if f.startswith("storm.db"))
    with open(log_path) as log:
        log_lines = sum(1 for _ in log)
    print(f"junk notifies: {args.junk} over {args.connections} connections "
          f"({args.junk / flood_seconds:.0f}/s)")
    _spread("valid notify, idle", idle)
    _spread("valid notify, during flood", during)
    print(f"median during / idle:        {during[len(during) // 2] / idle[len(idle) // 2]:.1f}x")
    print(f"orders paid: {paid} of {2 * args.valid}; refused rows kept: {refused}; "
          f"server log lines: {log_lines}; database files: {size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
