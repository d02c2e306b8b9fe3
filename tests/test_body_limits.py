"""Issue 14.5: bodies above server.max_body_bytes are refused from the headers, never buffered."""

import asyncio

import pytest
from tornado.iostream import StreamClosedError
from tornado.tcpclient import TCPClient

from flow_helpers import ALICE, Browser, location, out_trade_no_of
from tornpay.handlers import health, orders, refunds

TEN_MIB = 10 * 1024 * 1024


@pytest.fixture
def handler_calls(monkeypatch):
    """Every handler method that would act on a request body, counted."""
    calls = []

    def counting(cls, name):
        real = getattr(cls, name)

        def wrapper(self, *args, **kwargs):
            calls.append(cls.__name__)
            return real(self, *args, **kwargs)
        monkeypatch.setattr(cls, name, wrapper)

    counting(health.HealthHandler, "get")
    counting(orders.OrderCancelHandler, "post")
    async def refund_notify(*args, **kwargs):
        calls.append("handle_refund_notify")
        return True, "OK"
    monkeypatch.setattr(refunds, "handle_refund_notify", refund_notify)
    return calls


async def _exchange(port: int, head: bytes, body: bytes = b"", wait: float = 5.0) -> bytes:
    """Send ``head`` and ``body``; return all the server says before it closes (or ``wait``)."""
    stream = await TCPClient().connect("127.0.0.1", port)
    try:
        await stream.write(head + body)
        return await asyncio.wait_for(stream.read_until_close(), wait)
    except asyncio.TimeoutError:
        return b"<still open>"
    finally:
        stream.close()


def _head(method: str, path: str, length: int, extra: str = "") -> bytes:
    return (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {length}\r\n"
            f"Content-Type: text/xml\r\n{extra}\r\n").encode()


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("method, path", [
    ("POST", "/wxpay/refund-notify"),
    ("GET", "/healthz"),
    ("POST", "/wxpay/orders/TP20240101000000abcdefABCDEF12/cancel"),
])
async def test_declared_oversized_body_is_refused_unread(http_server, http_port, handler_calls,
                                                        method, path):
    # 10 MiB announced, 1 KiB sent: the answer must come without the rest.
    answer = await _exchange(http_port, _head(method, path, TEN_MIB), b"x" * 1024)
    assert answer != b"<still open>", "the server waited for a 10 MiB body"
    status = answer.split(b"\r\n", 1)[0]
    if path.endswith("refund-notify"):  # the notify endpoints answer WeChat in XML
        assert b"200" in status and b"body too large" in answer
    else:
        assert b"400" in status or b"413" in status, answer[:200]
    assert handler_calls == []


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("path", ["/healthz", "/wxpay/refund-notify"])
async def test_chunked_body_over_the_limit_is_cut_off(http_server, http_port, handler_calls, path):
    stream = await TCPClient().connect("127.0.0.1", http_port)
    sent = 0
    try:
        await stream.write(f"POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                           "Transfer-Encoding: chunked\r\n\r\n".encode())
        chunk = b"%x\r\n%s\r\n" % (8192, b"y" * 8192)
        for _ in range(256):  # 2 MiB in all, if nobody stops us
            await stream.write(chunk)
            sent += 8192
            await asyncio.sleep(0)
        await stream.write(b"0\r\n\r\n")
        answer = await asyncio.wait_for(stream.read_until_close(), 10)
    except (StreamClosedError, ConnectionError):
        answer = b"<cut off>"
    finally:
        stream.close()
    status = answer.split(b"\r\n", 1)[0]
    # The connection was dropped mid-body, or refused (400, or for the notify
    # endpoint an XML FAIL) without the handler ever getting the body.
    assert answer == b"<cut off>" or b"400" in status or b"body too large" in answer, answer[:300]
    assert "handle_refund_notify" not in handler_calls
    assert "HealthHandler" not in handler_calls


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("tp_overrides", [{"server": {"body_timeout_seconds": 0.5}}])
async def test_body_that_stalls_is_dropped_after_body_timeout(tp_overrides, http_server,
                                                              http_port, handler_calls):
    answer = await _exchange(http_port, _head("POST", "/wxpay/refund-notify", 500), b"<xml>",
                             wait=10)
    assert answer != b"<still open>"
    assert handler_calls == []


@pytest.mark.gen_test
async def test_small_bodies_still_work(http_client, base_url, tp_settings):
    browser = Browser(http_client, base_url)
    browser.set_openid(tp_settings, ALICE)
    start = await browser.get("/wxpay/checkout/coach-101")
    number = out_trade_no_of(location(start))
    page = await browser.get(f"/wxpay/pay/{number}")
    token = browser.cookies["_xsrf"]
    cancel = await browser.fetch(f"/wxpay/orders/{number}/cancel", method="POST",
                                 body=f"_xsrf={token}")
    assert cancel.code == 303, (page.code, cancel.body)


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("tp_overrides", [{"server": {"body_timeout_seconds": 0.3}}])
async def test_a_body_in_time_leaves_the_kept_alive_connection_open(tp_overrides, http_server,
                                                                    http_port):
    # The body's deadline ends with the body: a connection that idles past it
    # afterwards still answers its next request.
    stream = await TCPClient().connect("127.0.0.1", http_port)
    try:
        for _ in range(2):
            await stream.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            head = await asyncio.wait_for(stream.read_until(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 200"), head
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            await stream.read_bytes(length)
            await asyncio.sleep(0.6)  # twice the body timeout
        assert not stream.closed()
    finally:
        stream.close()
