"""The listening server: body, header and idle limits, a connection cap, a calm accept loop."""

import asyncio
import logging
import resource
import socket
from typing import Any, Callable, Optional

from tornado import httputil
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop
from tornado.log import gen_log

from tornpay.logthrottle import RESOURCE_ERRNOS, Throttle

logger = logging.getLogger(__name__)

# After "out of file descriptors" the listening socket stays readable: accepting
# again at once only spins and logs. Wait this long, as asyncio's own loop does.
ACCEPT_PAUSE_SECONDS = 1.0
# Descriptors kept free for the database, log files, WeChat calls and plugins.
FD_RESERVE = 64
ACCEPT_BATCH = 128  # connections taken per wake-up (Tornado's own heuristic)


class BodyDeadline(httputil.HTTPMessageDelegate):
    """A request's body must have arrived ``timeout`` seconds after its headers, or it drops.

    What Tornado's ``body_timeout`` does, with one timer per request: Tornado
    wraps every body read in ``gen.with_timeout`` (a future chained to another
    and one more turn of the loop per request, ~5% of a notify's CPU).
    """

    __slots__ = ("delegate", "conn", "timeout", "timer")

    def __init__(self, delegate: httputil.HTTPMessageDelegate, conn, timeout: float):
        self.delegate, self.conn, self.timeout = delegate, conn, timeout
        self.timer: Optional[asyncio.TimerHandle] = None

    def headers_received(self, start_line, headers):
        self.timer = asyncio.get_running_loop().call_later(self.timeout, self._expired)
        return self.delegate.headers_received(start_line, headers)

    def data_received(self, chunk):
        return self.delegate.data_received(chunk)

    def finish(self) -> None:
        self._stop()  # the whole body is in
        self.delegate.finish()

    def on_connection_close(self) -> None:
        self._stop()
        self.delegate.on_connection_close()

    def _stop(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _expired(self) -> None:
        self.timer = None
        stream = getattr(self.conn, "stream", None)
        if stream is not None and not stream.closed():  # None: detached (not a body read)
            gen_log.info("Timeout reading body from %s", self.conn.context)
            stream.close()  # the read fails, the handler is never called


class LimitedHTTPServer(HTTPServer):
    """An HTTPServer that closes connections above ``max_connections`` at once.

    Connections already open keep being served; the refusals and any accept
    errors are logged at most once a minute per kind, with a count.
    """

    def initialize(self, *args: Any, max_connections: int = 1000, **kwargs: Any) -> None:
        super().initialize(*args, **kwargs)
        self.max_connections = max_connections
        self.refused_connections = 0
        self._log_throttle = Throttle()

    def handle_stream(self, stream, address) -> None:
        if len(self._connections) >= self.max_connections:
            self.refused_connections += 1
            stream.close()
            self._warn("over-limit", "connection refused: %d connections open (limit "
                       "server.max_connections = %d)", len(self._connections),
                       self.max_connections)
            return
        super().handle_stream(stream, address)

    def add_sockets(self, sockets) -> None:
        for sock in sockets:
            self._sockets[sock.fileno()] = sock
            self._handlers[sock.fileno()] = accept_handler(sock, self._handle_connection,
                                                           self._accept_failed)

    def _accept_failed(self, exc: OSError) -> None:
        self._warn(("accept", exc.errno), "accept() failed: %s; pausing new connections for "
                   "%.1fs (connections open: %d)", exc, ACCEPT_PAUSE_SECONDS,
                   len(self._connections))

    def _warn(self, key, message: str, *args: Any) -> None:
        suppressed = self._log_throttle.allow(key)
        if suppressed is None:
            return
        if suppressed:
            message += " (%d more like it suppressed)"
            args += (suppressed,)
        logger.warning(message, *args)


def accept_handler(sock: socket.socket, callback: Callable[[socket.socket, Any], None],
                   on_resource_error: Callable[[OSError], None]) -> Callable[[], None]:
    """Like ``tornado.netutil.add_accept_handler``, but pause instead of spin when out of fds.

    Returns the function that stops accepting (as Tornado's does).
    """
    io_loop = IOLoop.current()
    state = {"removed": False, "paused": False}

    def resume() -> None:
        if not state["removed"]:
            state["paused"] = False
            io_loop.add_handler(sock, on_readable, IOLoop.READ)

    def on_readable(fd, events) -> None:
        for _ in range(ACCEPT_BATCH):
            if state["removed"]:
                return
            try:
                connection, address = sock.accept()
            except BlockingIOError:
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:
                if exc.errno not in RESOURCE_ERRNOS:
                    raise
                on_resource_error(exc)
                state["paused"] = True
                io_loop.remove_handler(sock)
                io_loop.call_later(ACCEPT_PAUSE_SECONDS, resume)
                return
            callback(connection, address)

    def remove() -> None:
        if not state["paused"]:
            io_loop.remove_handler(sock)
        state["removed"] = True

    io_loop.add_handler(sock, on_readable, IOLoop.READ)
    return remove


def effective_max_connections(wanted: int) -> int:
    """``wanted``, raising the soft descriptor limit for it, or lowered to what the OS allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = wanted + FD_RESERVE
    if soft != resource.RLIM_INFINITY and soft < need:
        target = need if hard == resource.RLIM_INFINITY else min(need, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft != resource.RLIM_INFINITY and soft < need:
        allowed = max(1, soft - FD_RESERVE) if soft > 2 * FD_RESERVE else max(1, soft // 2)
        logger.warning("server.max_connections %d is more than the open-files limit %d allows; "
                       "using %d (raise `ulimit -n`)", wanted, soft, allowed)
        return allowed
    return wanted


def make_http_server(app, settings) -> LimitedHTTPServer:
    """The HTTPServer for ``app`` with every limit of ``settings.server`` (docs/security.md)."""
    server = settings.server
    return LimitedHTTPServer(
        app, xheaders=server.xheaders,
        max_body_size=server.max_body_bytes,
        max_header_size=server.max_header_bytes,
        # The body timeout is TornpayApplication's (BodyDeadline), under any server.
        # Tornado has one timer for both: the head of the next request must be
        # complete within it, whether the connection idled or trickled bytes.
        idle_connection_timeout=server.header_timeout_seconds,
        max_connections=effective_max_connections(server.max_connections),
    )
