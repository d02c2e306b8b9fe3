"""Bounded loopback load: 1,000 notifies for 500 orders on 50 connections pay each exactly once."""

import asyncio
import datetime
import random

import pytest
from tornado.httpclient import AsyncHTTPClient

from flow_helpers import notify_fields, signed_notify, wait_for
from helpers_orders import RecordingPlugin
from tornpay.protocol.xmlcodec import decode_xml
from tornpay.storage.db import database_proxy as db
from tornpay.storage.models import Delivery, Event, Notification, Order, utcnow

KEY = "192006250b4c09247ec02edce69f6a2d"
ORDERS = 500
CONNECTIONS = 50
CONCURRENT_PAIRS = ORDERS // 5  # orders whose two notifies race each other
RECORDER = RecordingPlugin()


@pytest.fixture
def app(tp_settings, io_loop):
    from tornpay.app import make_app

    RECORDER.calls.clear()
    application = make_app(tp_settings, plugins=[RECORDER])
    yield application
    io_loop.run_sync(application.settings["tornpay"].stop)


def make_orders(n):
    now = utcnow()
    rows = [dict(out_trade_no=f"TPLOAD{i:08d}", product_id="coach-205", openid="o-load",
                 body="Group clinic", total_fee=9900, sign_type="MD5", state="PREPAID",
                 prepay_id=f"wx_load_{i}", created_at=now, updated_at=now,
                 expire_at=now + datetime.timedelta(minutes=30)) for i in range(n)]
    with db.atomic():
        for start in range(0, n, 100):
            Order.insert_many(rows[start:start + 100]).execute()
    return Order.select().order_by(Order.out_trade_no)


@pytest.mark.gen_test(timeout=120)
async def test_thousand_notifies_for_500_orders_pay_each_exactly_once(ctx, http_server,
                                                                     base_url):
    orders = list(make_orders(ORDERS))
    bodies = [signed_notify(notify_fields(o, transaction_id=f"42{i:030d}"), KEY)
              for i, o in enumerate(orders)]
    rng = random.Random(20240601)
    racing = set(rng.sample(range(ORDERS), CONCURRENT_PAIRS))
    # Every order twice: racing pairs go out together, the rest as a later duplicate.
    jobs = [[i, i] if i in racing else [i] for i in range(ORDERS)]
    rng.shuffle(jobs)
    later = [i for i in range(ORDERS) if i not in racing]
    rng.shuffle(later)
    client = AsyncHTTPClient(force_instance=True, max_clients=CONNECTIONS)
    codes, replies = [], []

    async def send(i):
        reply = await client.fetch(base_url + "/wxpay/notify", method="POST", body=bodies[i],
                                   raise_error=False, request_timeout=60,
                                   connect_timeout=120)
        codes.append(reply.code)
        replies.append(decode_xml(reply.body)["return_code"] if reply.code == 200 else None)

    try:
        await asyncio.gather(*(send(i) for job in jobs for i in job))
        await asyncio.gather(*(send(i) for i in later))
    finally:
        client.close()

    assert len(codes) == 2 * ORDERS
    assert not [c for c in codes if c >= 500], sorted(set(codes))
    assert set(codes) == {200} and set(replies) == {"SUCCESS"}
    assert Order.select().where(Order.state == "PAID").count() == ORDERS
    assert Event.select().where(Event.hook == "on_paid").count() == ORDERS
    outcomes = [n.outcome for n in Notification.select()]
    assert outcomes.count("accepted") == ORDERS and outcomes.count("duplicate") == ORDERS
    await wait_for(lambda: len(RECORDER.hooks_called("on_paid")) >= ORDERS, timeout=60)
    await asyncio.sleep(0.3)  # a stray second delivery would show up by now
    delivered = [kw["order"].out_trade_no for kw in RECORDER.hooks_called("on_paid")]
    assert len(delivered) == ORDERS and len(set(delivered)) == ORDERS
    done = Delivery.select().where(Delivery.plugin == "RecordingPlugin", Delivery.state == "done")
    assert done.count() == ORDERS
