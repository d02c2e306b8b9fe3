"""The application context: every long-lived part of one tornpay instance, started together."""

import logging
import os
import socket
from typing import Iterable, Optional

from tornado.httpclient import AsyncHTTPClient

from tornpay.hooks import HookManager
from tornpay.logthrottle import install_repeat_filters
from tornpay.metrics import Metrics
from tornpay.protocol.client import PayClient
from tornpay.protocol.oauth import OAuthClient
from tornpay.settings import Settings, SettingsError
from tornpay.storage import db as storage
from tornpay.storage.executor import make_executor
from tornpay.storage.health import HealthCollector
from tornpay.weblog import install_scrub_filter

logger = logging.getLogger(__name__)


def make_http_client(settings: Settings):
    """One explicit client for every WeChat call: curl when pycurl imports, else the simple one."""
    timeout = settings.wechat.timeout
    defaults = dict(connect_timeout=timeout, request_timeout=timeout)
    try:
        from tornado.curl_httpclient import CurlAsyncHTTPClient

        # max_clients defaults to 10: hundreds of checkouts waiting on a slow
        # WeChat would queue behind ten transfers.
        return CurlAsyncHTTPClient(force_instance=True, max_clients=1000, defaults=defaults)
    except ImportError:  # pragma: no cover - pycurl is a declared dependency
        logger.warning("pycurl is not importable; using Tornado's simple HTTP client")
        return AsyncHTTPClient(force_instance=True, max_clients=1000, defaults=defaults)


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


class Context:
    """Settings, database, WeChat clients, hooks and background workers of one app."""

    def __init__(self, settings: Settings, *, hooks: Optional[HookManager] = None,
                 plugins: Iterable = (), http_client=None, database=None):
        check_startable(settings)
        self.settings = settings
        # On the loggers themselves, so an embedding estate's handlers get scrubbed records too.
        install_scrub_filter(settings.secret_values())
        install_repeat_filters()
        # Fits lease_owner (64 characters) whatever the host name.
        self.owner_id = f"{socket.gethostname()[:24]}:{os.getpid()}:{id(self):x}"
        self.db = database or storage.open_database(settings.database.url)
        storage.bind(self.db)
        self.hooks = hooks or HookManager()
        if hooks is None:
            self.hooks.load_settings_plugins(settings)
            self.hooks.load_entry_points()
        for plugin in plugins:
            self.hooks.register(plugin)
        self.hooks.check()
        self._prepare_database(settings)
        # Every request's database work goes through here, off the IOLoop (SPEC §12).
        self.dbx = make_executor(self.db, settings)
        self._own_http_client = http_client is None
        self.http_client = http_client or make_http_client(settings)
        self.metrics = Metrics(self)  # per-app registry: two apps in one process never collide
        self.metrics.registry.register(HealthCollector(self.db_health))
        self.pay_client = PayClient.from_settings(settings, self.http_client,
                                                  observer=self._observe_upstream)
        from tornpay.gateway.router import build_gateways

        # The core's way to WeChat: the gateway of each order's API generation.
        self.gateways = build_gateways(settings, self.pay_client, self.http_client,
                                       observer=self._observe_upstream)
        self.oauth_client = OAuthClient.from_settings(settings, self.http_client)
        self.simulator = None
        if settings.simulator.enabled:
            from tornpay.simulator.state import SimulatorConfig, SimulatorState

            sim = settings.simulator
            config = SimulatorConfig.from_settings(
                settings, time_scale=sim.notify_time_scale,
                close_min_age_seconds=sim.close_min_age_seconds)
            self.simulator = SimulatorState(config)
        from tornpay.orders.dispatcher import Dispatcher
        from tornpay.orders.reconciler import Reconciler

        self.dispatcher = Dispatcher(self.hooks, settings, self.owner_id)
        from tornpay.orders.registry import Registry

        self.registry = Registry(self.hooks, settings, self.owner_id,
                                 on_reaped=self.dispatcher.kick)
        self.reconciler = Reconciler(self.gateways, self.hooks, settings, self.owner_id,
                                     on_change=self.dispatcher.kick)
        self.reconciler.dbx = self.dispatcher.dbx = self.registry.dbx = self.dbx
        from tornpay.orders.refund_followup import RefundFollowUp

        self.refund_followup = RefundFollowUp(self)
        from tornpay.bills.scheduler import BillScheduler, register_metrics

        self.bills = BillScheduler(self)  # runs only when bills.enabled
        register_metrics(self.metrics)
        self.started = False

    def _prepare_database(self, settings: Settings) -> None:
        """Create the tables; refuse (one line naming database.url) what cannot be written."""
        from tornpay.orders.refusals import RefusalLog
        from tornpay.storage.health import DatabaseHealth, require_writable, shown_url

        try:
            storage.create_tables(self.hooks.models())
        except Exception as exc:  # a missing directory, a read-only file, a refusing server
            raise SettingsError(f"setting database.url {shown_url(settings.database.url)}: "
                                f"cannot open the database ({exc})") from None
        require_writable(self.db, settings.database.url)
        self.db_health = DatabaseHealth(self.db, settings.database.check_interval_seconds)
        self.refusals = RefusalLog(settings)

    def _observe_upstream(self, api: str, seconds: float, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.observe_upstream(api, seconds, outcome)

    async def db_write(self, fn, *args, group: bool = False, **kwargs):
        """Run the transaction function ``fn`` on a database writer thread; await its result."""
        return await self.dbx.write(fn, *args, group=group, **kwargs)

    async def db_read(self, fn, *args, **kwargs):
        """Run the read-only function ``fn`` on a database reader thread; await its result."""
        return await self.dbx.read(fn, *args, **kwargs)

    @property
    def prefix(self) -> str:
        return self.settings.server.prefix

    def start(self) -> None:
        """Start the delivery dispatcher and the reconciler on the current IOLoop."""
        if self.started:
            return
        self.started = True
        self.registry.start()  # first: our plugins known, dead processes' leases released
        self.dispatcher.start()
        self.reconciler.start()
        self.refund_followup.start()
        self.bills.start()
        self.db_health.start()
        if self.simulator is not None and hasattr(self.simulator, "start"):
            self.simulator.start()

    async def stop(self) -> None:
        """Stop background work, let in-flight hook calls finish, close clients."""
        if self.started:
            self.started = False
            await self.reconciler.stop()
            await self.refund_followup.stop()
            await self.bills.stop()
            await self.dispatcher.stop()
            await self.db_health.stop()
            await self.registry.stop()
            if self.simulator is not None and hasattr(self.simulator, "stop"):
                result = self.simulator.stop()
                if hasattr(result, "__await__"):
                    await result
        self.hooks.close()
        self.dbx.close()
        if self._own_http_client:
            self.http_client.close()
        if not self.db.is_closed():
            self.db.close()
