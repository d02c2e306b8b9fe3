"""Routes of the simulator, its standalone Application and `run_simulator` for the CLI."""

import asyncio
import logging
from typing import List

import tornado.web
from tornado.web import URLSpec

from tornpay.simulator.billapi import DownloadBillHandler
from tornpay.simulator.cashier import CashierHandler, JsBridgeHandler
from tornpay.simulator.config import SimulatorConfig
from tornpay.simulator.control import ControlHandler
from tornpay.simulator.dashboard import DashboardHandler
from tornpay.simulator.h5native import CHECKMWEB_PATH
from tornpay.simulator.miniprogram import miniprogram_routes
from tornpay.simulator.oauth import AccessTokenHandler, AuthorizeHandler
from tornpay.simulator.phonepages import CheckMwebHandler, ScanHandler
from tornpay.simulator.payapi import (
    CloseOrderHandler, GetSignKeyHandler, OrderQueryHandler, UnifiedOrderHandler,
)
from tornpay.simulator.refundapi import RefundHandler, RefundQueryHandler
from tornpay.simulator.state import SimulatorState
from tornpay.simulator.userinfo import AuthCheckHandler, UserInfoHandler
from tornpay.simulator.v3.routes import v3_routes
from tornpay.weblog import log_request

logger = logging.getLogger(__name__)

PAY_API = (
    ("/pay/unifiedorder", UnifiedOrderHandler),
    ("/pay/orderquery", OrderQueryHandler),
    ("/pay/closeorder", CloseOrderHandler),
    ("/secapi/pay/refund", RefundHandler),
    ("/pay/refundquery", RefundQueryHandler),
    ("/pay/downloadbill", DownloadBillHandler),
)


def simulator_routes(state: SimulatorState, prefix: str = "/_sim") -> List[URLSpec]:
    """URL specs for every simulator surface under `prefix` ("" when standalone)."""
    p = prefix.rstrip("/")
    kw = {"state": state}
    routes = [URLSpec(p + path, handler, dict(kw)) for path, handler in PAY_API]
    # The retired sandbox: same API under /sandboxnew/, signed with the getsignkey key.
    routes += [URLSpec(p + "/sandboxnew" + path, handler, dict(kw, sandbox=True))
               for path, handler in PAY_API]
    routes += v3_routes(state, p)  # API v3: same paths as WeChat's under the base URL
    routes += [
        URLSpec(p + "/sandboxnew/pay/refund", RefundHandler, dict(kw, sandbox=True)),
        URLSpec(p + "/sandboxnew/pay/getsignkey", GetSignKeyHandler, dict(kw)),
        URLSpec(p + "/connect/oauth2/authorize", AuthorizeHandler, dict(kw)),
        URLSpec(p + "/sns/oauth2/access_token", AccessTokenHandler, dict(kw)),
        URLSpec(p + "/sns/userinfo", UserInfoHandler, dict(kw)),
        URLSpec(p + "/sns/auth", AuthCheckHandler, dict(kw)),
        URLSpec(p + "/jsbridge.js", JsBridgeHandler, dict(kw, base=p)),
        URLSpec(p + r"/cashier/(check|pay)", CashierHandler, dict(kw)),
        URLSpec(p + r"/control/(.+)", ControlHandler, dict(kw)),
        URLSpec(p + "/scan", ScanHandler, dict(kw)),  # NATIVE: the test phone scans
        URLSpec(p + CHECKMWEB_PATH, CheckMwebHandler, dict(kw)),  # MWEB's cashier
        URLSpec(p + "/", DashboardHandler, dict(kw), name="tornpay-simulator-dashboard"),
    ]
    routes += miniprogram_routes(p, state)
    if p:
        routes.append(URLSpec(p, tornado.web.RedirectHandler, {"url": p + "/"}))
    return routes


def make_simulator_app(state: SimulatorState, **app_settings) -> tornado.web.Application:
    """A standalone Application serving the simulator at the root."""
    # The server's access log: OAuth codes and secrets in query strings are scrubbed.
    app_settings.setdefault("log_function", log_request)
    return tornado.web.Application(simulator_routes(state, prefix=""), **app_settings)


async def run_simulator(config: SimulatorConfig, address: str = "127.0.0.1", port: int = 8899,
                        **server_kwargs) -> None:
    """Serve the simulator alone until cancelled (`tornpay simulator --port N`)."""
    if not config.public_url:
        host = "127.0.0.1" if address in ("", "0.0.0.0", "::") else address
        config.public_url = f"http://{host}:{port}"
    state = SimulatorState(config)
    server = make_simulator_app(state).listen(port, address, **server_kwargs)
    logger.info("simulator listening on http://%s:%d/ (public URL %s)", address, port,
             config.public_url)
    try:
        await asyncio.Event().wait()
    finally:
        server.stop()
        state.close()
