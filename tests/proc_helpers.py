"""Helpers for the PostgreSQL and multi-process tests: schemas, server processes, notifies.

``TORNPAY_TEST_PG_URL`` names a PostgreSQL database the tests may scribble in
(``.ci/run`` starts one); each test gets its own schema through libpq's
``options=-csearch_path=...``, so the URL works unchanged in child processes.
"""

import concurrent.futures
import contextlib
import datetime
import http.client
import os
import signal
import subprocess
import sys
import time
import uuid
from urllib.parse import quote

import pytest
import yaml
from tornado.testing import bind_unused_port

from tornpay.protocol.sign import sign_params
from tornpay.protocol.xmlcodec import encode_xml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(ROOT, "tests")
PG_ENV = "TORNPAY_TEST_PG_URL"
APPID, MCH_ID = "wx2421b1c4370ec43b", "10000100"
API_KEY = "mp-test-key-0123456789abcdef0123"  # not the shipped one: the simulator is off
PREFIX = "/wxpay"

needs_pg = pytest.mark.skipif(not os.environ.get(PG_ENV),
                              reason=f"{PG_ENV} is not set (.ci/run starts a PostgreSQL)")


# -- databases -----------------------------------------------------------------

def with_schema(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    # application_name lets the cleanup find (and end) the schema's sessions.
    return (f"{url}{sep}options={quote(f'-csearch_path={schema}', safe='')}"
            f"&application_name={schema}")


@contextlib.contextmanager
def pg_schema():
    """Yield a database URL pointing at a new empty schema; drop the schema afterwards."""
    import psycopg2

    base = os.environ[PG_ENV]
    schema = "t_" + uuid.uuid4().hex[:12]
    conn = psycopg2.connect(base)
    conn.autocommit = True
    try:
        conn.cursor().execute(f"CREATE SCHEMA {schema}")
        yield with_schema(base, schema)
    finally:
        # Sessions of the test (threads, killed processes) may linger a moment.
        conn.cursor().execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE application_name = %s", (schema,))
        conn.cursor().execute(f"DROP SCHEMA {schema} CASCADE")
        conn.close()


@contextlib.contextmanager
def database_url(kind: str, tmp_path):
    """``kind`` "sqlite" (a file in tmp_path) or "postgres" (a throwaway schema)."""
    if kind == "postgres":
        if not os.environ.get(PG_ENV):
            pytest.skip(f"{PG_ENV} is not set (.ci/run starts a PostgreSQL)")
        with pg_schema() as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path}/tornpay.db"


def bind_db(url: str):
    """Bind the storage layer in this process to ``url`` and create the tables."""
    from tornpay.storage.db import bind, create_tables, open_database

    db = bind(open_database(url))
    create_tables()
    return db


def make_prepaid(out_trade_no: str, total_fee: int = 100, **extra):
    from tornpay.storage.models import PREPAID, Order, utcnow

    now = utcnow()
    values = dict(out_trade_no=out_trade_no, product_id="coach-101", openid="o-payer",
                  body="Coaching", total_fee=total_fee, state=PREPAID, created_at=now,
                  updated_at=now, expire_at=now + datetime.timedelta(hours=1),
                  prepay_id="wx_prepay_" + out_trade_no)
    values.update(extra)
    return Order.create(**values)


# -- server processes ----------------------------------------------------------

def free_port() -> int:
    sock, port = bind_unused_port()
    sock.close()
    return port


def write_settings(directory, name: str, port: int, db_url: str, plugins=(), **sections) -> str:
    data = {
        "server": {"address": "127.0.0.1", "port": port, "prefix": PREFIX,
                   "public_url": f"http://127.0.0.1:{port}", "log_level": "WARNING",
                   "cookie_secret": "mp-test-cookie-secret-0123456789"},
        # No WeChat is ever called (orders are made in the database, the
        # reconciler waits an hour): point the API at a closed port.
        "wechat": {"appid": APPID, "mch_id": MCH_ID, "api_key": API_KEY,
                   "app_secret": "mp-test-app-secret-0123", "timeout": 2,
                   "pay_api_base": "http://127.0.0.1:9", "oauth_api_base": "http://127.0.0.1:9",
                   "oauth_authorize_url": "http://127.0.0.1:9/authorize"},
        "database": {"url": db_url},
        "orders": {"reconcile_after_seconds": 3600, "reconcile_interval_seconds": 0.5},
        "deliveries": {"first_retry_seconds": 0.05, "max_retry_seconds": 0.2,
                       "timeout_seconds": 5, "poll_interval_seconds": 0.05},
        "simulator": {"enabled": False},
        "plugins": list(plugins),
    }
    for key, value in sections.items():
        data.setdefault(key, {}).update(value)
    path = os.path.join(str(directory), f"{name}.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(data, f)
    return path


def environ(directory, **extra) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(directory), TESTS, ROOT,
                                                     env.get("PYTHONPATH")) if p)
    env.pop("PYTHONWARNINGS", None)
    env.update(extra)
    return env


def recording_plugin(directory, name: str, source: str):
    """Write the plugin module ``name`` (``source``) where the servers import it from; return
    the file its hooks append to (``TP_RECORD``) and the servers' environment naming it."""
    (directory / f"{name}.py").write_text(source)
    record = directory / "record.txt"
    return record, environ(directory, TP_RECORD=str(record))


def start_server(directory, settings_file: str, port: int, env: dict,
                 timeout: float = 20.0) -> subprocess.Popen:
    """``python server.py --settings FILE``; return once /healthz answers 200."""
    return start_process(directory, [os.path.join(ROOT, "server.py"), "--settings",
                                     settings_file], port, env, "/healthz", timeout)


def start_process(directory, args, port: int, env: dict, ready_path: str,
                  timeout: float = 20.0) -> subprocess.Popen:
    """``python ARGS`` logging to server-PORT.log; return once ``ready_path`` answers 200."""
    log = open(os.path.join(str(directory), f"server-{port}.log"), "ab")
    proc = subprocess.Popen([sys.executable] + list(args), cwd=str(directory), env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    log.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited {proc.returncode}: "
                                 + server_log(directory, port))
        try:
            if request("GET", port, ready_path)[0] == 200:
                return proc
        except OSError:
            pass
        time.sleep(0.1)
    kill(proc)
    raise AssertionError(f"server on {port} did not start: " + server_log(directory, port))


def server_log(directory, port: int) -> str:
    with open(os.path.join(str(directory), f"server-{port}.log"), errors="replace") as f:
        return f.read()[-4000:]


def terminate(proc: subprocess.Popen, timeout: float = 15.0) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill(proc)
        raise AssertionError(f"server ignored SIGTERM for {timeout}s")


def kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)


def log_tail(log) -> str:
    """The end of what a process wrote to ``log`` (a file it shares with us, open "w+")."""
    log.flush()
    log.seek(0)
    return log.read()[-3000:]


@contextlib.contextmanager
def running(args, cwd, env, log):
    """``args`` as a process writing to ``log`` (open "w+"); on leaving the block it gets
    SIGTERM and must exit 0 within 20 s (a failure shows its log)."""
    proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        try:
            code = terminate(proc, timeout=20)
        except AssertionError as exc:
            pytest.fail(f"{exc}\n" + log_tail(log))
    assert code == 0, log_tail(log)


# -- HTTP ----------------------------------------------------------------------

def request(method: str, port: int, path: str, body: bytes = None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def notify_body(out_trade_no: str, total_fee: int, transaction_id: str) -> bytes:
    """A correctly signed §11.2 payment notify (MD5), as WeChat sends it."""
    fields = {"appid": APPID, "mch_id": MCH_ID, "nonce_str": uuid.uuid4().hex,
              "result_code": "SUCCESS", "return_code": "SUCCESS", "openid": "o-payer",
              "is_subscribe": "N", "trade_type": "JSAPI", "bank_type": "CMC",
              "total_fee": str(total_fee), "fee_type": "CNY", "cash_fee": str(total_fee),
              "transaction_id": transaction_id, "out_trade_no": out_trade_no,
              "time_end": "20240601123110"}
    return encode_xml(sign_params(fields, API_KEY, "MD5"))


def send_notifies(jobs, workers: int = 32):
    """POST each ``(port, body)`` concurrently; return the list of (status, reply)."""
    def post(job):
        port, body = job
        return request("POST", port, PREFIX + "/notify", body,
                       {"Content-Type": "text/xml"})

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        return list(pool.map(post, jobs))


def wait_until(predicate, timeout: float = 30.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


def suite_database_url(tmp_path) -> str:
    """The database of an ordinary test: SQLite in tmp_path, or with ``TORNPAY_TEST_DB=postgres``
    a schema of its own in TORNPAY_TEST_PG_URL (how .ci/run re-runs the core tests there)."""
    if os.environ.get("TORNPAY_TEST_DB") != "postgres":
        return f"sqlite:///{tmp_path}/tornpay-test.db"
    import hashlib

    import psycopg2

    schema = "s_" + hashlib.sha1(str(tmp_path).encode()).hexdigest()[:16]
    conn = psycopg2.connect(os.environ[PG_ENV])
    conn.autocommit = True
    try:
        conn.cursor().execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    finally:
        conn.close()
    return with_schema(os.environ[PG_ENV], schema)
