"""Issue 14.9: a database that cannot be written is refused at start, and reported while running."""

import contextlib
import os
import signal
import subprocess
import sys
import time

import pytest

import proc_helpers
from flow_helpers import ALICE, Browser, wait_for
from tornpay.protocol.xmlcodec import decode_xml

sqlite_only = pytest.mark.skipif(os.environ.get("TORNPAY_TEST_DB") == "postgres",
                                 reason="the file checks are SQLite's")


@contextlib.contextmanager
def read_only(path: str):
    """Make the database file unwritable for a process that opens it next.

    As root, where modes do not bind, the file is made immutable instead.
    """
    if os.geteuid() != 0:
        os.chmod(path, 0o444)
        undo = ["chmod", "0644", path]
    else:
        if subprocess.run(["chattr", "+i", path], capture_output=True).returncode != 0:
            pytest.skip("cannot make a file read-only here (no chattr +i)")
        undo = ["chattr", "-i", path]
    try:
        yield
    finally:
        subprocess.run(undo, check=True)


def _db_file(ctx) -> str:
    return os.path.abspath(ctx.db.database)


@pytest.fixture
def tp_overrides():
    return {"database": {"check_interval_seconds": 0.05}}


async def _reported_down(http_client, base_url, tp_settings):
    health = await http_client.fetch(base_url + "/healthz", raise_error=False)
    assert health.code == 503 and b"not writable" in health.body
    notify = await http_client.fetch(base_url + "/wxpay/notify", method="POST",
                                     body=b"<xml><return_code>SUCCESS</return_code></xml>",
                                     raise_error=False)
    reply = decode_xml(notify.body)
    assert reply == {"return_code": "FAIL", "return_msg": "temporary failure, retry"}
    browser = Browser(http_client, base_url)
    browser.set_openid(tp_settings, ALICE)
    page = await browser.get("/wxpay/checkout/coach-101")
    assert page.code == 503 and "暂时无法服务" in page.body.decode()
    assert "Temporarily unavailable" in page.body.decode()
    metrics = (await http_client.fetch(base_url + "/metrics")).body.decode()
    assert "tornpay_database_writable 0.0" in metrics


@sqlite_only
@pytest.mark.gen_test(timeout=30)
async def test_vanished_database_file_is_reported_and_payments_wait(http_client, base_url,
                                                                    tp_settings, ctx):
    assert (await http_client.fetch(base_url + "/healthz")).code == 200
    path = _db_file(ctx)
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(path + suffix)
    await wait_for(lambda: not ctx.db_health.ok)
    assert "vanished" in ctx.db_health.reason
    await _reported_down(http_client, base_url, tp_settings)


@contextlib.contextmanager
def permissions_revoked(path: str, monkeypatch):
    """chmod the file read-only; as root (whom modes do not bind) deny it as the kernel would."""
    if os.geteuid() != 0:
        os.chmod(path, 0o444)
        try:
            yield
        finally:
            os.chmod(path, 0o644)
        return
    from tornpay.storage import health

    real = os.access
    monkeypatch.setattr(health.os, "access", lambda target, mode, **kw: False if (
        target == path and mode & os.W_OK) else real(target, mode, **kw))
    yield
    monkeypatch.setattr(health.os, "access", real)


@sqlite_only
@pytest.mark.gen_test(timeout=30)
async def test_read_only_database_is_reported_then_recovers(http_client, base_url, tp_settings,
                                                            ctx, monkeypatch):
    with permissions_revoked(_db_file(ctx), monkeypatch):
        await wait_for(lambda: not ctx.db_health.ok)
        assert "no write permission" in ctx.db_health.reason
        await _reported_down(http_client, base_url, tp_settings)
    await wait_for(lambda: ctx.db_health.ok)
    assert (await http_client.fetch(base_url + "/healthz")).code == 200


def _start(tmp_path, port, settings_file):
    return subprocess.run([sys.executable, os.path.join(proc_helpers.ROOT, "server.py"),
                           "--settings", settings_file], cwd=str(tmp_path),
                          env=proc_helpers.environ(tmp_path), capture_output=True, text=True,
                          timeout=60)


def _assert_refused_naming_the_database(done):
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    lines = [line for line in done.stderr.splitlines() if line.startswith("tornpay: ")]
    assert len(lines) == 1 and "database.url" in lines[0], done.stderr[-2000:]
    assert "Traceback" not in done.stderr


def _on_sqlite(tmp_path, name, db_file):
    """A free port and a settings file (``name``.yaml) for server.py on SQLite ``db_file``."""
    port = proc_helpers.free_port()
    return port, proc_helpers.write_settings(tmp_path, name, port, f"sqlite:///{db_file}")


def _serve(tmp_path, port, settings_file):
    return proc_helpers.start_server(tmp_path, settings_file, port,
                                     proc_helpers.environ(tmp_path))


@sqlite_only
def test_start_is_refused_on_a_database_that_cannot_be_written(tmp_path):
    db_file = tmp_path / "tp.db"
    port, settings_file = _on_sqlite(tmp_path, "ro", db_file)
    proc = _serve(tmp_path, port, settings_file)
    proc_helpers.terminate(proc)  # a real database with every table, then made read-only
    with read_only(str(db_file)):
        done = _start(tmp_path, port, settings_file)
    _assert_refused_naming_the_database(done)


def test_start_is_refused_on_a_database_that_cannot_be_opened(tmp_path):
    port, settings_file = _on_sqlite(tmp_path, "gone", f"{tmp_path}/no/such/dir/tp.db")
    done = _start(tmp_path, port, settings_file)
    _assert_refused_naming_the_database(done)


def test_a_fatal_signal_is_not_silent(tmp_path):
    """SIGBUS (what a vanished WAL index raises) leaves a trace instead of a silent death."""
    port, settings_file = _on_sqlite(tmp_path, "bus", f"{tmp_path}/tp.db")
    proc = _serve(tmp_path, port, settings_file)
    proc.send_signal(signal.SIGBUS)
    deadline = time.monotonic() + 20
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    proc_helpers.kill(proc)
    # The whole log: the header comes before a stack dump of every thread, which
    # can be longer than the tail server_log() returns.
    log = (tmp_path / f"server-{port}.log").read_text(errors="replace")
    assert "Fatal Python error" in log and "Bus error" in log, log[-4000:]


@proc_helpers.needs_pg
def test_start_is_refused_on_a_read_only_postgres(tmp_path):
    from urllib.parse import quote, unquote

    from conftest import base_settings_dict, merge
    from tornpay.context import Context
    from tornpay.settings import SettingsError, settings_from_dict

    with proc_helpers.pg_schema() as url:
        proc_helpers.bind_db(url).close()  # every table there, as after an earlier start
        options = unquote(url.split("options=", 1)[1].split("&", 1)[0])
        read_only_url = url.replace(quote(options, safe=""), quote(
            options + " -cdefault_transaction_read_only=on", safe=""))
        settings = settings_from_dict(merge(base_settings_dict(tmp_path, 8888),
                                            {"database": {"url": read_only_url}}), env={})
        with pytest.raises(SettingsError) as refused:
            Context(settings)
    assert str(refused.value).startswith("setting database.url")
    assert "read-only" in str(refused.value)
