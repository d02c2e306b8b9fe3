"""``tornpay admin set-password`` and ``tornpay bill fetch|reconcile|report`` as real subprocesses."""

import datetime
import os
import sys

import pytest

import subprocess

from cli_helpers import (API_KEY, db_row, environ, free_port, order_state,
                         paid_but_notify_lost, run_cli, sim, start, stop, wait_until,
                         write_settings)

pytestmark = pytest.mark.slow
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    directory = tmp_path_factory.mktemp("bill-cli")
    port = free_port()
    settings = write_settings(directory, port, admin={"enabled": True})
    base = f"http://127.0.0.1:{port}"
    proc = start(directory, [sys.executable, os.path.join(ROOT, "server.py"), "--settings",
                             settings], base + "/healthz")
    yield directory, base
    code, err = stop(proc)
    assert code == 0, err


def today() -> str:
    return datetime.datetime.now(datetime.timezone(datetime.timedelta(hours=8))).date().isoformat()


def test_set_password_from_stdin_stores_only_a_hash(server):
    directory, _ = server
    cmd = [sys.executable, "-m", "tornpay.cli", "admin", "set-password", "ops-lead",
           "--password-stdin", "--settings", os.path.join(str(directory), "settings.yaml")]
    done = subprocess.run(cmd, input="a long enough secret\n", cwd=str(directory),
                          env=environ(directory), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "operator ops-lead: created" in done.stdout, done.stderr
    (stored,) = db_row(directory, "SELECT password_hash FROM tornpay_operator WHERE name = ?",
                       "ops-lead")
    assert stored.startswith("scrypt$") and "a long enough secret" not in stored
    short = subprocess.run(cmd, input="short\n", cwd=str(directory), env=environ(directory),
                           capture_output=True, text=True, timeout=60)
    assert short.returncode == 1 and short.stderr.startswith("tornpay: password")


def test_bill_reconcile_exits_one_on_an_unsettled_difference(server):
    directory, base = server
    no = paid_but_notify_lost(directory, base)
    ok = run_cli(directory, "bill", "reconcile", "--date", today())
    assert ok.returncode == 0, ok.stderr
    assert f"settled  PAID_AT_WECHAT  order={no}" in ok.stdout
    wait_until(lambda: order_state(directory, no)[0] == "PAID")
    sim(base, "faults", name="bill_amount_differs", count=1)
    fetched = run_cli(directory, "bill", "fetch", "--date", today())
    assert fetched.returncode == 0 and "stored" in fetched.stdout, fetched.stderr
    bad = run_cli(directory, "bill", "reconcile", "--date", today())
    assert bad.returncode == 1 and "UNSETTLED  AMOUNT_DIFFERS" in bad.stdout
    # The alert as logged (at ERROR), then the one line of the refusal.
    lines = bad.stderr.strip().splitlines()
    assert "ALERT" in lines[0] and "AMOUNT_DIFFERS" in lines[0]
    assert lines[-1] == f"tornpay: bill {today()}: 1 unsettled difference(s)"
    sim(base, "faults", name="bill_creating", count=1)
    later = run_cli(directory, "bill", "fetch", "--date", today())
    assert later.returncode == 1 and "Bill Creating" in later.stderr
    assert API_KEY not in later.stderr + bad.stdout


def test_bill_report_needs_only_the_database(server, tmp_path):
    """The stored reconciliation, printed from a settings file holding only database.url."""
    directory, _ = server
    bare = tmp_path / "db-only.yaml"
    bare.write_text(f"database:\n  url: sqlite:///{directory}/tornpay.db\n")
    never = run_cli(directory, "bill", "report", "--date", "2001-01-01", settings=str(bare))
    assert never.returncode == 1, never.stderr
    assert never.stderr.strip() == "tornpay: bill 2001-01-01: not reconciled yet (tornpay bill " \
                                   "reconcile fetches and reconciles it)"
    reconciled = run_cli(directory, "bill", "reconcile", "--date", today())
    report = run_cli(directory, "bill", "report", "--date", today(), settings=str(bare))
    # The stored report also keeps differences settled by earlier runs, as history.
    assert reconciled.returncode == report.returncode == 1, report.stderr
    found = reconciled.stdout.splitlines()
    assert found[0].startswith("UNSETTLED  AMOUNT_DIFFERS")
    assert set(found[:-1]) <= set(report.stdout.splitlines())
    assert report.stdout.splitlines()[-1].endswith(" 1 unsettled")
    assert report.stderr.strip() == f"tornpay: bill {today()}: 1 unsettled difference(s)"
