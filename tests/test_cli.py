"""Every ``tornpay`` verb, run as a real subprocess against a real server with the simulator."""

import json
import os
import sys

import pytest

from cli_helpers import (APP_SECRET, API_KEY, COOKIE_SECRET, db_row, free_port, new_order,
                         order_state, paid_but_notify_lost, request, run_cli, sim, start, stop,
                         wait_until, write_settings)
from conftest import V3_TEST_KEYS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["v2", "v3"])
def server(tmp_path_factory, request):
    """``python server.py`` with the simulator mounted (orders made in API ``request.param``);
    stopped with SIGTERM at the end."""
    directory = tmp_path_factory.mktemp("cli")
    port = free_port()
    settings = write_settings(directory, port, wechat=dict(V3_TEST_KEYS,
                                                           api_version=request.param))
    base = f"http://127.0.0.1:{port}"
    proc = start(directory, [sys.executable, os.path.join(os.path.dirname(
        os.path.dirname(os.path.abspath(__file__))), "server.py"), "--settings", settings],
        base + "/healthz")
    yield directory, base
    code, err = stop(proc)
    assert code == 0, err
    for secret in (API_KEY, APP_SECRET, COOKIE_SECRET, V3_TEST_KEYS["apiv3_key"]):
        assert secret not in err


def ok(result):
    assert result.returncode == 0, (result.stdout, result.stderr)
    return result.stdout


def refused(result, code):
    """Exit ``code`` with exactly one clear line on stderr; return it."""
    assert result.returncode == code, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tornpay: "), result.stderr
    return lines[0]


def paid_order(directory, base) -> str:
    out_trade_no = new_order(base)
    sim(base, "pay", out_trade_no=out_trade_no)
    wait_until(lambda: order_state(directory, out_trade_no)[0] == "PAID")
    return out_trade_no


def records(directory):
    path = os.path.join(str(directory), "record.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f]


def test_orders_list_and_show(server):
    directory, base = server
    out_trade_no = paid_order(directory, base)
    listing = ok(run_cli(directory, "orders", "list"))
    assert listing.splitlines()[0].split()[:4] == ["OUT_TRADE_NO", "STATE", "TYPE", "FEE"]
    assert any(line.split()[:4] == [out_trade_no, "PAID", "JSAPI", "9900"]
               for line in listing.splitlines())
    assert out_trade_no not in ok(run_cli(directory, "orders", "list", "--state", "CLOSED"))
    assert out_trade_no not in ok(run_cli(directory, "orders", "list", "--since", "2000-01-01",
                                          "--until", "2000-01-02"))
    assert out_trade_no in ok(run_cli(directory, "orders", "list", "--since", "2000-01-01",
                                      "--limit", "500"))
    shown = ok(run_cli(directory, "orders", "show", out_trade_no))
    assert "state:" in shown and "PAID" in shown
    assert any(line.split() == ["trade_type:", "JSAPI"] for line in shown.splitlines())
    assert "notifies (1):" in shown and "accepted" in shown
    assert "refunds (0):" in shown
    refused(run_cli(directory, "orders", "show", "NO_SUCH_ORDER"), 3)
    bad_date = run_cli(directory, "orders", "list", "--since", "yesterday")
    assert bad_date.returncode == 2 and "YYYY-MM-DD" in bad_date.stderr


def test_refund_partial_then_over_refund_then_rest(server):
    directory, base = server
    out_trade_no = paid_order(directory, base)
    first = ok(run_cli(directory, "refund", out_trade_no, "--fee", "900", "--reason", "late"))
    assert "accepted by WeChat" in first
    out_refund_no = first.split()[1]
    line = refused(run_cli(directory, "refund", out_trade_no, "--fee", "9500"), 1)
    assert "9000 fen left to refund" in line
    assert order_state(directory, out_trade_no) == ("PAID", 0, 900)  # unchanged
    sim(base, "refunds/finish", out_refund_no=out_refund_no)  # the simulator notifies
    wait_until(lambda: order_state(directory, out_trade_no) == ("PARTIAL_REFUNDED", 900, 900))
    rest = ok(run_cli(directory, "refund", out_trade_no))
    rest_no = rest.split()[1]
    assert "of 9000 fen" in rest
    sim(base, "refunds/finish", out_refund_no=rest_no)
    wait_until(lambda: order_state(directory, out_trade_no)[0] == "REFUNDED")
    # The serving process delivered on_refund once per refund.
    wait_until(lambda: len([r for r in records(directory) if r[0] == out_trade_no]) == 2)
    mine = sorted((r[1], r[2]) for r in records(directory) if r[0] == out_trade_no)
    assert mine == sorted([(out_refund_no, 900), (rest_no, 9000)])
    refused(run_cli(directory, "refund", out_trade_no, "--fee", "1"), 1)
    refused(run_cli(directory, "refund", "NO_SUCH_ORDER"), 3)
    shown = ok(run_cli(directory, "orders", "show", out_trade_no))
    assert "refunds (2):" in shown and shown.count("SUCCESS") >= 2


def test_query_applies_a_payment_whose_notify_was_lost(server):
    directory, base = server
    out_trade_no = paid_but_notify_lost(directory, base)
    out = ok(run_cli(directory, "query", out_trade_no))
    assert "trade_state SUCCESS" in out and "here PAID" in out
    assert order_state(directory, out_trade_no)[0] == "PAID"
    refused(run_cli(directory, "query", "NO_SUCH_ORDER"), 3)


def test_query_finishes_an_open_refund(server):
    directory, base = server
    out_trade_no = paid_order(directory, base)
    first = ok(run_cli(directory, "refund", out_trade_no, "--fee", "100"))
    out_refund_no = first.split()[1]
    sim(base, "faults", name="notify_drop", count=1)
    sim(base, "refunds/finish", out_refund_no=out_refund_no)
    out = ok(run_cli(directory, "query", out_trade_no))
    assert f"refund {out_refund_no}: WeChat refund_status SUCCESS; here SUCCESS" in out
    assert order_state(directory, out_trade_no) == ("PARTIAL_REFUNDED", 100, 100)


def test_close_then_failed_delivery_list_and_retry(server):
    directory, base = server
    out_trade_no = new_order(base)
    assert ok(run_cli(directory, "close", out_trade_no)).strip() == f"order {out_trade_no}: CLOSED"
    assert order_state(directory, out_trade_no)[0] == "CLOSED"
    refused(run_cli(directory, "close", out_trade_no), 1)  # already closed
    # on_cancel raises in the test plugin and max_attempts is 1: parked as failed.
    wait_until(lambda: db_row(directory, "SELECT d.id FROM tornpay_delivery d JOIN tornpay_event e "
                              "ON d.event_id = e.id WHERE e.out_trade_no = ? AND d.state = "
                              "'failed'", out_trade_no))
    failed = ok(run_cli(directory, "deliveries", "list", "--state", "failed"))
    rows = [line.split() for line in failed.splitlines()[1:]]
    delivery_id = next(r[0] for r in rows if r[2] == out_trade_no)
    assert delivery_id.endswith(":cli_helpers") and "on_cancel" in failed
    assert "RuntimeError" in failed
    open(os.path.join(str(directory), "record.jsonl.ok"), "w").close()  # the system is back
    try:
        out = ok(run_cli(directory, "deliveries", "retry", delivery_id))
        assert "made due again" in out
        wait_until(lambda: db_row(directory, "SELECT state FROM tornpay_delivery WHERE id = ?",
                                  delivery_id) == ("done",))
        done = ok(run_cli(directory, "deliveries", "list", "--state", "done"))
        assert delivery_id in done
        refused(run_cli(directory, "deliveries", "retry", delivery_id), 1)  # never repeated
        assert "failed deliveries made due again" in ok(
            run_cli(directory, "deliveries", "retry", "--all-failed"))
    finally:
        os.remove(os.path.join(str(directory), "record.jsonl.ok"))
    refused(run_cli(directory, "deliveries", "retry", "no-such-delivery"), 3)
    usage = run_cli(directory, "deliveries", "retry")
    assert usage.returncode == 2
    refused(run_cli(directory, "close", "NO_SUCH_ORDER"), 3)


def test_close_respects_min_close_age(server, tmp_path):
    directory, base = server
    out_trade_no = new_order(base)
    with open(os.path.join(str(directory), "settings.yaml")) as f:
        text = f.read()
    young = tmp_path / "young.yaml"
    young.write_text(text.replace("min_close_age_seconds: 0", "min_close_age_seconds: 3600", 1))
    line = refused(run_cli(directory, "close", out_trade_no, settings=str(young)), 1)
    assert "min_close_age_seconds" in line
    assert order_state(directory, out_trade_no)[0] == "PREPAID"


def test_settings_errors_exit_2_in_one_line(tmp_path):
    line = refused(run_cli(tmp_path, "orders", "list", settings=str(tmp_path / "nope.yaml")), 2)
    assert "nope.yaml" in line
    bad = write_settings(tmp_path, 8888, wechat={"api_key": "short-key-" + "s3cr3t"})
    line = refused(run_cli(tmp_path, "deliveries", "list", settings=bad), 2)
    assert "wechat.api_key" in line and "s3cr3t" not in line
    assert run_cli(tmp_path, "frobnicate").returncode == 2


def test_serve_verb_starts_and_stops_cleanly_on_sigterm(tmp_path):
    port = free_port()
    settings = write_settings(tmp_path, port)
    proc = start(tmp_path, [sys.executable, "-m", "tornpay.cli", "serve", "--settings",
                            settings], f"http://127.0.0.1:{port}/healthz")
    code, err = stop(proc)
    assert code == 0, err


def test_simulator_verb_serves_the_simulator_alone(tmp_path):
    settings = write_settings(tmp_path, 8888)
    port = free_port()
    proc = start(tmp_path, [sys.executable, "-m", "tornpay.cli", "simulator", "--port",
                            str(port), "--settings", settings],
                 f"http://127.0.0.1:{port}/control/state")
    try:
        status, _, body = request("POST", f"http://127.0.0.1:{port}/pay/orderquery",
                                  body=b"<xml><appid>x</appid></xml>")
        assert status == 200 and b"<return_code>" in body
    finally:
        code, err = stop(proc)
    assert code == 0, err
