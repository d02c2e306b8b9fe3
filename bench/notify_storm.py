"""Notify storm: 10,000 notifies for 5,000 orders over 50 connections against a real server process.

Run: ``python bench/notify_storm.py [--orders 5000] [--connections 50]``. It starts
``python server.py`` on a free loopback port with SQLite in a temporary directory,
inserts the PREPAID orders, sends every notify twice (a fifth of the pairs at the
same moment, the rest as later duplicates), then checks: exactly N PAID, exactly N
``on_paid`` deliveries to this module (loaded as the server's plugin), no 5xx.
It prints the figures; it is a benchmark, not a timed test.
"""

import argparse
import asyncio
import datetime
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Not the reference vectors' key: a server refuses to start on a shipped test credential.
API_KEY = "stormstormstormstormstormstorm32"


# -- the plugin the server loads (``plugins: [notify_storm]``) -----------------------------

def on_paid(order):
    with open(os.environ["NOTIFY_STORM_RECORD"], "a") as f:
        f.write(order.out_trade_no + "\n")


# -- the benchmark ---------------------------------------------------------------------------

def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_settings(directory, port):
    import yaml

    data = {
        "server": {"address": "127.0.0.1", "port": port, "public_url": f"http://127.0.0.1:{port}",
                   "cookie_secret": "notify-storm-cookie-secret-0123456789",
                   "log_level": "WARNING"},
        "wechat": {"appid": "wxd930ea5d5a258f4f", "app_secret": "notify-storm-app-secret",
                   "mch_id": "10000100", "api_key": API_KEY},
        "database": {"url": f"sqlite:///{directory}/storm.db"},
        "orders": {"reconcile_after_seconds": 3600},
        "deliveries": {"poll_interval_seconds": 0.05, "first_retry_seconds": 0.1},
        "plugins": ["tornpay.plugins.catalog", "notify_storm"],
    }
    path = os.path.join(directory, "settings.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(data, f)
    return path


def wait_healthz(base):
    """Return once the server at ``base`` answers /healthz (20 s at most)."""
    import urllib.request

    for _ in range(200):
        try:
            urllib.request.urlopen(base + "/healthz", timeout=1)
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("server did not start")


def insert_orders(directory, n):
    # Through the model, so columns added since (and their defaults) are filled in.
    from tornpay.storage import db as storage
    from tornpay.storage.models import Order

    now = datetime.datetime.utcnow().replace(microsecond=0)
    later = now + datetime.timedelta(minutes=30)
    database = storage.open_database(f"sqlite:///{directory}/storm.db")
    storage.bind(database)
    rows = [{"out_trade_no": f"TPSTORM{i:08d}", "product_id": "coach-101", "openid": "o-storm",
             "body": "Coaching", "total_fee": 100, "sign_type": "MD5", "state": "PREPAID",
             "spbill_create_ip": "127.0.0.1", "prepay_id": f"wx_storm_{i}", "created_at": now,
             "updated_at": now, "expire_at": later, "trade_type": "JSAPI"} for i in range(n)]
    with database.atomic():
        for start in range(0, n, 500):
            Order.insert_many(rows[start:start + 500]).execute()
    database.close()


def notify_body(i):
    from tornpay.protocol.sign import make_sign
    from tornpay.protocol.xmlcodec import encode_xml

    fields = {"appid": "wxd930ea5d5a258f4f", "mch_id": "10000100", "nonce_str": f"n{i}",
              "result_code": "SUCCESS", "return_code": "SUCCESS", "openid": "o-storm",
              "is_subscribe": "N", "trade_type": "JSAPI", "bank_type": "OTHERS",
              "total_fee": "100", "fee_type": "CNY", "cash_fee": "100",
              "transaction_id": f"42{i:030d}", "out_trade_no": f"TPSTORM{i:08d}",
              "time_end": "20240601123110"}
    fields["sign"] = make_sign(fields, API_KEY)
    return encode_xml(fields)


async def storm(base, n, connections):
    from tornado.httpclient import AsyncHTTPClient

    try:
        from tornado.curl_httpclient import CurlAsyncHTTPClient
        client = CurlAsyncHTTPClient(force_instance=True, max_clients=connections)
    except ImportError:
        client = AsyncHTTPClient(force_instance=True, max_clients=connections)
    bodies = [notify_body(i) for i in range(n)]
    rng = random.Random(1)
    racing = set(rng.sample(range(n), n // 5))
    first = [[i, i] if i in racing else [i] for i in range(n)]
    rng.shuffle(first)
    later = [i for i in range(n) if i not in racing]
    rng.shuffle(later)
    codes, answers, latencies = [], [], []
    sem = asyncio.Semaphore(connections)

    async def send(i):
        async with sem:
            t0 = time.perf_counter()
            try:
                reply = await client.fetch(base + "/wxpay/notify", method="POST",
                                           body=bodies[i], raise_error=False,
                                           request_timeout=120, connect_timeout=60)
                code, body = reply.code, reply.body or b""
            except Exception:  # a timeout: counted as 599, WeChat would re-send
                code, body = 599, b""
            latencies.append(time.perf_counter() - t0)
            codes.append(code)
            answers.append(b"<return_code><![CDATA[SUCCESS]]>" in body)

    started = time.perf_counter()
    await asyncio.gather(*(send(i) for job in first for i in job))
    await asyncio.gather(*(send(i) for i in later))
    elapsed = time.perf_counter() - started
    client.close()
    return codes, answers, sorted(latencies), elapsed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=5000)
    parser.add_argument("--connections", type=int, default=50)
    args = parser.parse_args(argv)
    sys.path.insert(0, ROOT)
    directory = tempfile.mkdtemp(prefix="notify-storm-")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = write_settings(directory, port)
    record = os.path.join(directory, "on_paid.txt")
    env = dict(os.environ, NOTIFY_STORM_RECORD=record,
               PYTHONPATH=os.pathsep.join(filter(None, [os.path.dirname(__file__),
                                                        os.environ.get("PYTHONPATH")])))
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "server.py"), "--settings",
                             settings], cwd=directory, env=env, stderr=subprocess.PIPE, text=True)
    try:
        wait_healthz(base)
        insert_orders(directory, args.orders)
        codes, answers, lat, elapsed = asyncio.run(storm(base, args.orders, args.connections))
        db = sqlite3.connect(os.path.join(directory, "storm.db"), timeout=30)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            delivered = open(record).read().split() if os.path.exists(record) else []
            if len(delivered) >= args.orders:
                break
            time.sleep(0.2)
        time.sleep(1)  # any stray second delivery would land by now
        delivered = open(record).read().split() if os.path.exists(record) else []
        paid = db.execute("SELECT COUNT(*) FROM tornpay_order WHERE state='PAID'").fetchone()[0]
        outcomes = dict(db.execute("SELECT outcome, COUNT(*) FROM tornpay_notification "
                                   "GROUP BY outcome").fetchall())
        db.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    total = len(codes)
    print(f"notifies sent        {total} for {args.orders} orders over "
          f"{args.connections} connections")
    print(f"elapsed              {elapsed:.2f} s  ({total / elapsed:.0f} notifies/s)")
    print(f"latency p50/p99/max  {lat[total // 2] * 1000:.1f} / "
          f"{lat[int(total * 0.99)] * 1000:.1f} / {lat[-1] * 1000:.1f} ms")
    print(f"HTTP codes           {sorted(set(codes))}; 5xx: {sum(500 <= c < 599 for c in codes)}"
          f"; timeouts: {codes.count(599)}")
    print(f"SUCCESS replies      {sum(answers)}")
    print(f"orders PAID          {paid}")
    print(f"notify outcomes      {outcomes}")
    print(f"on_paid deliveries   {len(delivered)} ({len(set(delivered))} distinct orders)")
    print(f"server exit code     {proc.returncode}")
    ok = (paid == args.orders and len(delivered) == args.orders
          and len(set(delivered)) == args.orders and not any(c >= 500 for c in codes)
          and sum(answers) == total and proc.returncode == 0)
    print("RESULT               " + ("OK" if ok else "FAILED"))
    if not ok and err:
        print(err[-2000:], file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
