"""POST /notify (SPEC §5): every check refuses without changing the order; duplicates pay once."""

import asyncio
import logging

import peewee
import pytest
from tornado.httpclient import AsyncHTTPClient

from tests.flow_helpers import (ALICE, Browser, location, notify_fields, order_row,
                                order_snapshot, out_trade_no_of, signed_notify)
from tornpay.orders import transitions
from tornpay.protocol.xmlcodec import decode_xml
from tornpay.storage.models import Event, Notification

KEY = "192006250b4c09247ec02edce69f6a2d"


@pytest.fixture
def order(http_client, tp_settings, io_loop):
    """A PREPAID order made through checkout (openid cookie already held)."""
    async def make():
        browser = Browser(http_client, tp_settings.server.public_url)
        browser.set_openid(tp_settings, ALICE)
        reply = await browser.get("/wxpay/checkout/coach-205")
        assert reply.code == 303, reply.body
        return order_row(out_trade_no_of(location(reply)))

    row = io_loop.run_sync(make)
    assert row.state == "PREPAID"
    return row


@pytest.fixture
def post(http_client, base_url):
    async def send(body, **kwargs):
        reply = await http_client.fetch(base_url + "/wxpay/notify", method="POST", body=body,
                                        headers={"Content-Type": "text/xml"}, raise_error=False,
                                        **kwargs)
        assert reply.code == 200, reply.body
        return decode_xml(reply.body)
    return send


async def refused(post, order, body, expect_msg=None):
    before = order_snapshot(order.out_trade_no)
    reply = await post(body)
    assert reply["return_code"] == "FAIL", reply
    if expect_msg:
        assert expect_msg in reply["return_msg"]
    assert order_snapshot(order.out_trade_no) == before
    assert Event.select().count() == 0
    return reply


@pytest.mark.gen_test
async def test_valid_notify_pays_once_and_records(post, order):
    reply = await post(signed_notify(notify_fields(order), KEY))
    assert reply == {"return_code": "SUCCESS", "return_msg": "OK"}
    row = order_row(order.out_trade_no)
    assert row.state == "PAID" and row.transaction_id == "4200002315202406013425869417"
    assert (row.time_end, row.bank_type, row.cash_fee) == ("20240601123110", "OTHERS", 9900)
    assert row.paid_at is not None
    assert Notification.get().outcome == "accepted"
    assert Event.select().where(Event.hook == "on_paid").count() == 1


@pytest.mark.gen_test
@pytest.mark.parametrize("tp_overrides", [{"wechat": {"sign_type": "HMAC-SHA256"}}])
async def test_hmac_order_notify_without_sign_type_accepted(post, order):
    assert order.sign_type == "HMAC-SHA256"
    fields = notify_fields(order)
    assert "sign_type" not in fields
    reply = await post(signed_notify(fields, KEY, "HMAC-SHA256"))
    assert reply["return_code"] == "SUCCESS"
    assert order_row(order.out_trade_no).state == "PAID"


@pytest.mark.gen_test
@pytest.mark.parametrize("tp_overrides", [{"wechat": {"sign_type": "HMAC-SHA256"}}])
async def test_notify_claiming_another_sign_type_refused(post, order):
    # Correct MD5 signature, but this order was made with HMAC-SHA256.
    md5 = signed_notify(notify_fields(order, sign_type="MD5"), KEY, "MD5")
    await refused(post, order, md5, "signature")
    plain_md5 = signed_notify(notify_fields(order), KEY, "MD5")
    await refused(post, order, plain_md5, "signature")


@pytest.mark.gen_test
async def test_bad_signature_refused(post, order):
    await refused(post, order, signed_notify(notify_fields(order), "x" * 32), "signature")
    tampered = signed_notify(notify_fields(order), KEY).replace(b"OTHERS", b"CMB_DEBIT")
    await refused(post, order, tampered, "signature")
    unsigned = signed_notify(notify_fields(order), KEY).split(b"<sign>")[0] + b"</xml>"
    await refused(post, order, unsigned, "signature")
    assert {n.outcome for n in Notification.select()} == {"refused"}


@pytest.mark.gen_test
async def test_wrong_appid_or_mch_id_refused(post, order):
    await refused(post, order, signed_notify(notify_fields(order, appid="wx0000000000000000"),
                                             KEY), "appid")
    await refused(post, order, signed_notify(notify_fields(order, mch_id="10000999"), KEY),
                  "mch_id")


@pytest.mark.gen_test
async def test_wrong_amount_refused_with_error_alert(post, order, caplog):
    with caplog.at_level(logging.ERROR, logger="tornpay.orders.notify"):
        await refused(post, order, signed_notify(notify_fields(order, total_fee=1), KEY),
                      "total_fee")
    alerts = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert alerts and order.out_trade_no in alerts[0].getMessage()


@pytest.mark.gen_test
async def test_wrong_fee_type_refused(post, order):
    await refused(post, order, signed_notify(notify_fields(order, fee_type="USD"), KEY))


@pytest.mark.gen_test
async def test_unknown_or_malformed_order_refused(post, order):
    for no in ("TPnosuchorder000000000000000", "../../etc", ""):
        fields = notify_fields(order, out_trade_no=no)
        await refused(post, order, signed_notify(fields, KEY))
    # One row per kind of refusal from a sender per window (orders/refusals.py): the
    # second malformed number from 127.0.0.1 is counted, not stored on its own.
    assert Notification.select().where(Notification.outcome == "refused").count() == 2


@pytest.mark.gen_test
async def test_doctype_and_entities_refused(post, order):
    good = signed_notify(notify_fields(order), KEY).decode()
    doctype = '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY x "PAID">]>' + good
    await refused(post, order, doctype.encode(), "invalid XML")
    external = ('<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
                + good.replace("OTHERS", "&xxe;"))
    await refused(post, order, external.encode(), "invalid XML")
    await refused(post, order, b"not xml at all", "invalid XML")


@pytest.mark.gen_test
async def test_oversized_body_refused_whole_and_chunked(post, order):
    good = signed_notify(notify_fields(order), KEY)
    padded = good.replace(b"</xml>", b" " * (64 * 1024) + b"</xml>")
    assert len(padded) > 64 * 1024
    await refused(post, order, padded, "too large")

    async def producer(write):
        for _ in range(70):
            await write(b" " * 1024)
        await write(good)

    before = order_snapshot(order.out_trade_no)
    reply = await post(None, body_producer=producer)
    assert reply["return_code"] == "FAIL" and "too large" in reply["return_msg"]
    assert order_snapshot(order.out_trade_no) == before


@pytest.mark.gen_test
async def test_return_code_fail_refused(post, order):
    fields = {"return_code": "FAIL", "return_msg": "signature error"}
    await refused(post, order, signed_notify(fields, KEY))


@pytest.mark.gen_test
async def test_result_code_fail_acknowledged_not_paid(post, order):
    fields = notify_fields(order, result_code="FAIL", err_code="SYSTEMERROR")
    before = order_snapshot(order.out_trade_no)
    reply = await post(signed_notify(fields, KEY))
    assert reply["return_code"] == "SUCCESS"
    assert order_snapshot(order.out_trade_no) == before
    assert Notification.get().outcome == "ignored"


@pytest.mark.gen_test
async def test_database_error_answers_fail_with_nothing_written(post, order, monkeypatch):

    def locked(*args, **kwargs):
        raise peewee.OperationalError("database is locked")

    monkeypatch.setattr(transitions, "write_event", locked)
    await refused(post, order, signed_notify(notify_fields(order), KEY), "retry")
    assert Notification.select().count() == 0
    monkeypatch.undo()
    reply = await post(signed_notify(notify_fields(order), KEY))  # WeChat's retry
    assert reply["return_code"] == "SUCCESS"
    assert order_row(order.out_trade_no).state == "PAID"


@pytest.mark.gen_test(timeout=30)
async def test_twenty_concurrent_duplicates_pay_once(base_url, order):
    body = signed_notify(notify_fields(order), KEY)
    client = AsyncHTTPClient(force_instance=True, max_clients=40)
    try:
        replies = await asyncio.gather(*(
            client.fetch(base_url + "/wxpay/notify", method="POST", body=body)
            for _ in range(20)))
    finally:
        client.close()
    assert all(decode_xml(r.body)["return_code"] == "SUCCESS" for r in replies)
    assert order_row(order.out_trade_no).state == "PAID"
    assert Event.select().where(Event.hook == "on_paid").count() == 1
    outcomes = [n.outcome for n in Notification.select()]
    assert outcomes.count("accepted") == 1 and outcomes.count("duplicate") == 19


@pytest.mark.gen_test
async def test_get_on_notify_answers_fail_xml(http_client, base_url):
    # Every answer of the notify route is WeChat XML, errors included (no HTML 405 page).
    reply = await http_client.fetch(base_url + "/wxpay/notify", raise_error=False)
    assert decode_xml(reply.body)["return_code"] == "FAIL"


class SlowFulfilment:
    """An on_paid plugin that takes its time; the notify reply must not wait for it."""

    def __init__(self):
        self.started = asyncio.Event()

    async def on_paid(self, order):
        self.started.set()
        await asyncio.sleep(1.0)


@pytest.mark.gen_test(timeout=20)
async def test_reply_does_not_wait_on_plugins(post, order, ctx):
    plugin = SlowFulfilment()
    ctx.hooks.register(plugin, name="slow-fulfilment")
    loop = asyncio.get_running_loop()
    started = loop.time()
    reply = await post(signed_notify(notify_fields(order), KEY))
    elapsed = loop.time() - started
    assert reply["return_code"] == "SUCCESS" and elapsed < 0.5
    await asyncio.wait_for(plugin.started.wait(), 5)  # delivered after the reply


@pytest.mark.gen_test
async def test_metrics_tell_a_payment_from_a_duplicate(post, order, http_client, base_url):
    body = signed_notify(notify_fields(order), KEY)
    assert (await post(body))["return_code"] == "SUCCESS"
    assert (await post(body))["return_code"] == "SUCCESS"
    metrics = (await http_client.fetch(base_url + "/metrics")).body.decode()
    assert 'tornpay_notifies_total{kind="pay",outcome="accepted"} 1.0' in metrics
    assert 'tornpay_notifies_total{kind="pay",outcome="duplicate"} 1.0' in metrics
