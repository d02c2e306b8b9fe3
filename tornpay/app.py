"""Composition root: ``make_app(settings)`` builds the Tornado application; ``main()`` serves it."""

import asyncio
import faulthandler
import logging
import os
import signal
import sys
from typing import Iterable, Optional

import tornado.web

from tornpay import webheaders
from tornpay.context import Context
from tornpay.httpserver import make_http_server
from tornpay.settings import Settings, SettingsError, load_settings
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
    """A Tornado application that counts requests in flight, for a graceful SIGTERM."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.in_flight = 0

    def start_request(self, server_conn, request_conn):
        # The body limits hold under any HTTPServer (a test's, an estate's), not
        # only the one serve() builds: set them on each request's connection
        # before its body is read. /notify raises its own in prepare().
        server = self.settings["tornpay"].settings.server
        if hasattr(request_conn, "set_max_body_size"):
            request_conn.set_max_body_size(server.max_body_bytes)
            request_conn.set_body_timeout(server.body_timeout_seconds)
        return super().start_request(server_conn, request_conn)

    def find_handler(self, request, **kwargs):
        # Called once per request as it starts; log_request once as it finishes.
        self.in_flight += 1
        return super().find_handler(request, **kwargs)

    def log_request(self, handler):
        self.in_flight = max(0, self.in_flight - 1)
        super().log_request(handler)


def make_app(settings: Settings, *, plugins: Iterable = (), hooks=None, http_client=None,
             database=None, start: bool = True) -> tornado.web.Application:
    """Build the Tornado application for ``settings``; its Context is ``app.settings['tornpay']``.

    ``start`` starts the dispatcher and reconciler on the current IOLoop.
    """
    ctx = Context(settings, plugins=plugins, hooks=hooks, http_client=http_client,
                  database=database)
    app = TornpayApplication(
        tornpay_routes(ctx),
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
    """``python server.py [--settings FILE]``: the same as ``tornpay serve``."""
    import argparse

    parser = argparse.ArgumentParser(prog="server.py", description="Run the tornpay server.")
    parser.add_argument("--settings", default=os.environ.get("TORNPAY_SETTINGS", "settings.yaml"),
                        help="settings file (YAML); default $TORNPAY_SETTINGS or settings.yaml")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.settings)
        from tornpay.plugin_sources import add_plugin_dir
        from tornpay.storage.preflight import check_database

        add_plugin_dir(args.settings)
        check_database(settings.database.url)  # no driver / unreachable: one line, exit 2
    except SettingsError as exc:
        print(f"tornpay: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings)
    try:
        asyncio.run(serve(settings))
    except SettingsError as exc:
        print(f"tornpay: {exc}", file=sys.stderr)
        return 2
    return 0
