"""Issue 16's scenarios: a write lock held by another process mid-load; a PostgreSQL 5 ms away.

``run`` is bench/run.py itself (its server, load and measuring helpers).
"""

import datetime
import http.client
import os
import subprocess
import threading
import time
import urllib.request
from urllib.parse import quote, urlsplit, urlunsplit

import bench_common as bc
import bench_notify

# Another process takes SQLite's write lock, as the CLI, a backup or a plugin can.
HOLDER = """
import sqlite3, sys, time
time.sleep(float(sys.argv[2]))
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
conn.execute("BEGIN EXCLUSIVE")
print("locked", time.time(), flush=True)
time.sleep(float(sys.argv[3]))
conn.execute("ROLLBACK")
print("released", time.time(), flush=True)
"""


def bench_lock(tmp, cfg, use_wrk, run):
    """Notify load (and /healthz reads beside it) while another process holds the lock."""
    fixture = bench_notify.prepare(tmp, "lock.db", cfg["n_orders"])
    proc, port, _ = run.start_server(tmp, "server-lock", "lock.db",
                                     ["tornpay.plugins.catalog", bench_notify.RECORDER],
                                     fixture["record"])
    base = f"http://127.0.0.1:{port}"
    try:
        health: dict = {}
        reads = threading.Thread(target=lambda: health.update(bc.run_load(
            base + "/healthz", connections=10, duration=cfg["lock_s"], tmp=tmp,
            name="lock-healthz", use_wrk=use_wrk)))
        holder = subprocess.Popen([bc.PYTHON, "-c", HOLDER, fixture["db"], str(cfg["lock_at"]),
                                   str(cfg["lock_hold"])], stdout=subprocess.PIPE, text=True)
        reads.start()
        started = time.time()
        result = run.measured(lambda: bc.run_load(
            base + "/wxpay/notify", connections=cfg["notify_conns"], duration=cfg["lock_s"],
            tmp=tmp, name="lock-notify", method="POST", bodies=fixture["bodies"],
            use_wrk=use_wrk), {"server": proc})
        reads.join()
        marks = dict(line.split() for line in holder.communicate(timeout=60)[0].splitlines())
        notified = bench_notify.settle(fixture, base + "/wxpay/notify", result["sent"],
                                       window=cfg["notify_conns"])
        result["retried"] = _retry_unpaid(fixture, base, notified)
        result["check"] = bench_notify.check(fixture, notified)
        result["health"] = health
        result["rates"] = _paid_rates(fixture["db"], started, float(marks["locked"]),
                                      float(marks["released"]), started + result["seconds"])
        return result
    finally:
        proc.stop()


def _retry_unpaid(fixture, base, notified) -> int:
    """Re-send the notifies answered FAIL during the lock, as WeChat retries them."""
    paid = {row[0] for row in bench_notify._query(
        fixture["db"], "SELECT out_trade_no FROM tornpay_order WHERE state = 'PAID'")}
    conn = http.client.HTTPConnection(base.split("//", 1)[1], timeout=30)
    retried = 0
    for index in sorted(notified):
        if bench_notify.out_trade_no(index) in paid:
            continue
        conn.request("POST", "/wxpay/notify", body=fixture["notifies"][index],
                     headers={"Content-Type": "text/xml"})
        reply = conn.getresponse().read()
        if b"SUCCESS" not in reply:
            raise RuntimeError(f"retried notify refused: {reply[:200]!r}")
        retried += 1
    conn.close()
    return retried


def _paid_rates(db, started, locked, released, ended) -> dict:
    """Orders paid per second before, during and after the lock (from updated_at)."""
    stamps = []
    for (value,) in bench_notify._query(db, "SELECT updated_at FROM tornpay_order "
                                            "WHERE state = 'PAID'"):
        moment = datetime.datetime.fromisoformat(str(value))
        stamps.append(moment.replace(tzinfo=datetime.timezone.utc).timestamp())

    def rate(a, b):
        return sum(a <= s < b for s in stamps) / max(b - a, 1e-9)

    return {"before": rate(started, locked), "during": rate(locked, released),
            "after": rate(released, ended)}


def bench_pg(tmp, cfg, use_wrk, run, pg_url):
    """Notify and checkout on PostgreSQL directly and through a 5 ms-each-way proxy."""
    import psycopg2

    parts = urlsplit(pg_url)
    target = parts.port or 5432
    proxy_port = bc.free_port()
    proxy = bc.Proc("pg-proxy", [bc.PYTHON, os.path.join(bc.BENCH_DIR, "delay_proxy.py"),
                                 str(proxy_port), str(target), str(cfg["pg_delay_ms"])], tmp,
                    cpus=bc.HELPER_CPUS)
    admin = psycopg2.connect(pg_url)
    admin.autocommit = True
    pg_cfg = dict(cfg, n_orders=cfg["pg_orders"], notify_s=cfg["pg_s"])
    # Writers wait on round trips, not CPU: a larger pool for a distant database.
    env = {"TORNPAY_DATABASE_POOL_SIZE": "48"}
    results = {}
    try:
        time.sleep(0.5)
        for label, port in (("direct", target), ("proxy", proxy_port)):
            schema = f"bench_{label}_{os.getpid()}"
            admin.cursor().execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE; "
                                   f"CREATE SCHEMA {schema}")
            netloc = parts.netloc.rsplit(":", 1)[0] + f":{port}"
            url = urlunsplit((parts.scheme, netloc, parts.path,
                              f"options={quote(f'-csearch_path={schema}', safe='')}", ""))
            try:
                notify = run.bench_notify_run(tmp, pg_cfg, use_wrk, db_name=f"pg{label}.db",
                                              db_url=url, extra_env=env)
                checkout = _pg_checkout(tmp, pg_cfg, use_wrk, run, url, label, env)
                results[label] = {"notify": notify, "checkout": checkout}
            finally:
                admin.cursor().execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        return results
    finally:
        admin.close()
        proxy.stop()


def _pg_checkout(tmp, cfg, use_wrk, run, url, label, env):
    import tornado.web

    sim_port = bc.free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    sim_settings = bc.write_settings(tmp, sim_port, "http://127.0.0.1:9", "sim-pg.db", [])
    tornpay_cli = os.path.join(os.path.dirname(bc.PYTHON), "tornpay")
    argv = [tornpay_cli] if os.path.exists(tornpay_cli) else [bc.PYTHON, "-m", "tornpay.cli"]
    sim = bc.Proc(f"simulator-pg{label}", argv + ["simulator", "--settings", sim_settings,
                                                  "--port", str(sim_port)], tmp,
                  cpus=bc.HELPER_CPUS)
    server = None
    try:
        bc.wait_http(sim_url + "/control/state", sim)
        server, port, _ = run.start_server(tmp, f"server-pgcheckout-{label}", url,
                                           ["tornpay.plugins.catalog"],
                                           os.path.join(tmp, "on_paid-pg.txt"), sim_url,
                                           extra_env=env)
        cookie = tornado.web.create_signed_value(bc.COOKIE_SECRET, "tornpay_openid",
                                                 bc.OPENID).decode()
        run.checkout_once(port, cookie)
        target = f"http://127.0.0.1:{port}/wxpay/checkout/{bc.PRODUCT_ID}"
        headers = {"Cookie": f"tornpay_openid={cookie}"}
        bc.run_load(target, connections=50, duration=cfg["warmup_s"], tmp=tmp,
                    name=f"pgcheckout-warmup-{label}", headers=headers, use_wrk=use_wrk)
        run.wait_idle(server)
        result = run.measured(lambda: bc.run_load(
            target, connections=cfg["checkout_conns"][0], duration=cfg["pg_s"], tmp=tmp,
            name=f"pgcheckout-{label}", headers=headers, use_wrk=use_wrk),
            {"server": server, "simulator": sim})
        run.wait_idle(server)
        return result
    finally:
        bc.stop_all(server, sim)


def report(lock, pg) -> bool:
    """Print the two scenarios and their targets; True when their correctness checks hold."""
    ok = True
    verdict = lambda good: "met" if good else "MISSED"  # noqa: E731
    if lock:
        c, h, r = lock["check"], lock["health"], lock["rates"]
        ok = ok and c["ok"]
        print("\n-- another process holds the SQLite write lock mid notify load --")
        print(f"  notify {lock['rps']:.0f} req/s, p99 {lock['p99_ms']:.0f} ms; orders paid/s "
              f"before the lock {r['before']:.0f}, during {r['during']:.0f}, after "
              f"{r['after']:.0f}")
        print(f"  /healthz beside it: {h['rps']:.0f} req/s, p50 {h['p50_ms']:.1f} ms, p99 "
              f"{h['p99_ms']:.1f} ms, errors {h['errors']}  (p99 < 50 ms: "
              f"{verdict(h['p99_ms'] < 50 and h['errors'] == 0)})")
        print(f"  answered FAIL during the lock and re-sent (as WeChat retries): "
              f"{lock['retried']}")
        print(f"  check: PAID {c['paid']} = notified {c['notified']} = on_paid deliveries "
              f"{c['deliveries']} (calls {c['delivery_calls']}, pending {c['pending']}): "
              f"{'OK (none lost or doubled)' if c['ok'] else 'FAILED'}")
    if pg:
        print("\n-- PostgreSQL directly and behind a proxy adding 5 ms each way --")
        for kind in ("notify", "checkout"):
            direct, far = pg["direct"][kind], pg["proxy"][kind]
            ratio = far["rps"] / direct["rps"] if direct["rps"] else 0
            print(f"  {kind:8}: direct {direct['rps']:.0f} req/s (p99 {direct['p99_ms']:.0f} "
                  f"ms), 5 ms proxy {far['rps']:.0f} req/s (p99 {far['p99_ms']:.0f} ms): "
                  f"{100 * ratio:.0f}% (>= 50%: {verdict(ratio >= 0.5)})")
        for label in ("direct", "proxy"):
            c = pg[label]["notify"]["check"]
            ok = ok and c["ok"]
            print(f"  notify check ({label}): PAID {c['paid']} = notified {c['notified']} = "
                  f"deliveries {c['deliveries']}: {'OK' if c['ok'] else 'FAILED'}")
    return ok
