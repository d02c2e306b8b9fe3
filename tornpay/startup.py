"""What every entry point checks and builds first: settings it may start with, the HTTP client.

Shared by the server's Context and the CLI's AdminContext (orders/admin.py),
so both refuse the same settings and call WeChat the same way.
"""

import logging

from tornado.httpclient import AsyncHTTPClient

from tornpay.settings import Settings, SettingsError

logger = logging.getLogger("tornpay.context")  # the name operators grep for


def make_http_client(settings: Settings):
    """One explicit client for every WeChat call: curl when pycurl imports, else the simple one.

    ``wechat.max_concurrent_calls`` caps the calls in flight (Tornado's default
    of 10 would queue hundreds of checkouts behind ten slow unified orders).
    """
    timeout = settings.wechat.timeout
    defaults = dict(connect_timeout=timeout, request_timeout=timeout)
    max_clients = settings.wechat.max_concurrent_calls
    try:
        from tornpay.curlclient import LeanCurlClient

        return LeanCurlClient(force_instance=True, max_clients=max_clients, defaults=defaults)
    except ImportError:  # pragma: no cover - pycurl is a declared dependency
        logger.warning("pycurl is not importable; using Tornado's simple HTTP client")
        return AsyncHTTPClient(force_instance=True, max_clients=max_clients, defaults=defaults)


def check_startable(settings: Settings) -> None:
    """Refuse the shipped credentials with real WeChat, and real ones with the simulator."""
    if not settings.simulator.enabled and settings.uses_shipped_credentials():
        raise SettingsError(
            "setting wechat.api_key/app_secret or server.cookie_secret: still the shipped test "
            "values while simulator.enabled is false; set your own credentials")
    real = settings.real_credentials()
    # SPEC §3: the simulator lets anyone mark an order paid; it never runs beside real money.
    if settings.simulator.enabled and real and not settings.simulator.allow_real_credentials:
        raise SettingsError(
            "setting simulator.enabled: the WeChat simulator is on with real credentials "
            f"(not the shipped test values: {', '.join(real)}); anyone could mark orders paid, "
            "so set simulator.enabled: false for real WeChat")
    if settings.server.debug and real:
        raise SettingsError(
            f"setting server.debug: true with real WeChat credentials ({', '.join(real)}) "
            "would show tracebacks to anyone; set server.debug: false")
