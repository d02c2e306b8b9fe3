"""The CLI as an estate runs it: --settings anywhere, one-line errors, database-only verbs,
delivery attempt history, UTC times and the order's payer IP (issue 21 items 2-6, 8)."""

import asyncio
import os
import re
import subprocess
import sys

import pytest
import yaml

from helpers_orders import RecordingPlugin, make_order, make_settings, paid_fields
from proc_helpers import free_port
from tornpay.hooks import HookManager
from tornpay.orders import transitions
from tornpay.orders.dispatcher import Dispatcher
from tornpay.orders.refunds import apply_refund_result
from tornpay.storage.db import bind, create_tables, open_database
from tornpay.storage.models import PAID, PENDING, Delivery, Event, Refund

pytestmark = pytest.mark.slow
TIME_RE = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:\.\d+)?Z?")


def run(cwd, *args, env=None):
    """``python -m tornpay.cli ARGS`` with no TORNPAY_* from the outside."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("TORNPAY_")}
    base.pop("PYTHONWARNINGS", None)
    return subprocess.run([sys.executable, "-m", "tornpay.cli", *args], cwd=str(cwd),
                          env=dict(base, **(env or {})), capture_output=True, text=True,
                          timeout=60)


def one_line(result, code):
    assert result.returncode == code, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tornpay: "), result.stderr
    return lines[0]


def ok(result):
    assert result.returncode == 0, (result.stdout, result.stderr)
    return result.stdout


def drain(hooks, max_attempts):
    """Deliver what is due, in a loop of its own (never touching the thread's current loop)."""
    async def work():
        d = Dispatcher(hooks, make_settings(deliveries={"max_attempts": max_attempts}), "t")
        for _ in range(20):
            await d.run_once()
            if not Delivery.select().where(Delivery.state == PENDING).exists():
                return

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(work())
    finally:
        loop.close()


@pytest.fixture
def estate(tmp_path):
    """A SQLite database with a paid order (payer IP kept), a refund and a failing delivery,
    and a settings file that holds nothing but database.url."""
    url = f"sqlite:///{tmp_path}/tornpay.db"
    db = bind(open_database(url))
    create_tables()
    make_order("T1", spbill_create_ip="203.0.113.7")
    hooks = HookManager(make_settings())
    hooks.register(RecordingPlugin(fail={"on_paid": 5}), name="rec")
    transitions.mark_paid("T1", hooks=hooks, **paid_fields())
    drain(hooks, max_attempts=2)  # two failures: parked as failed
    Refund.create(out_refund_no="R1", order="T1", refund_fee=40, state="PROCESSING")
    apply_refund_result("R1", "SUCCESS", hooks=hooks, success_time="2024-06-01 12:31:10")
    db.close()
    path = tmp_path / "db-only.yaml"
    path.write_text(yaml.safe_dump({"database": {"url": url}}))
    yield tmp_path, str(path), hooks, url
    hooks.close()


def test_read_only_verbs_need_only_the_database_and_settings_go_anywhere(estate):
    tmp_path, settings, _, _ = estate
    # --settings before the verb, after it, as --settings=F, and from $TORNPAY_SETTINGS.
    for args, env in ((["--settings", settings, "orders", "list"], None),
                      (["orders", "list", "--settings", settings], None),
                      (["orders", "--settings=" + settings, "list"], None),
                      (["orders", "list"], {"TORNPAY_SETTINGS": settings})):
        assert "T1" in ok(run(tmp_path, *args, env=env))
    for args in (["orders", "show", "T1"], ["deliveries", "list"],
                 ["deliveries", "show", Delivery_id(estate)]):
        ok(run(tmp_path, *args, "--settings", settings))
    # A verb that talks to WeChat still needs the WeChat keys: one line, exit 2.
    line = one_line(run(tmp_path, "query", "T1", "--settings", settings), 2)
    assert "is required" in line


def Delivery_id(estate):  # noqa: N802
    _, _, _, url = estate
    db = bind(open_database(url))
    try:
        return Delivery.select().join(Event).where(Event.hook == "on_paid").get().id
    finally:
        db.close()


def test_usage_errors_are_one_line(estate):
    tmp_path, settings, _, _ = estate
    for args in (["frobnicate"], ["orders", "list", "--bogus"], ["orders", "list", "--limit"],
                 ["orders", "show"], ["deliveries", "list", "--state", "nope"],
                 ["deliveries", "retry"], ["orders", "list", "--settings"]):
        line = one_line(run(tmp_path, *args, "--settings", settings)
                        if args[-1] != "--settings" else run(tmp_path, *args), 2)
        assert "--help" in line


def test_attempt_history_survives_retry_and_done_rows_show_no_stale_error(estate):
    tmp_path, settings, hooks, url = estate
    delivery_id = Delivery_id(estate)
    failed = ok(run(tmp_path, "deliveries", "list", "--state", "failed", "--settings", settings))
    row = next(line.split() for line in failed.splitlines() if line.startswith(delivery_id))
    assert row[4:6] == ["failed", "2"]
    assert "made due again" in ok(run(tmp_path, "deliveries", "retry", delivery_id,
                                      "--settings", settings))
    db = bind(open_database(url))
    hooks.get_plugin("rec").fail = {}  # the fulfilment system is back
    drain(hooks, max_attempts=2)
    db.close()
    listing = ok(run(tmp_path, "deliveries", "list", "--order", "T1", "--state", "done",
                     "--settings", settings))
    rows = {line.split()[0]: line.split() for line in listing.splitlines()[1:]}
    assert len(rows) == 2  # on_paid and on_refund
    assert rows[delivery_id][4:] == ["done", "3", "-", "-"]  # all 3 calls, no stale error
    assert len(ok(run(tmp_path, "deliveries", "list", "--limit", "1", "--settings",
                      settings)).splitlines()) == 2  # the header and one row
    assert ok(run(tmp_path, "deliveries", "list", "--order", "T2", "--settings",
                  settings)).splitlines()[1:] == []
    shown = ok(run(tmp_path, "deliveries", "show", delivery_id, "--settings", settings))
    attempts = [line.split() for line in shown.splitlines() if re.match(r"^[123] ", line)]
    assert [a[3] for a in attempts] == ["error", "error", "done"]
    assert "on_paid failing on purpose" in shown
    order = ok(run(tmp_path, "orders", "show", "T1", "--settings", settings))
    assert f"attempts of {delivery_id} (3):" in order
    one_line(run(tmp_path, "deliveries", "show", "nope", "--settings", settings), 3)


def test_orders_show_payer_ip_trade_type_and_utc_times(estate):
    tmp_path, settings, _, _ = estate
    shown = ok(run(tmp_path, "orders", "show", "T1", "--settings", settings))
    fields = dict(line.split(":", 1) for line in shown.splitlines()
                  if re.match(r"^[a-z_]+:\s", line))
    assert fields["payer_ip"].strip() == "203.0.113.7"
    assert fields["trade_type"].strip() == "JSAPI" and fields["api"].strip() == "v2"
    # WeChat's Beijing success_time 2024-06-01 12:31:10 is 04:31:10 UTC.
    assert "2024-06-01T04:31:10Z" in shown and "12:31:10" not in shown
    stamps = TIME_RE.findall(shown + ok(run(tmp_path, "orders", "list", "--settings", settings))
                             + ok(run(tmp_path, "deliveries", "list", "--settings", settings)))
    assert len(stamps) >= 5 and all(s.endswith("Z") and "T" in s for s in stamps), stamps


def test_migration_5_moves_stored_beijing_success_times_to_utc(tmp_path):
    from tornpay.storage.migrations import SchemaVersion

    db = bind(open_database(f"sqlite:///{tmp_path}/old.db"))
    create_tables()
    make_order("T9", state=PAID)
    Refund.create(out_refund_no="R9", order="T9", refund_fee=1, state="SUCCESS",
                  success_time="2024-06-01 07:00:00")  # as stored before step 5
    SchemaVersion.delete().where(SchemaVersion.version >= 5).execute()
    db.execute_sql('DROP TABLE "tornpay_delivery_attempt"')
    create_tables()  # the next start upgrades it
    assert Refund.get_by_id("R9").success_time == "2024-05-31T23:00:00Z"
    assert db.table_exists("tornpay_delivery_attempt")
    db.close()


def _unreachable_settings(tmp_path, url):
    from cli_helpers import write_settings

    return write_settings(tmp_path, free_port(), database={"url": url})


@pytest.mark.parametrize("failure", ["no driver", "unreachable"])
def test_database_problems_at_start_are_one_line_for_every_verb(tmp_path, failure):
    port = free_port()  # nothing listens there
    url = f"postgresql://tornpay:hunter2-pw@127.0.0.1:{port}/shop"
    settings = _unreachable_settings(tmp_path, url)
    env = {}
    if failure == "no driver":  # a psycopg2 that cannot be imported
        fake = tmp_path / "nodriver" / "psycopg2"
        fake.mkdir(parents=True)
        (fake / "__init__.py").write_text("raise ImportError('no psycopg2 here')\n")
        env["PYTHONPATH"] = str(fake.parent)
    verbs = [["serve"], ["orders", "list"], ["orders", "show", "T1"], ["deliveries", "list"],
             ["deliveries", "show", "x"], ["deliveries", "retry", "--all-failed"],
             ["query", "T1"], ["close", "T1"], ["refund", "T1"]]
    for verb in verbs:
        line = one_line(run(tmp_path, *verb, "--settings", settings, env=env), 2)
        assert "database.url" in line and "hunter2" not in line, (verb, line)
        if failure == "no driver":
            assert "pip install 'tornpay[postgres]'" in line, line
        else:
            assert f"127.0.0.1:{port}" in line, line
    server = subprocess.run([sys.executable, "server.py", "--settings", settings],
                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            env=dict(os.environ, **env), capture_output=True, text=True,
                            timeout=60)
    assert one_line(server, 2).startswith("tornpay: setting database.url")


def test_a_plugin_module_beside_the_settings_file_loads_without_pythonpath(tmp_path):
    from cli_helpers import write_settings

    shop = tmp_path / "shop"
    shop.mkdir()
    settings = write_settings(shop, free_port())
    with open(settings) as f:
        data = yaml.safe_load(f)
    data["plugins"] = ["tornpay.plugins.catalog", "beside_shop"]
    with open(settings, "w") as f:
        yaml.safe_dump(data, f)
    (shop / "beside_shop.py").write_text(
        "import os\n"
        "open(os.path.join(os.path.dirname(__file__), 'loaded'), 'w').close()\n\n\n"
        "def on_paid(order):\n    pass\n")
    elsewhere = tmp_path / "elsewhere"  # neither the cwd nor PYTHONPATH holds the plugin
    elsewhere.mkdir()
    line = one_line(run(elsewhere, "close", "NO_SUCH_ORDER", "--settings", settings), 3)
    assert "not found" in line and (shop / "loaded").exists()


def test_an_embedding_estate_runs_the_cli_from_its_settings_dict(estate):
    tmp_path, _, _, url = estate
    code = tmp_path / "code"
    code.mkdir()
    (code / "estate_settings.py").write_text(
        f"TORNPAY_SETTINGS = {{'database': {{'url': {url!r}}}, 'plugins': []}}\n\n\n"
        "def make():\n    return dict(TORNPAY_SETTINGS)\n")
    env = {"PYTHONPATH": str(code)}
    for ref in ("estate_settings:TORNPAY_SETTINGS", "estate_settings:make"):
        assert "T1" in ok(run(tmp_path, "--settings", ref, "orders", "list", env=env))
        assert "T1" in ok(run(tmp_path, "deliveries", "list", env=dict(env, TORNPAY_SETTINGS=ref)))
    line = one_line(run(tmp_path, "--settings", "estate_settings:NOPE", "orders", "list", env=env),
                    2)
    assert "estate_settings:NOPE" in line


def test_database_verbs_change_no_schema_that_is_current(estate, monkeypatch):
    # So a read-only database role is enough for orders/deliveries verbs.
    from tornpay.orders import admin

    _, _, _, url = estate
    settings = make_settings(database={"url": url})
    monkeypatch.setattr(admin.storage, "create_tables",
                        lambda *a: pytest.fail("schema touched on a current database"))
    ctx = admin.DatabaseContext(settings)
    try:
        assert [o.out_trade_no for o in admin.list_orders()] == ["T1"]
    finally:
        ctx.close()
