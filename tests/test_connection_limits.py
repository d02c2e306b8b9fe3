"""Issue 14.6: half-sent requests time out, connections above the limit are refused at once,
and a flood of accept errors yields a bounded number of log lines."""

import asyncio
import errno
import logging
import socket

import pytest
from tornado.iostream import StreamClosedError
from tornado.tcpclient import TCPClient

import proc_helpers
from tornpay.app import make_app


async def _read_all(stream, wait: float) -> bytes:
    try:
        return await asyncio.wait_for(stream.read_until_close(), wait)
    except asyncio.TimeoutError:
        return b"<still open>"


async def _get_keepalive(stream, path: str = "/healthz") -> bytes:
    await stream.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    head = await asyncio.wait_for(stream.read_until(b"\r\n\r\n"), 10)
    length = int([line.split(b":")[1] for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length")][0])
    await asyncio.wait_for(stream.read_bytes(length), 10)
    return head.split(b"\r\n", 1)[0]


@pytest.fixture
def serve_limited(tp_make_settings, io_loop, _unused_port):
    """``serve_limited(**server_overrides)`` -> port of make_http_server(make_app(...))."""
    started = []

    from tornpay.httpserver import make_http_server

    def serve(**server):
        settings = tp_make_settings({"server": server})
        app = make_app(settings)
        http = make_http_server(app, settings)
        sock, port = _unused_port  # the port the settings name
        http.add_sockets([sock])
        started.append((app, http))
        return port

    yield serve
    for app, http in started:
        http.stop()
        io_loop.run_sync(http.close_all_connections)
        io_loop.run_sync(app.settings["tornpay"].stop)


@pytest.mark.gen_test(timeout=30)
async def test_half_sent_request_is_dropped_after_the_header_timeout(serve_limited):
    port = serve_limited(header_timeout_seconds=0.3)
    stream = await TCPClient().connect("127.0.0.1", port)
    await stream.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # no blank line: never ends
    assert await _read_all(stream, 10) == b""  # closed by the server, nothing answered
    stream.close()


@pytest.mark.gen_test(timeout=30)
async def test_connections_above_the_limit_are_refused_while_existing_ones_are_served(
        serve_limited):
    port = serve_limited(max_connections=3, header_timeout_seconds=60)
    held = [await TCPClient().connect("127.0.0.1", port) for _ in range(3)]
    for stream in held:
        assert b"200" in await _get_keepalive(stream)
    extra = await TCPClient().connect("127.0.0.1", port)
    try:
        await extra.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    except StreamClosedError:
        pass
    assert await _read_all(extra, 10) == b""  # closed at once, no answer
    for stream in held:  # the three already in are still served, on the same connections
        assert b"200" in await _get_keepalive(stream)
    held[0].close()
    await asyncio.sleep(0.2)
    again = await TCPClient().connect("127.0.0.1", port)
    assert b"200" in await _get_keepalive(again)  # a freed place is usable again
    for stream in held[1:] + [again]:
        stream.close()


class _ExhaustedSocket:
    """A listening socket whose accept() fails as it does when file descriptors run out."""

    def __init__(self, real):
        self.real, self.attempts = real, 0

    def fileno(self):
        return self.real.fileno()

    def accept(self):
        self.attempts += 1
        raise OSError(errno.EMFILE, "Too many open files")

    def close(self):
        self.real.close()


@pytest.mark.gen_test(timeout=30)
async def test_accept_errors_pause_the_loop_and_log_a_bounded_number_of_lines(
        monkeypatch, caplog):
    from tornpay import httpserver as tp_httpserver

    monkeypatch.setattr(tp_httpserver, "ACCEPT_PAUSE_SECONDS", 0.05)
    listener, port = proc_helpers.bind_unused_port()
    waiting = socket.create_connection(("127.0.0.1", port))  # keeps the listener readable
    fake = _ExhaustedSocket(listener)
    http = tp_httpserver.LimitedHTTPServer(lambda request: None, max_connections=10)
    with caplog.at_level(logging.WARNING):
        http.add_sockets([fake])
        await asyncio.sleep(1.0)
        http.stop()
    waiting.close()
    lines = [r for r in caplog.records if "accept" in r.getMessage()]
    # Spinning would try (and log) tens of thousands of times a second.
    assert 1 <= fake.attempts <= 40
    assert 1 <= len(lines) <= 2


@pytest.mark.gen_test
async def test_a_flood_of_identical_asyncio_errors_is_collapsed(http_server):
    # What asyncio logs when Tornado's accept loop hits EMFILE: one record per attempt.
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger("asyncio").addHandler(handler)
    loop = asyncio.get_running_loop()
    try:
        for _ in range(2000):
            loop.call_exception_handler({
                "message": "Exception in callback BaseAsyncIOLoop._handle_events(7, 1)",
                "exception": OSError(errno.EMFILE, "Too many open files")})
    finally:
        logging.getLogger("asyncio").removeHandler(handler)
    assert 1 <= len(records) <= 2


def test_the_real_server_drops_half_sent_requests(tmp_path):
    """python server.py builds its HTTPServer with the limits (not only in-process tests)."""
    port = proc_helpers.free_port()
    path = proc_helpers.write_settings(tmp_path, "limits", port,
                                       f"sqlite:///{tmp_path}/tp.db",
                                       server={"header_timeout_seconds": 0.5})
    proc = proc_helpers.start_server(tmp_path, path, port, proc_helpers.environ(tmp_path))
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=15) as conn:
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            assert conn.recv(100) == b""  # EOF well before the 15 s timeout
    finally:
        proc_helpers.terminate(proc)
