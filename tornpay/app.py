"""Composition root: ``make_app(settings)`` builds the Tornado application; ``main()`` serves it."""

import asyncio
import faulthandler
import gc
import logging
import os
import signal
import sys
from typing import Iterable, Optional

import tornado.web
from tornado import httputil

from tornpay import webheaders
from tornpay.context import Context
from tornpay.httpserver import BodyDeadline, make_http_server
from tornpay.settings import Settings
from tornpay.weblog import log_request

logger = logging.getLogger(__name__)

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")


def tornpay_routes(ctx: Context, prefix: Optional[str] = None, include_root: bool = True):
    """All of tornpay's URL specs for ``ctx``: its routes, its static files and the simulator."""
    from tornpay import handlers as handlers_pkg

    prefix = ctx.prefix if prefix is None else prefix
    specs = handlers_pkg.routes(ctx, prefix, include_root=include_root)
    specs.append(tornado.web.url(prefix + r"/static/(.*)", tornado.web.StaticFileHandler,
                                 {"path": STATIC_DIR}, name="tornpay-static"))
    if ctx.simulator is not None:
        from tornpay.simulator.app import simulator_routes

        specs.extend(simulator_routes(ctx.simulator, prefix="/_sim"))
    return specs


class TornpayApplication(tornado.web.Application):
    """A Tornado application that counts requests in flight, for a graceful SIGTERM.

    With ``direct_notify`` (a Context) POST ``{prefix}/notify`` is answered by
    ``handlers/notify_direct.py`` before any route is tried; an estate's
    application never has it and keeps the handler.
    """

    def __init__(self, handlers=None, *args, direct_notify: Optional[Context] = None, **kwargs):
        rules = list(handlers or [])
        if direct_notify is not None:
            from tornpay.handlers.notify_direct import direct_notify_rule

            rules.insert(0, direct_notify_rule(direct_notify.prefix + "/notify", direct_notify,
                                               self))
        super().__init__(rules, *args, **kwargs)
        self.in_flight = 0

    def start_request(self, server_conn, request_conn):
        # The body limits hold under any HTTPServer (a test's, an estate's), not
        # only the one serve() builds: set them on each request's connection
        # before its body is read. /notify raises its own in prepare().
        server = self.settings["tornpay"].settings.server
        delegate = super().start_request(server_conn, request_conn)
        if hasattr(request_conn, "set_max_body_size"):
            request_conn.set_max_body_size(server.max_body_bytes)
            if server.body_timeout_seconds:
                return BodyDeadline(delegate, request_conn, server.body_timeout_seconds)
        return delegate

    def find_handler(self, request, **kwargs):
        # Called once per request as it starts; it leaves the count once, when
        # logged as it finishes or when its client left before its body was in.
        self.in_flight += 1
        request.tornpay_in_flight = True
        return super().find_handler(request, **kwargs)

    def get_handler_delegate(self, request, target_class, *args, **kwargs):
        delegate = super().get_handler_delegate(request, target_class, *args, **kwargs)
        return _LeavesInFlight(self, request, delegate)

    def log_request(self, handler):
        self.leave_in_flight(handler.request)
        super().log_request(handler)

    def leave_in_flight(self, request) -> None:
        """``request`` leaves the in-flight count (once, however often this is called)."""
        if getattr(request, "tornpay_in_flight", False):
            request.tornpay_in_flight = False
            self.in_flight = max(0, self.in_flight - 1)


class _LeavesInFlight(httputil.HTTPMessageDelegate):
    """A handler's delegate: a client gone before the body was in takes its request off the count.

    Tornado never creates (or logs) the handler of such a request, and a
    graceful stop would otherwise wait its whole bound for it.
    """

    __slots__ = ("app", "request", "delegate")

    def __init__(self, app: TornpayApplication, request, delegate):
        self.app, self.request, self.delegate = app, request, delegate

    def headers_received(self, start_line, headers):
        return self.delegate.headers_received(start_line, headers)

    def data_received(self, chunk):
        return self.delegate.data_received(chunk)

    def finish(self):
        return self.delegate.finish()

    def on_connection_close(self):
        self.delegate.on_connection_close()
        self.app.leave_in_flight(self.request)


def make_app(settings: Settings, *, plugins: Iterable = (), hooks=None, http_client=None,
             database=None, start: bool = True) -> tornado.web.Application:
    """Build the Tornado application for ``settings``; its Context is ``app.settings['tornpay']``.

    ``start`` starts the dispatcher and reconciler on the current IOLoop.
    """
    ctx = Context(settings, plugins=plugins, hooks=hooks, http_client=http_client,
                  database=database)
    app = TornpayApplication(
        tornpay_routes(ctx),
        direct_notify=ctx,
        tornpay=ctx,
        xsrf_cookies=True,
        cookie_secret=settings.server.cookie_secret,
        debug=settings.server.debug,
        log_function=log_request,
        **webheaders.app_settings(settings),
    )
    if start:
        ctx.start()
    return app


# Container allocations between young-generation collections (Python's default: 700).
GC_YOUNG_THRESHOLD = 10_000


def tune_gc() -> None:
    """Standalone only, once start-up is done: fewer, cheaper garbage collections.

    Requests in flight live long enough (a WeChat call, a database commit) to be
    scanned and promoted at every young collection; at 1,000 checkouts in
    flight collections took 7-10% of the server's CPU, and a full one ~40 ms.
    With a larger young generation most request objects die before they are
    scanned (0.2-2%), and ``gc.freeze()`` keeps the ~50,000 objects of start-up
    (modules, classes, routes) out of every later full collection.
    """
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


def configure_logging(settings: Settings) -> None:
    """Standalone only (an embedding estate keeps its own logging): see tornpay.logs."""
    from tornpay.logs import configure

    configure(settings.server.log_level, settings.server.log_format,
              secrets=settings.secret_values())


async def serve(settings: Settings) -> None:
    """Listen, run until SIGTERM/SIGINT, then stop accepting, finish in-flight work and exit."""
    # A fatal signal (SIGBUS from a vanished database's WAL index, SIGSEGV)
    # must leave a trace on stderr instead of a silent death.
    faulthandler.enable()
    app = make_app(settings)
    tune_gc()
    ctx: Context = app.settings["tornpay"]
    server = make_http_server(app, settings)
    server.listen(settings.server.port, settings.server.address)
    logger.info("tornpay listening on http://%s:%s%s (simulator %s, database %s)",
                settings.server.address, settings.server.port, settings.server.prefix,
                "on" if ctx.simulator is not None else "off",
                settings.database.url.split(":", 1)[0])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    logger.info("shutting down: no new connections, finishing requests in flight")
    server.stop()
    # Give requests in flight (a notify mid-commit, a checkout awaiting WeChat)
    # time to finish before the connections are closed.
    deadline = loop.time() + settings.wechat.timeout + 1
    while loop.time() < deadline and app.in_flight > 0:
        await asyncio.sleep(0.05)
    await server.close_all_connections()
    await ctx.stop()
    logger.info("stopped")


def main(argv: Optional[list] = None) -> int:
    """``python server.py [--settings FILE]``: exactly ``tornpay serve`` (one parser, the CLI's)."""
    from tornpay.cli import main as cli_main

    return cli_main(["serve", *(sys.argv[1:] if argv is None else argv)])
