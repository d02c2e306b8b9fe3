"""Faults: WeChat misbehaving, the database locked or gone, bad plugins, lost notifies, SIGTERM."""

import asyncio
import concurrent.futures
import json
import os
import sqlite3
import threading
import time

import peewee
import pytest
import tornado.web

import cli_helpers
from flow_helpers import (ALICE, Browser, location, notify_fields, order_row, order_snapshot,
                          out_trade_no_of, prepaid_order, signed_notify, wait_for)
from helpers_orders import RecordingPlugin
from v3_notify_helpers import notify as v3_notify
from v3_notify_helpers import transaction
from tornpay.orders import service
from tornpay.protocol.xmlcodec import decode_xml
from tornpay.storage.models import Delivery, Event, Notification, Order

KEY = "192006250b4c09247ec02edce69f6a2d"


@pytest.fixture
def tp_overrides():
    # Short upstream timeout so "WeChat timing out" takes under a second per try.
    return {"wechat": {"timeout": 0.5}}


@pytest.fixture
def plugins():
    return []


@pytest.fixture
def app(tp_settings, io_loop, plugins):
    from tornpay.app import make_app

    application = make_app(tp_settings, plugins=plugins)
    yield application
    io_loop.run_sync(application.settings["tornpay"].stop)


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch):
    monkeypatch.setattr(service, "RETRY_BACKOFF_SECONDS", 0.01)


@pytest.fixture
def browser(http_client, tp_settings):
    b = Browser(http_client, tp_settings.server.public_url)
    b.set_openid(tp_settings, ALICE)
    return b


@pytest.fixture
def order(browser, io_loop):
    return io_loop.run_sync(lambda: prepaid_order(browser))


async def notify(http_client, base_url, body, **kwargs):
    """POST a notify (v3: ``(headers, body)``); its answer as v2's two fields."""
    headers = None
    if isinstance(body, tuple):
        headers, body = body
    reply = await http_client.fetch(base_url + "/wxpay/notify", method="POST", body=body,
                                    headers=headers, raise_error=False, **kwargs)
    if headers is None:
        assert reply.code == 200, reply.body
        return decode_xml(reply.body)
    if reply.code == 204:  # SPEC §10: v3 success
        return {"return_code": "SUCCESS", "return_msg": "OK"}
    answer = json.loads(reply.body)
    # A temporary failure is a 5xx so WeChat retries; a refusal a 4xx.
    assert reply.code == (500 if "retry" in answer["message"] else 400), reply.code
    return {"return_code": answer["code"], "return_msg": answer["message"]}


def good_notify(order):
    """WeChat's correct notify for ``order``, in the order's generation."""
    if order.api_version == "v3":
        return v3_notify(transaction(order))
    return signed_notify(notify_fields(order), KEY)


# -- WeChat misbehaving on the unified order: never trusted, never PREPAID -------------------


class Upstream(tornado.web.RequestHandler):
    def check_xsrf_cookie(self):
        pass  # a stand-in for WeChat's servers, posted to by our pay client


class Answer503(Upstream):
    def post(self):
        self.set_status(503)
        self.finish("<html><body>503 Service Unavailable</body></html>")


class AnswerForged(Upstream):
    """A man in the middle: a well-formed SUCCESS reply with a prepay_id, signed with a guess."""

    def post(self):
        from tornpay.protocol.sign import sign_params
        from tornpay.protocol.xmlcodec import encode_xml

        fields = sign_params({"return_code": "SUCCESS", "result_code": "SUCCESS",
                              "appid": "wxd930ea5d5a258f4f", "mch_id": "10000100",
                              "nonce_str": "abc", "trade_type": "JSAPI",
                              "prepay_id": "wx_forged_prepay"}, "f" * 32)
        self.finish(encode_xml(fields))


class AnswerForgedV3(Upstream):
    """The v3 man in the middle: a 200 JSON prepay_id, signed with a key WeChat never had."""

    def post(self, *args):
        import json

        from cryptography.hazmat.primitives.asymmetric import rsa

        from tornpay.protocol.v3.signing import reply_message, rsa_sign
        from tornpay.simulator.v3.keys import TEST_PUB_KEY_ID

        body = json.dumps({"prepay_id": "wx_forged_prepay"}).encode()
        stamp, nonce = str(int(time.time())), "forgedNonce0123456789"
        guess = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.set_header("Content-Type", "application/json")
        self.set_header("Wechatpay-Timestamp", stamp)
        self.set_header("Wechatpay-Nonce", nonce)
        self.set_header("Wechatpay-Serial", TEST_PUB_KEY_ID)
        self.set_header("Wechatpay-Signature", rsa_sign(guess, reply_message(stamp, nonce, body)))
        self.finish(body)


# fault -> (simulator switch, or a stand-in handler per generation; what last_error records).
# Every fault has a v3 equivalent; only the record of a non-JSON/XML error page differs
# (v2: a 200 that is not XML; the v3 simulator answers it with an HTTP 502).
UPSTREAM_FAULTS = {
    "timeout": ("latency", "TransportError"),
    "systemerror": ("systemerror", "SYSTEMERROR"),
    "non_xml_reply": ("reply_non_xml", {"v2": "ProtocolError", "v3": "TransportError"}),
    "unsigned_reply": ("reply_unsigned", "ResponseSignatureError"),
    "wrongly_signed_reply": ("reply_bad_sign", "ResponseSignatureError"),
    "http_503": ({"v2": Answer503, "v3": Answer503}, "TransportError"),
    "forged_success_reply": ({"v2": AnswerForged, "v3": AnswerForgedV3},
                             "ResponseSignatureError"),
}
# Where each generation's client posts a JSAPI unified order, under its base URL.
PREPAY_PATHS = {"v2": "/pay/unifiedorder", "v3": "/v3/pay/transactions/jsapi"}


def point_client_at(app, ctx, base_url, api_version, handler):
    """Send this generation's unified order to ``handler`` instead of the simulator."""
    app.add_handlers(r".*$", [("/broken" + PREPAY_PATHS[api_version], handler)])
    client = ctx.pay_client if api_version == "v2" else ctx.gateways.get("v3").client
    client.base_url = base_url + "/broken"


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("api_version", ["v2", "v3"])
@pytest.mark.parametrize("fault", list(UPSTREAM_FAULTS))
async def test_unified_order_fault_shows_error_page_and_keeps_last_error(
        app, ctx, browser, base_url, fault, api_version):
    switch, recorded = UPSTREAM_FAULTS[fault]
    if isinstance(recorded, dict):
        recorded = recorded[api_version]
    if isinstance(switch, str):
        ctx.simulator.faults.set(switch, endpoint="unifiedorder", seconds=2.0)
    else:
        point_client_at(app, ctx, base_url, api_version, switch[api_version])
    reply = await browser.get("/wxpay/checkout/coach-205", request_timeout=20)
    assert reply.code == 502, reply.code
    body = reply.body.decode()
    assert 'id="tornpay-error"' in body and "WeChat Pay" in body
    assert "Traceback" not in body and "prepay" not in body
    order = Order.get()
    assert order.state == "CREATED" and order.prepay_id is None
    assert order.api_version == api_version
    assert recorded in order.last_error
    assert Event.select().count() == 0
    page = await browser.get(f"/wxpay/pay/{order.out_trade_no}")
    assert page.code == 409 and b"tornpay-jsapi" not in page.body


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("api_version", ["v2", "v3"])
async def test_wechat_recovering_after_two_systemerrors_still_gives_one_order(ctx, browser,
                                                                             api_version):
    ctx.simulator.faults.set("systemerror", count=2, endpoint="unifiedorder")
    reply = await browser.get("/wxpay/checkout/coach-205")
    assert reply.code == 303
    assert [(o.state, o.api_version) for o in Order.select()] == [("PREPAID", api_version)]


# -- the database locked or gone ---------------------------------------------------------


def database_path(tp_settings):
    return tp_settings.database.url[len("sqlite:///"):]


@pytest.mark.skipif(os.environ.get("TORNPAY_TEST_DB") == "postgres",
                    reason="holds SQLite's file write lock; PostgreSQL has no such lock")
@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("api_version", ["v2", "v3"])
async def test_database_locked_notify_answers_fail_then_retry_pays(
        ctx, http_client, base_url, order, tp_settings):
    ctx.db.execute_sql("PRAGMA busy_timeout = 50")  # fail fast instead of blocking the loop
    body = good_notify(order)
    before = order_snapshot(order.out_trade_no)
    blocker = sqlite3.connect(database_path(tp_settings), timeout=0.1, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
    try:
        for _ in range(3):  # WeChat retries while the lock lasts
            reply = await notify(http_client, base_url, body)
            assert reply == {"return_code": "FAIL", "return_msg": "temporary failure, retry"}
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert order_snapshot(order.out_trade_no) == before
    assert Event.select().count() == 0 and Delivery.select().count() == 0
    assert Notification.select().count() == 0  # nothing half-written, not even the audit row
    reply = await notify(http_client, base_url, body)  # the retry after the lock is gone
    assert reply["return_code"] == "SUCCESS"
    assert order_row(order.out_trade_no).state == "PAID"
    assert Event.select().where(Event.hook == "on_paid").count() == 1


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("api_version", ["v2", "v3"])
async def test_database_gone_for_a_while_notify_fails_health_503_then_retry_pays(
        ctx, http_client, base_url, order, monkeypatch):
    body = good_notify(order)
    before = order_snapshot(order.out_trade_no)
    real = ctx.db.execute_sql

    def gone(*args, **kwargs):
        raise peewee.OperationalError("unable to open database file")

    monkeypatch.setattr(ctx.db, "execute_sql", gone)
    for _ in range(2):
        reply = await notify(http_client, base_url, body)
        assert reply["return_code"] == "FAIL" and "retry" in reply["return_msg"]
    health = await http_client.fetch(base_url + "/healthz", raise_error=False)
    assert health.code == 503
    monkeypatch.setattr(ctx.db, "execute_sql", real)  # the database is back
    assert order_snapshot(order.out_trade_no) == before
    assert Event.select().count() == 0
    reply = await notify(http_client, base_url, body)
    assert reply["return_code"] == "SUCCESS"
    assert order_row(order.out_trade_no).state == "PAID"
    assert (await http_client.fetch(base_url + "/healthz")).code == 200


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("api_version", ["v2", "v3"])
async def test_database_failing_mid_transaction_leaves_nothing_half_written(
        ctx, http_client, base_url, order, monkeypatch):
    # The order row update succeeds, then the outbox insert fails: all rolled back.
    from tornpay.orders import transitions

    def fail(*args, **kwargs):
        raise peewee.OperationalError("disk I/O error")

    monkeypatch.setattr(transitions, "write_event", fail)
    before = order_snapshot(order.out_trade_no)
    body = good_notify(order)
    assert (await notify(http_client, base_url, body))["return_code"] == "FAIL"
    assert order_snapshot(order.out_trade_no) == before
    assert Event.select().count() == 0 and Notification.select().count() == 0
    monkeypatch.undo()
    assert (await notify(http_client, base_url, body))["return_code"] == "SUCCESS"
    assert order_row(order.out_trade_no).state == "PAID"


# -- plugins raising, hanging, blocking ------------------------------------------------------


class Raising:
    def on_paid(self, order):
        raise RuntimeError("fulfilment system down")


class Hanging:
    async def on_paid(self, order):
        await asyncio.sleep(3600)


class Blocking:
    def __init__(self):
        self.release = threading.Event()
        self.entered = threading.Event()

    def on_paid(self, order):
        self.entered.set()
        self.release.wait(20)  # a synchronous call that never returns in time


RECORDER = RecordingPlugin()
BLOCKING = Blocking()


@pytest.fixture
def bad_plugins(plugins):
    RECORDER.calls.clear()
    BLOCKING.release.clear()
    BLOCKING.entered.clear()
    yield
    BLOCKING.release.set()


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("plugins", [[Raising(), Hanging(), BLOCKING, RECORDER]])
async def test_raising_hanging_blocking_plugins_neither_delay_the_reply_nor_block_others(
        bad_plugins, ctx, http_client, base_url, order):
    body = good_notify(order)
    started = time.monotonic()
    reply = await notify(http_client, base_url, body)
    assert reply["return_code"] == "SUCCESS"
    assert time.monotonic() - started < 1.0  # WeChat wants an answer within 5 s
    await wait_for(lambda: len(RECORDER.hooks_called("on_paid")) == 1, timeout=5)
    assert RECORDER.hooks_called("on_paid")[0]["order"].out_trade_no == order.out_trade_no
    assert await asyncio.get_running_loop().run_in_executor(None, BLOCKING.entered.wait, 5)
    # The IOLoop is free while a plugin thread blocks.
    quick = time.monotonic()
    assert (await http_client.fetch(base_url + "/healthz")).code == 200
    assert time.monotonic() - quick < 0.5
    # A duplicate notify meanwhile is still answered at once and changes nothing.
    assert (await notify(http_client, base_url, body))["return_code"] == "SUCCESS"

    def failed_attempts():
        rows = {d.plugin: d for d in Delivery.select()}
        return all(rows[name].attempts >= 1 and rows[name].last_error
                   for name in rows if name in ("Raising", "Hanging"))

    await wait_for(failed_attempts, timeout=10)
    deliveries = {d.plugin: d.state for d in Delivery.select()}
    assert deliveries["RecordingPlugin"] == "done"
    assert deliveries["Raising"] != "done" and deliveries["Hanging"] != "done"
    assert len(RECORDER.hooks_called("on_paid")) == 1  # a returned delivery is never repeated


# -- the notify racing the unified order, or never coming -------------------------------------


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("api_version", ["v2", "v3"])
async def test_notify_before_unified_order_reply_pays_once(ctx, browser, api_version):
    ctx.simulator.faults.set("notify_before_reply", count=1, endpoint="unifiedorder")
    reply = await browser.get("/wxpay/checkout/coach-205")
    assert reply.code == 303, reply.body
    no = out_trade_no_of(location(reply))
    await wait_for(lambda: order_row(no).state == "PAID")
    assert Event.select().where(Event.hook == "on_paid").count() == 1
    assert Notification.get(Notification.out_trade_no == no).outcome == "accepted"
    page = await browser.get(location(reply))  # the pay page of a paid order: to the result
    assert page.code == 302 and location(page).endswith(f"/orders/{no}/result")


def wechat_pays_with(ctx, order, fault):
    """The payer pays ``order`` at WeChat, whose notifies then show the simulator's ``fault``."""
    ctx.simulator.faults.set(fault)
    ctx.simulator.pay(ctx.simulator.find_order(order.out_trade_no))


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("tp_overrides", [{"orders": {"reconcile_after_seconds": 0.3,
                                                      "reconcile_interval_seconds": 0.1}}])
@pytest.mark.parametrize("api_version", ["v2", "v3"])
async def test_dropped_notify_order_is_paid_by_the_reconciler(ctx, http_client, order):
    wechat_pays_with(ctx, order, "notify_drop")
    assert Notification.select().count() == 0
    await wait_for(lambda: order_row(order.out_trade_no).state == "PAID", timeout=10)
    row = order_row(order.out_trade_no)
    assert row.transaction_id and row.total_fee == 9900
    assert Notification.select().count() == 0  # paid by orderquery, not a notify
    assert Event.select().where(Event.hook == "on_paid").count() == 1


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("api_version", ["v2", "v3"])
async def test_duplicated_concurrent_notifies_from_the_simulator_pay_once(ctx, order):
    wechat_pays_with(ctx, order, "notify_duplicate")
    await wait_for(lambda: Notification.select().count() >= 2)
    assert order_row(order.out_trade_no).state == "PAID"
    outcomes = sorted(n.outcome for n in Notification.select())
    assert outcomes == ["accepted", "duplicate"]
    assert Event.select().where(Event.hook == "on_paid").count() == 1


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("api_version", ["v2", "v3"])
async def test_wrong_amount_notify_from_wechat_is_refused_and_retried_not_paid(ctx, order):
    wechat_pays_with(ctx, order, "notify_wrong_total_fee")
    await wait_for(lambda: Notification.select().count() >= 2)  # refused, so WeChat retries
    assert order_row(order.out_trade_no).state == "PREPAID"
    assert {n.reason.split(" ")[0] for n in Notification.select()} == {"total_fee"}


# -- SIGTERM during a burst (a real server process) --------------------------------------


BURST = 120


@pytest.mark.slow
def test_sigterm_during_a_notify_burst_finishes_in_flight_and_loses_nothing(tmp_path):
    port = cli_helpers.free_port()
    base = f"http://127.0.0.1:{port}"
    cli_helpers.write_settings(tmp_path, port)
    proc = cli_helpers.start(tmp_path, [cli_helpers.sys.executable,
                                        os.path.join(cli_helpers.ROOT, "server.py"),
                                        "--settings", str(tmp_path / "settings.yaml")],
                             base + "/healthz")
    try:
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            numbers = list(pool.map(lambda _: cli_helpers.new_order(base), range(BURST)))
        bodies = [signed_notify(notify_fields(types_order(no), transaction_id=f"42{i:030d}"), KEY)
                  for i, no in enumerate(numbers)]

        def send(body):
            try:
                status, _, reply = cli_helpers.request("POST", base + "/wxpay/notify", body)
            except OSError:
                return None, None  # refused once the server stopped accepting: WeChat retries
            assert status == 200, reply
            return decode_xml(reply)["return_code"], time.monotonic()

        with concurrent.futures.ThreadPoolExecutor(20) as pool:
            futures = [pool.submit(send, body) for body in bodies]
            # The burst is under way once the first answer is back (not after a
            # fixed sleep, which a loaded machine can outrun or fall behind).
            concurrent.futures.wait(futures, timeout=30,
                                    return_when=concurrent.futures.FIRST_COMPLETED)
            signalled = time.monotonic()
            proc.send_signal(cli_helpers.signal.SIGTERM)
            answers = [f.result(timeout=30) for f in futures]
        # One SIGTERM only: a second one, landing after the loop closed while the
        # process exits, would meet the default action (-15) and test nothing.
        _, err = proc.communicate(timeout=15)
        code = proc.returncode
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert code == 0, err
    results = [r for r, _ in answers]
    accepted = [no for no, r in zip(numbers, results) if r == "SUCCESS"]
    assert accepted, "SIGTERM came before any notify was answered"
    assert all(r in ("SUCCESS", None) for r in results), results
    # Requests already in flight when the signal came were answered, not cut off.
    assert any(at is not None and at > signalled for _, at in answers)
    for no in accepted:
        assert cli_helpers.order_state(tmp_path, no)[0] == "PAID", no
    paid = cli_helpers.db_row(tmp_path, "SELECT COUNT(*) FROM tornpay_order WHERE state='PAID'")
    assert paid[0] >= len(accepted)


def types_order(out_trade_no):
    """Enough of an order for notify_fields: the burst test's orders are coach-205 by Alice."""
    import types

    return types.SimpleNamespace(out_trade_no=out_trade_no, openid=ALICE, total_fee=9900)
