"""The standalone server's direct /notify path answers byte for byte as PayNotifyHandler does."""

import asyncio
import logging
import re

import pytest
from tornado.tcpclient import TCPClient

from flow_helpers import notify_fields, signed_notify, wait_for
from helpers_orders import make_order
from tornpay.handlers import notify as notify_handler
from tornpay.handlers import notify_direct
from tornpay.handlers.notify_direct import DirectNotifyMatches
from tornpay.storage.models import Order

KEY = "192006250b4c09247ec02edce69f6a2d"


def _paid_body(number: str, **extra) -> bytes:
    order = Order.get_by_id(number)
    return signed_notify(notify_fields(order, transaction_id="42" + number.rjust(26, "0"),
                                       **extra), KEY)


def _chunked(body: bytes) -> bytes:
    half = len(body) // 2
    parts = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:half], body[half:]))
    return parts + b"0\r\n\r\n"


# name -> (extra request headers, body builder(number)); each case pays its own order.
CASES = {
    "paid": ("", lambda n: _paid_body(n)),
    "bad_signature": ("", lambda n: _paid_body(n).replace(b"<total_fee>", b"<total_fee>1")),
    "not_xml": ("", lambda n: b"hello"),
    "empty": ("", lambda n: b""),
    "over_64_kib": ("", lambda n: b"<xml>" + b"x" * (70 * 1024) + b"</xml>"),
    "v3_json": ("Wechatpay-Serial: X\r\n", lambda n: b'{"id": "EV-1"}'),
    "chunked": ("Transfer-Encoding: chunked\r\n", lambda n: _paid_body(n)),
}


async def _raw_post(port: int, extra: str, body: bytes, chunked: bool = False) -> bytes:
    """One POST /wxpay/notify on its own connection; everything the server sent back."""
    length = "" if chunked else f"Content-Length: {len(body)}\r\n"
    head = (f"POST /wxpay/notify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/xml\r\n"
            f"Connection: close\r\n{length}{extra}\r\n").encode()
    stream = await TCPClient().connect("127.0.0.1", port)
    try:
        await stream.write(head + (_chunked(body) if chunked else body))
        return await asyncio.wait_for(stream.read_until_close(), 20)
    finally:
        stream.close()


def _normalised(reply: bytes):
    """(status line, headers without Date, body): what must not differ between the paths."""
    head, _, body = reply.partition(b"\r\n\r\n")
    status, *lines = head.decode().split("\r\n")
    headers = sorted(line.lower() for line in lines if not line.lower().startswith("date:"))
    return status, headers, body


def _access_lines(caplog):
    return [(r.levelname, re.sub(r"\d+\.\d+ms", "ms", r.getMessage()))
            for r in caplog.records if r.name == "tornado.access"]


async def _answer(port, case, number, caplog):
    caplog.clear()
    extra, build = CASES[case]
    reply = await _raw_post(port, extra, build(number), chunked=case == "chunked")
    return _normalised(reply), _access_lines(caplog)


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("case", sorted(CASES))
async def test_the_direct_path_answers_as_the_handler(app, ctx, http_server, http_port,
                                                      monkeypatch, caplog, case):
    caplog.set_level(logging.INFO)
    for number in ("DIRECT1", "HANDLER1"):
        make_order(number, total_fee=100)
    handled = []
    real_post = notify_handler.PayNotifyHandler.post

    async def counted(self):
        handled.append(self.request.path)
        return await real_post(self)

    monkeypatch.setattr(notify_handler.PayNotifyHandler, "post", counted)
    counted_as = []  # what /metrics was told, per answer
    monkeypatch.setattr(ctx.metrics, "notify", lambda outcome, kind: counted_as.append(
        (outcome, kind)))
    direct = await _answer(http_port, case, "DIRECT1", caplog)
    assert handled == []  # the direct path answered, the handler never ran
    monkeypatch.setattr(DirectNotifyMatches, "match", lambda self, request: None)
    through_handler = await _answer(http_port, case, "HANDLER1", caplog)
    assert handled == ["/wxpay/notify"]
    assert direct == through_handler
    assert len(counted_as) == 2 and counted_as[0] == counted_as[1]
    paid = {n: Order.get_by_id(n).state for n in ("DIRECT1", "HANDLER1")}
    assert paid["DIRECT1"] == paid["HANDLER1"]
    assert (paid["DIRECT1"] == "PAID") == (case in ("paid", "chunked"))
    assert app.in_flight == 0


@pytest.mark.gen_test(timeout=60)
async def test_a_repeat_and_an_internal_error_answer_as_the_handler(app, http_server, http_port,
                                                                    monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    make_order("REPEAT1", total_fee=100)
    body = _paid_body("REPEAT1")
    await _raw_post(http_port, "", body)
    answers = []
    for _ in range(2):
        caplog.clear()
        answers.append((_normalised(await _raw_post(http_port, "", body)), _access_lines(caplog)))
        monkeypatch.setattr(DirectNotifyMatches, "match", lambda self, request: None)
    assert answers[0] == answers[1] and b"SUCCESS" in answers[0][0][2]
    assert answers[0][1] == [("INFO", "200 POST /wxpay/notify (127.0.0.1) ms")]

    async def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.undo()  # the direct path again; the pipeline raises on both paths
    monkeypatch.setattr(notify_handler, "handle_pay_notify", broken)
    monkeypatch.setattr(notify_direct, "handle_pay_notify", broken)
    failures = [_normalised(await _raw_post(http_port, "", body))]
    monkeypatch.setattr(DirectNotifyMatches, "match", lambda self, request: None)
    failures.append(_normalised(await _raw_post(http_port, "", body)))
    assert failures[0] == failures[1]
    assert failures[0][0] == "HTTP/1.1 500 Internal Server Error"
    assert b"internal error, retry" in failures[0][2]
    assert app.in_flight == 0


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("path", ["/wxpay/notify", "/wxpay/refund-notify",
                                  "/wxpay/orders/TP20240101000000abcdefABCDEF12/cancel"])
async def test_a_client_gone_mid_body_leaves_nothing_in_flight(app, http_server, http_port,
                                                               path):
    # The direct path, a streamed handler and a plain one: a graceful stop
    # waits for the count, so a request nobody will answer must leave it.
    stream = await TCPClient().connect("127.0.0.1", http_port)
    await stream.write(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n<xml>"
                       % path.encode())
    await wait_for(lambda: app.in_flight == 1, timeout=10)
    stream.close()
    await wait_for(lambda: app.in_flight == 0, timeout=10)


@pytest.mark.gen_test(timeout=30)
async def test_a_get_and_a_huge_body_still_reach_the_handler(app, http_server, http_port):
    stream = await TCPClient().connect("127.0.0.1", http_port)
    try:
        await stream.write(b"GET /wxpay/notify HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        reply = await asyncio.wait_for(stream.read_until_close(), 10)
    finally:
        stream.close()
    assert reply.startswith(b"HTTP/1.1 200") and b"request refused" in reply  # the handler's 405
    huge = (b"POST /wxpay/notify HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Content-Length: %d\r\n\r\n" % (2 * 1024 * 1024))
    stream = await TCPClient().connect("127.0.0.1", http_port)
    try:
        await stream.write(huge)
        reply = await asyncio.wait_for(stream.read_until_close(), 10)
    finally:
        stream.close()
    assert b"body too large" in reply
