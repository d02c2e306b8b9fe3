"""Issue 14.7: junk notifies leave bounded rows and log lines; valid ones still pay meanwhile."""

import asyncio
import logging
import types

import pytest

from tests.flow_helpers import ALICE, Browser, location, notify_fields, order_row, \
    out_trade_no_of, signed_notify
from tornpay.protocol.xmlcodec import decode_xml
from tornpay.storage.models import Notification

KEY = "192006250b4c09247ec02edce69f6a2d"
KEEP = 40


FLOOD_SETTINGS = {"orders": {"refused_notify_rows": KEEP, "refused_notify_window_seconds": 60,
                              "max_open_per_payer": 0, "max_open_per_ip": 0},
                   "catalog": {"products": {f"p{i}": {"body": f"Product {i}", "total_fee": 100 + i}
                                            for i in range(8)}}}


async def _post(http_client, base_url, body, ip="10.0.0.1"):
    reply = await http_client.fetch(base_url + "/wxpay/notify", method="POST", body=body,
                                    headers={"Content-Type": "text/xml", "X-Real-IP": ip},
                                    raise_error=False)
    return decode_xml(reply.body)["return_code"]


def _junk(i: int) -> bytes:
    kinds = [b"not xml at all %d" % i,
             b"<xml><return_code>SUCCESS</return_code><out_trade_no>TPnope%024d</out_trade_no>"
             b"</xml>" % i,
             b"<xml><return_code>FAIL</return_code><return_msg>junk %d</return_msg></xml>" % i]
    return kinds[i % len(kinds)]


def _refused_rows() -> int:
    return Notification.select().where(Notification.outcome == "refused").count()


@pytest.mark.gen_test(timeout=60)
async def test_junk_from_one_sender_is_logged_and_stored_once_per_kind(http_client, base_url,
                                                                        caplog):
    with caplog.at_level(logging.WARNING):
        for i in range(300):
            assert await _post(http_client, base_url, _junk(i)) == "FAIL"
    warnings = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(warnings) <= 3  # one per kind of refusal, not 300
    assert _refused_rows() <= 3
    # Each one is still counted where operators look.
    metrics = (await http_client.fetch(base_url + "/metrics")).body.decode()
    assert 'tornpay_notifies_total{kind="pay",outcome="refused"} 300.0' in metrics


@pytest.mark.gen_test(timeout=120)
@pytest.mark.parametrize("tp_overrides", [FLOOD_SETTINGS])
async def test_valid_notifies_during_a_junk_flood_all_pay_and_the_table_stays_bounded(
        tp_overrides, http_client, base_url, tp_settings):
    browser = Browser(http_client, base_url)
    browser.set_openid(tp_settings, ALICE)
    orders = []
    for i in range(8):
        reply = await browser.get(f"/wxpay/checkout/p{i}")
        orders.append(order_row(out_trade_no_of(location(reply))))

    async def junk_sender(n: int):
        # Many senders, so that throttling alone cannot keep the table small.
        for i in range(60):
            await _post(http_client, base_url, _junk(i), ip=f"10.{n}.{i}.1")

    async def valid(order, i):
        await asyncio.sleep(0.01 * i)
        body = signed_notify(notify_fields(order, transaction_id=f"42000{i:023d}"), KEY)
        return await _post(http_client, base_url, body, ip="101.226.103.1")

    results = await asyncio.gather(*[junk_sender(n) for n in range(6)],
                                   *[valid(order, i) for i, order in enumerate(orders)])
    assert results[6:] == ["SUCCESS"] * len(orders)
    assert all(order_row(o.out_trade_no).state == "PAID" for o in orders)
    assert 6 * 60 > KEEP  # the flood alone would overflow the bound ...
    assert _refused_rows() <= KEEP  # ... which holds
    accepted = Notification.select().where(Notification.outcome == "accepted").count()
    assert accepted == len(orders)  # pruning never touches the valid ones


def test_counts_of_a_finished_window_are_written():
    from tornpay.orders.refusals import RefusalLog

    stored = []
    log = RefusalLog(types.SimpleNamespace(orders=types.SimpleNamespace(
        refused_notify_rows=KEEP, refused_notify_window_seconds=60.0)))
    now = [0.0]
    log.throttle.clock = lambda: now[0]
    record = lambda *row: stored.append(row)  # noqa: E731
    for _ in range(5):
        log.refused("pay", "10.0.0.9", "invalid XML", "unacceptable XML: junk", claimed=None,
                    verified=None, record=record)
    assert len(stored) == 1
    now[0] = 61.0
    log.flush(record)
    assert len(stored) == 2 and stored[1][3].startswith("4 more refused")


def test_many_senders_share_one_budget_of_lines():
    from tornpay.orders import refusals

    stored = []
    log = refusals.RefusalLog(types.SimpleNamespace(orders=types.SimpleNamespace(
        refused_notify_rows=10_000, refused_notify_window_seconds=60.0)))
    now = [0.0]
    log.throttle.clock = lambda: now[0]
    log._window_started = 0.0
    record = lambda *row: stored.append(row)  # noqa: E731
    for i in range(1000):  # a thousand addresses, one junk notify each
        log.refused("pay", f"10.0.{i // 250}.{i % 250}", "invalid XML", "junk", claimed=None,
                    verified=None, record=record)
    assert len(stored) == refusals.MAX_LINES_PER_WINDOW
    now[0] = 61.0
    log.flush(record)
    assert stored[-1][3] == "900 more refused, from many senders"
