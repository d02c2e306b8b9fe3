"""One command for the whole benchmark: ``python bench/run.py`` (about 2 minutes).

Everything runs on loopback, each part in its own process: a Tornado
hello-world (the ceiling), a tornpay server, the WeChat simulator (for the
checkouts) and the load generator (wrk, else bench/loadgen.py). It prints a
table with every throughput also as a ratio to the hello-world measured in
the same run, checks the targets of issue 9 and the notify correctness check
(PAID orders = distinct orders notified = on_paid deliveries). Exit status 1
if the correctness checks fail (targets missed only print MISSED).

    python bench/run.py                 # the full run
    python bench/run.py --smoke         # ~15 s, tiny loads: does the harness still work?
    python bench/run.py --loadgen python --json out.json --keep
"""

import argparse
import json
import os
import re
import resource
import shutil
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_common as bc  # noqa: E402
import bench_notify  # noqa: E402
import bench_scenarios as scenarios  # noqa: E402

FULL = dict(hello_s=5, notify_s=10, notify_conns=50, n_orders=40000, checkout_s=8,
            checkout_conns=(200, 1000), latency=0.2, warmup_s=1,
            lock_s=12, lock_at=3, lock_hold=4, pg_orders=20000, pg_s=8, pg_delay_ms=5)
SMOKE = dict(hello_s=1, notify_s=1, notify_conns=4, n_orders=1500, checkout_s=1,
             checkout_conns=(8, 16), latency=0.2, warmup_s=1,
             lock_s=2, lock_at=0.3, lock_hold=0.5, pg_orders=500, pg_s=1, pg_delay_ms=5)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measured(load, procs):
    """Run ``load()``; add each process's CPU share (CPU seconds / wall seconds) to its result."""
    before = {name: proc.cpu_times() for name, proc in procs.items()}
    gen_before, started = children_cpu(), time.monotonic()
    result = load()
    wall = time.monotonic() - started
    for name, proc in procs.items():
        user, kernel = (after - then for after, then in zip(proc.cpu_times(), before[name]))
        result[f"cpu_{name}"] = (user + kernel) / wall
        result[f"kernel_{name}"] = kernel / max(user + kernel, 1e-9)
    # wrk/loadgen is the only child reaped in between.
    result["cpu_loadgen"] = (children_cpu() - gen_before) / wall
    return result


def start_server(tmp, name, db_name, plugins, record, sim_url="http://127.0.0.1:9",
                 extra_env=None):
    port = bc.free_port()
    settings = bc.write_settings(tmp, port, sim_url, db_name, plugins)
    env = {"PYTHONPATH": os.pathsep.join([tmp, bc.REPO, os.environ.get("PYTHONPATH", "")]),
           "BENCH_RECORD": record, **(extra_env or {})}
    proc = bc.Proc(name, [bc.PYTHON, "server.py", "--settings", settings], tmp, env,
                   cpus=bc.SERVER_CPUS)
    bc.wait_http(f"http://127.0.0.1:{port}/healthz", proc)
    return proc, port, settings


def bench_hello(tmp, cfg, use_wrk):
    port = bc.free_port()
    proc = bc.Proc("hello", [bc.PYTHON, os.path.join(bc.BENCH_DIR, "hello.py"), str(port)], tmp,
                   cpus=bc.SERVER_CPUS)
    try:
        bc.wait_http(f"http://127.0.0.1:{port}/", proc)
        return measured(lambda: bc.run_load(
            f"http://127.0.0.1:{port}/", connections=cfg["notify_conns"],
            duration=cfg["hello_s"], tmp=tmp, name="hello", use_wrk=use_wrk),
            {"server": proc})
    finally:
        proc.stop()


def bench_notify_run(tmp, cfg, use_wrk, plugin=bench_notify.RECORDER, db_name="notify.db",
                     db_url="", extra_env=None):
    """Notify load on one server (SQLite ``db_name``, or PostgreSQL ``db_url``)."""
    fixture = bench_notify.prepare(tmp, db_name, cfg["n_orders"], db_url=db_url)
    proc, port, _ = start_server(tmp, "server-" + db_name.split(".")[0], db_url or db_name,
                                 ["tornpay.plugins.catalog", plugin], fixture["record"],
                                 extra_env=extra_env)
    url = f"http://127.0.0.1:{port}/wxpay/notify"
    try:
        rss_before = proc.status("VmHWM")
        spy = profiler(proc, tmp, "notify", cfg["notify_s"]) if cfg.get("profile") else None
        result = measured(lambda: bc.run_load(
            url, connections=cfg["notify_conns"], duration=cfg["notify_s"], tmp=tmp,
            name="notify", method="POST", bodies=fixture["bodies"], use_wrk=use_wrk),
            {"server": proc})
        if spy is not None:
            spy.wait(30)
            print(summarize_profile(os.path.join(tmp, "profile-notify.txt")))
        result["vmhwm_mb"] = proc.status("VmHWM") / 1024
        result["vmhwm_start_mb"] = rss_before / 1024
        notified = bench_notify.settle(fixture, url, result["sent"],
                                       window=cfg["notify_conns"])
        result["check"] = bench_notify.check(fixture, notified)
        result["vmhwm_mb"] = max(result["vmhwm_mb"], proc.status("VmHWM") / 1024)
        if result["check"]["notified"] * 2 >= len(fixture["order_of"]):
            result["note"] = "bodies wrapped: raise n_orders"
        return result
    finally:
        proc.stop()


def profiler(proc, tmp, name, seconds):
    """py-spy (pip install py-spy) sampling ``proc`` without pausing it, as folded stacks."""
    import shutil as _shutil
    import subprocess

    exe = _shutil.which("py-spy") or os.path.join(os.path.dirname(bc.PYTHON), "py-spy")
    # BENCH_PYSPY_ARGS=--gil samples only the thread holding the GIL (Python's CPU).
    extra = os.environ.get("BENCH_PYSPY_ARGS", "").split()
    return subprocess.Popen([exe, "record", "--nonblocking", "-r", "250", "-f", "raw", *extra,
                             "-d", str(int(seconds)), "-p", str(proc.pid),
                             "-o", os.path.join(tmp, f"profile-{name}.txt")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def summarize_profile(path, top=25):
    """Inclusive share of samples per function (file:function), from py-spy's folded stacks."""
    from collections import Counter

    inclusive, total = Counter(), 0
    with open(path) as fh:
        for line in fh:
            stack, _, count = line.rstrip().rpartition(" ")
            n = int(count)
            total += n
            frames = {f.split(" (")[0] + " " + f.split(" (")[-1].split(":")[0].rsplit("/", 1)[-1]
                      for f in stack.split(";")}
            for frame in frames:
                inclusive[frame] += n
    lines = [f"profile {path}: {total} samples, inclusive share"]
    lines += [f"  {100 * n / total:5.1f}%  {frame}" for frame, n in inclusive.most_common(top)]
    return "\n".join(lines)


def checkout_once(port, cookie):
    """One checkout by hand: it must be a 303 to the pay page (not a 302 to OAuth)."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    req = urllib.request.Request(f"http://127.0.0.1:{port}/wxpay/checkout/{bc.PRODUCT_ID}",
                                 headers={"Cookie": f"tornpay_openid={cookie}"})
    try:
        opener.open(req, timeout=30)
        raise RuntimeError("checkout did not redirect")
    except urllib.error.HTTPError as exc:
        if exc.code != 303 or "/wxpay/pay/" not in exc.headers.get("Location", ""):
            raise RuntimeError(f"checkout answered {exc.code} {exc.headers.get('Location')}")


def wait_idle(proc, timeout=60.0):
    """Wait until ``proc`` uses under 5% of a CPU over 0.3 s (the backlog is drained)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = proc.cpu_seconds()
        time.sleep(0.3)
        if proc.cpu_seconds() - before < 0.015:
            return


def count_orders(db_path, state):
    return bench_notify._query(db_path, f"SELECT COUNT(*) FROM tornpay_order "
                                        f"WHERE state = '{state}'")[0][0]


def bench_checkout(tmp, cfg, use_wrk):
    import tornado.web

    sim_port = bc.free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    record = os.path.join(tmp, "on_paid-checkout.txt")
    results = []
    sim = server = None
    try:
        # The simulator reads the same credentials from a settings file of its own.
        sim_settings = bc.write_settings(tmp, sim_port, "http://127.0.0.1:9", "sim.db", [])
        tornpay_cli = os.path.join(os.path.dirname(bc.PYTHON), "tornpay")
        argv = ([tornpay_cli] if os.path.exists(tornpay_cli) else [bc.PYTHON, "-m", "tornpay.cli"])
        sim = bc.Proc("simulator", argv + ["simulator", "--settings", sim_settings,
                                           "--port", str(sim_port)], tmp, cpus=bc.HELPER_CPUS)
        bc.wait_http(sim_url + "/control/state", sim)
        server, port, _ = start_server(tmp, "server-checkout", "checkout.db",
                                       ["tornpay.plugins.catalog"], record, sim_url)
        cookie = tornado.web.create_signed_value(bc.COOKIE_SECRET, "tornpay_openid",
                                                 bc.OPENID).decode()
        checkout_once(port, cookie)
        url = f"http://127.0.0.1:{port}/wxpay/checkout/{bc.PRODUCT_ID}"
        headers = {"Cookie": f"tornpay_openid={cookie}"}
        db_path = os.path.join(tmp, "checkout.db")
        # Warm up (connections to the simulator, caches); not reported.
        bc.run_load(url, connections=min(50, cfg["checkout_conns"][0]),
                    duration=cfg["warmup_s"], tmp=tmp, name="checkout-warmup",
                    headers=headers, use_wrk=use_wrk)
        for conns in cfg["checkout_conns"]:
            for latency in (0.0, cfg["latency"]):
                if latency:
                    bc.post_json(sim_url + "/control/faults", {
                        "name": "latency", "endpoint": "unifiedorder", "seconds": latency})
                else:
                    urllib.request.urlopen(urllib.request.Request(
                        sim_url + "/control/faults", method="DELETE"), timeout=10).read()
                wait_idle(server)
                prepaid = count_orders(db_path, "PREPAID")
                name = f"checkout-{conns}-{int(latency * 1000)}ms"
                spy = profiler(server, tmp, name, cfg["checkout_s"]) if cfg.get("profile") else None
                result = measured(lambda: bc.run_load(
                    url, connections=conns, duration=cfg["checkout_s"], tmp=tmp,
                    name=name, headers=headers, use_wrk=use_wrk),
                    {"server": server, "simulator": sim})
                if spy is not None:
                    spy.wait(30)
                    print(summarize_profile(os.path.join(tmp, f"profile-{name}.txt")))
                # Requests in flight when wrk stopped still run in the server: let
                # them finish so they neither count nor slow down the next run.
                wait_idle(server)
                result["orders_prepaid"] = count_orders(db_path, "PREPAID") - prepaid
                result["conns"], result["latency_ms"] = conns, int(latency * 1000)
                # Peak RSS since start: after the 1,000-connection runs it covers them.
                result["vmhwm_mb"] = server.status("VmHWM") / 1024
                results.append(result)
        server.stop()  # its HTTP client logs the most WeChat calls it had in flight
        with open(server.log_path, errors="replace") as fh:
            peak = re.findall(r"at most (\d+) calls at once", fh.read())
        for result in results:
            result["upstream_peak"] = int(peak[-1]) if peak else None
        return results
    finally:
        bc.stop_all(server, sim)


def pct(x):
    return f"{100 * x:.0f}%"


def report(hello, notify, checkouts, cfg) -> bool:
    rows = [("scenario", "conns", "req/s", "x hello", "x hello/CPU", "p50 ms", "p99 ms", "errors",
             "server CPU", "upstream CPU", "loadgen CPU")]

    def row(name, conns, r, upstream=""):
        per_cpu = lambda x: x["rps"] / max(x["cpu_server"], 1e-9)  # noqa: E731
        rows.append((name, str(conns), f"{r['rps']:.0f}", f"{r['rps'] / hello['rps']:.2f}",
                     f"{per_cpu(r) / per_cpu(hello):.2f}",
                     f"{r['p50_ms']:.1f}", f"{r['p99_ms']:.1f}", str(r["errors"]),
                     f"{pct(r['cpu_server'])} ({pct(r['kernel_server'])} sys)", upstream,
                     pct(r["cpu_loadgen"])))

    row("hello-world (ceiling)", cfg["notify_conns"], hello)
    if notify:
        row("notify, async def on_paid", cfg["notify_conns"], notify)
    if notify and notify.get("def"):
        row("notify, plain def on_paid", cfg["notify_conns"], notify["def"])
    for r in checkouts:
        row(f"checkout, upstream {r['latency_ms']} ms", r["conns"], r,
            pct(r["cpu_simulator"]))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for i, r in enumerate(rows):
        lines.append("  ".join(c.ljust(w) if j == 0 else c.rjust(w)
                               for j, (c, w) in enumerate(zip(r, widths))))
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    print("\n".join(lines))
    checkout_ok = report_checkouts(checkouts, cfg)
    if notify and notify.get("def"):
        checkout_ok = report_notify(hello, notify["def"], "plain def on_paid") and checkout_ok
    return report_notify(hello, notify) and checkout_ok if notify else checkout_ok


def report_notify(hello, notify, label="async def on_paid") -> bool:
    """The notify correctness check and targets; True when the check holds."""
    c = notify["check"]
    print(f"\n-- notify with a {label} plugin --")
    print(f"\nnotify check: PAID orders {c['paid']}, distinct orders notified {c['notified']}, "
          f"on_paid deliveries {c['deliveries']} (calls {c['delivery_calls']}, pending "
          f"{c['pending']}, drained {c['drain_s']:.1f} s after the load): "
          f"{'OK' if c['ok'] else 'FAILED'}")
    print(f"server peak RSS (VmHWM) under the notify load: {notify['vmhwm_mb']:.1f} MB "
          f"(after start-up: {notify['vmhwm_start_mb']:.1f} MB)")
    verdict = lambda ok: "met" if ok else "MISSED"  # noqa: E731
    ratio = notify["rps"] / hello["rps"]
    print("\nnotify targets (one process):")
    print(f"  notify >= 40% of hello-world (aim 50%): {pct(ratio):>3}  {verdict(ratio >= 0.4)}")
    print(f"  notify p99 < 50 ms:                  {notify['p99_ms']:>5.1f}  "
          f"{verdict(notify['p99_ms'] < 50)}")
    print(f"  peak RSS < 80 MB:                    {notify['vmhwm_mb']:>5.1f}  "
          f"{verdict(notify['vmhwm_mb'] < 80)}")
    print(f"  on_paid lag <= 1 s (drain after load): {c['drain_s']:>3.1f}  "
          f"{verdict(c['drain_s'] <= 1.0)}")
    print(f"  notify correctness:                  {'OK' if c['ok'] else 'FAILED'}")
    return c["ok"]


def report_checkouts(checkouts, cfg) -> bool:
    """Per-run counts and the 200 ms / 0 ms targets; True when no answered checkout is lost."""
    if not checkouts:
        return True
    checkout_ok = True
    for r in checkouts:
        if r["orders_prepaid"] < r["requests"]:
            checkout_ok = False
        print(f"checkout {r['conns']} conns, upstream {r['latency_ms']} ms: "
              f"{r['requests']} answered 3xx/2xx, {r['orders_prepaid']} orders PREPAID")
    print("\ncheckout targets (one process):")
    verdict = lambda ok: "met" if ok else "MISSED"  # noqa: E731
    by = {(r["conns"], r["latency_ms"]): r for r in checkouts}
    lat = int(cfg["latency"] * 1000)
    for conns in cfg["checkout_conns"]:
        slow, fast = by[(conns, lat)], by[(conns, 0)]
        r = slow["rps"] / fast["rps"] if fast["rps"] else 0
        errs = slow["errors"] + fast["errors"]
        # A closed loop of `conns` clients, each waiting `lat` on WeChat, can do
        # no more than conns / lat checkouts/s even with a server that takes no time.
        ceiling = conns / cfg["latency"] / fast["rps"] if fast["rps"] and lat else 0
        print(f"  checkout {conns:>4}: {lat} ms / 0 ms >= 90%:  {pct(r):>6}  "
              f"{verdict(r >= 0.9 and errs == 0)} ({errs} errors; the most any server "
              f"could reach here: {pct(min(ceiling, 1.0))})")
    peak = max(r.get("vmhwm_mb", 0) for r in checkouts)
    print(f"  peak RSS <= 100 MB (checkouts, up to {max(cfg['checkout_conns'])} conns): "
          f"{peak:.1f}  {verdict(peak <= 100)}")
    print(f"  WeChat calls in flight at most: {checkouts[0].get('upstream_peak')} "
          "(wechat.max_concurrent_calls caps them)")
    return checkout_ok


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny loads, ~15 s")
    parser.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--json", help="also write the raw results here")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, DBs)")
    parser.add_argument("--profile", action="store_true",
                        help="sample the notify server with py-spy and print the hot spots")
    parser.add_argument("--skip", action="append", default=[],
                        choices=("notify", "notify-def", "checkout", "lock", "pg"))
    parser.add_argument("--pg-url", default=os.environ.get("TORNPAY_BENCH_PG_URL", ""),
                        help="PostgreSQL database for the 5 ms proxy scenario (schemas are "
                             "created in it); without it that scenario is skipped")
    args = parser.parse_args(argv)
    cfg = dict(SMOKE if args.smoke else FULL, profile=args.profile)
    use_wrk = args.loadgen == "wrk" or (args.loadgen == "auto" and bc.have_wrk())
    if args.loadgen == "wrk" and not bc.have_wrk():
        print("wrk is not installed: apt-get install -y wrk (as root), or --loadgen python",
              file=sys.stderr)
        return 2
    if not use_wrk and args.loadgen == "auto":
        print("note: wrk not found (apt-get install -y wrk); using bench/loadgen.py, which "
              "itself needs CPU: figures are lower and noisier", file=sys.stderr)
    tmp = tempfile.mkdtemp(prefix="tornpay-bench-")
    started = time.monotonic()
    try:
        print(bc.pin_description(), flush=True)
        print(f"load generator: {'wrk' if use_wrk else 'bench/loadgen.py'}; "
              f"{os.cpu_count()} CPUs; temp dir {tmp}", flush=True)
        hello = bench_hello(tmp, cfg, use_wrk)
        print(f"hello-world: {hello['rps']:.0f} req/s", flush=True)
        notify = bench_notify_run(tmp, cfg, use_wrk) if "notify" not in args.skip else None
        if notify:
            print(f"notify: {notify['rps']:.0f} req/s", flush=True)
            if "notify-def" not in args.skip:
                notify["def"] = bench_notify_run(tmp, cfg, use_wrk, bench_notify.RECORDER_DEF,
                                                 "notifydef.db")
                print(f"notify (def on_paid): {notify['def']['rps']:.0f} req/s", flush=True)
        checkouts = bench_checkout(tmp, cfg, use_wrk) if "checkout" not in args.skip else []
        lock = (scenarios.bench_lock(tmp, cfg, use_wrk, sys.modules[__name__])
                if "lock" not in args.skip else None)
        pg = (scenarios.bench_pg(tmp, cfg, use_wrk, sys.modules[__name__], args.pg_url)
              if args.pg_url and "pg" not in args.skip else None)
        print(f"\nwhole run: {time.monotonic() - started:.0f} s\n")
        ok = report(hello, notify, checkouts, cfg)
        ok = scenarios.report(lock, pg) and ok
        if args.json:
            with open(args.json, "w") as fh:
                json.dump({"hello": hello, "notify": notify, "checkouts": checkouts,
                           "lock": lock, "pg": pg, "config": cfg}, fh, indent=2, default=str)
        return 0 if ok else 1
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
