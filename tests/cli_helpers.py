"""Helpers for the CLI tests: settings files, a real server process, HTTP, and a test plugin.

This module is also the plugin the server and CLI processes load (``plugins:
[cli_helpers]`` with ``tests/`` on PYTHONPATH): ``on_refund`` appends a line to
``$TORNPAY_TEST_RECORD``; ``on_cancel`` raises until the file ``$TORNPAY_TEST_RECORD.ok``
exists, so a test can park a delivery as failed and retry it.
"""

import http.client
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import tornado.web
import yaml

from proc_helpers import free_port, wait_until  # noqa: F401  (re-exported for the tests)
from tornpay.simulator.clientcert import TEST_CERT, TEST_KEY

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(ROOT, "tests")
ALICE = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
COOKIE_SECRET = "cli-test-cookie-secret-0123456789"
API_KEY = "192006250b4c09247ec02edce69f6a2d"
APP_SECRET = "tornpay-simulator-app-secret"  # shipped: the simulator refuses real ones
CLI_TIMEOUT = 30


# -- the plugin ---------------------------------------------------------------

def on_refund(order, refund):
    with open(os.environ["TORNPAY_TEST_RECORD"], "a") as f:
        f.write(json.dumps([order.out_trade_no, refund.out_refund_no, refund.refund_fee,
                            order.delivery_id]) + "\n")


def on_cancel(order, reason):
    if not os.path.exists(os.environ["TORNPAY_TEST_RECORD"] + ".ok"):
        raise RuntimeError("fulfilment system down (test)")


# -- processes -----------------------------------------------------------------


def write_settings(directory, port: int, **sections) -> str:
    data = {
        "server": {"address": "127.0.0.1", "port": port,
                   "public_url": f"http://127.0.0.1:{port}", "prefix": "/wxpay",
                   "cookie_secret": COOKIE_SECRET, "shop_page": True, "log_level": "WARNING"},
        "wechat": {"appid": "wxd930ea5d5a258f4f", "app_secret": APP_SECRET,
                   "mch_id": "10000100", "api_key": API_KEY, "timeout": 5,
                   "cert_file": TEST_CERT, "key_file": TEST_KEY},
        "database": {"url": f"sqlite:///{directory}/tornpay.db"},
        # One test payer makes every order here, each a new one: no limits, no reuse.
        "orders": {"reconcile_after_seconds": 3600, "min_close_age_seconds": 0,
                   "max_open_per_payer": 0, "max_open_per_ip": 0, "reuse_open_order": False},
        "deliveries": {"first_retry_seconds": 0.05, "max_retry_seconds": 0.1,
                       "timeout_seconds": 2, "max_attempts": 1, "poll_interval_seconds": 0.05},
        # Time scale 1: refunds stay PROCESSING (10 s) until a test finishes them.
        "simulator": {"enabled": True, "notify_time_scale": 1.0, "close_min_age_seconds": 0},
        "plugins": ["tornpay.plugins.catalog", "cli_helpers"],
        "catalog": {"products": {"coach-205": {"body": "Group clinic", "total_fee": 9900}}},
    }
    for key, value in sections.items():
        data.setdefault(key, {}).update(value)
    path = os.path.join(str(directory), "settings.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(data, f)
    return path


def environ(directory) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (TESTS, env.get("PYTHONPATH")) if p)
    env["TORNPAY_TEST_RECORD"] = os.path.join(str(directory), "record.jsonl")
    env.pop("PYTHONWARNINGS", None)
    return env


def run_cli(directory, *args, settings=None):
    """Run ``python -m tornpay.cli ARGS --settings FILE``; return the CompletedProcess."""
    cmd = [sys.executable, "-m", "tornpay.cli", *args]
    cmd += ["--settings", settings or os.path.join(str(directory), "settings.yaml")]
    return subprocess.run(cmd, cwd=str(directory), env=environ(directory), capture_output=True,
                          text=True, timeout=CLI_TIMEOUT)


def start(directory, cmd, url: str, timeout: float = 20.0) -> subprocess.Popen:
    """Start ``cmd`` and wait until ``url`` answers 200."""
    proc = subprocess.Popen(cmd, cwd=str(directory), env=environ(directory),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{cmd} exited {proc.returncode}: {proc.stderr.read()}")
        try:
            if request("GET", url)[0] == 200:
                return proc
        except OSError:
            pass
        time.sleep(0.1)
    stop(proc)
    raise AssertionError(f"{cmd} did not answer {url} in {timeout}s")


def stop(proc: subprocess.Popen, timeout: float = 15.0):
    """SIGTERM and wait; return (returncode, stderr)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        raise AssertionError(f"process ignored SIGTERM for {timeout}s: {err}")
    return proc.returncode, err


# -- HTTP and database ---------------------------------------------------------

def request(method: str, url: str, body=None, headers=None):
    """One HTTP request without following redirects: (status, headers, body bytes)."""
    rest = url.split("://", 1)[1]
    hostport, _, path = rest.partition("/")
    host, port = hostport.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        conn.request(method, "/" + path, body=data, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def new_order(base: str, product_id: str = "coach-205") -> str:
    """Check out as a signed-in payer; return the new PREPAID order's number."""
    cookie = tornado.web.create_signed_value(COOKIE_SECRET, "tornpay_openid", ALICE).decode()
    status, headers, body = request("GET", f"{base}/wxpay/checkout/{product_id}",
                                    headers={"Cookie": f"tornpay_openid={cookie}",
                                             # WeChat's browser: a JSAPI order (SPEC §9)
                                             "User-Agent": "Mozilla/5.0 MicroMessenger/8.0.47"})
    assert status == 303, body
    return headers["Location"].rstrip("/").rsplit("/", 1)[-1]


def sim(base: str, action: str, **data) -> dict:
    status, _, body = request("POST", f"{base}/_sim/control/{action}", body=data)
    assert status == 200, body
    return json.loads(body)


def paid_but_notify_lost(directory, base: str) -> str:
    """A new order paid at the simulator whose notify was dropped: still PREPAID here."""
    out_trade_no = new_order(base)
    sim(base, "faults", name="notify_drop", count=1)
    sim(base, "pay", out_trade_no=out_trade_no)
    assert order_state(directory, out_trade_no)[0] == "PREPAID"
    return out_trade_no


def db_row(directory, sql: str, *args):
    conn = sqlite3.connect(os.path.join(str(directory), "tornpay.db"), timeout=5)
    try:
        return conn.execute(sql, args).fetchone()
    finally:
        conn.close()


def order_state(directory, out_trade_no: str):
    return db_row(directory, "SELECT state, refunded_fee, reserved_refund_fee FROM tornpay_order "
                  "WHERE out_trade_no = ?", out_trade_no)
