"""The application context: every long-lived part of one tornpay instance, started together."""

import logging
import os
import socket
from typing import Iterable, Optional

from tornpay.hooks import HookManager
from tornpay.logthrottle import install_repeat_filters
from tornpay.metrics import Metrics
from tornpay.protocol.client import PayClient
from tornpay.protocol.oauth import OAuthClient
from tornpay.settings import Settings, SettingsError
from tornpay.startup import check_startable, make_http_client  # noqa: F401 (re-exported)
from tornpay.storage import db as storage
from tornpay.orders.dbwatch import HealthCollector
from tornpay.orders.paid_cache import PaidCache
from tornpay.storage.executor import make_executor
from tornpay.weblog import install_scrub_filter

logger = logging.getLogger(__name__)


class Context:
    """Settings, database, WeChat clients, hooks and background workers of one app.

    Built by named steps, in this order (Thumbor's ``server.py`` is the model):
    settings checked, logging, database, plugins (and their tables), gateway
    (the WeChat clients), workers. One tornpay serves one database per process:
    ``storage.claim`` refuses a second Context on another database while one
    is serving (docs/ARCHITECTURE.md, "One tornpay per process").
    """

    def __init__(self, settings: Settings, *, hooks: Optional[HookManager] = None,
                 plugins: Iterable = (), http_client=None, database=None):
        self.settings = settings
        # Fits lease_owner (64 characters) whatever the host name.
        self.owner_id = f"{socket.gethostname()[:24]}:{os.getpid()}:{id(self):x}"
        check_startable(settings)
        self._install_logging()
        self._open_database(database)
        self._load_plugins(hooks, plugins)
        self._prepare_database(settings)
        # Every request's database work goes through here, off the IOLoop (SPEC §12).
        self.dbx = make_executor(self.db, settings)
        self.paid_cache = PaidCache()  # repeats of committed payments (orders/notify.py)
        self._build_gateway(http_client)
        self._build_workers()
        self.started = self.closed = False

    def _install_logging(self) -> None:
        # On the loggers themselves, so an embedding estate's handlers get scrubbed records too.
        install_scrub_filter(self.settings.secret_values())
        install_repeat_filters()

    def _open_database(self, database) -> None:
        url = self.settings.database.url
        storage.check_claim(url)  # one tornpay (one database) per process
        self.db = database or storage.open_database(url)
        storage.bind(self.db)

    def _load_plugins(self, hooks: Optional[HookManager], plugins: Iterable) -> None:
        self.hooks = hooks or HookManager()
        if hooks is None:
            self.hooks.load_settings_plugins(self.settings)
            self.hooks.load_entry_points()
        for plugin in plugins:
            self.hooks.register(plugin)
        self.hooks.check()


    def _build_gateway(self, http_client) -> None:
        settings = self.settings
        self._own_http_client = http_client is None
        self.http_client = http_client or make_http_client(settings)
        self.metrics = Metrics(self)  # per-app registry: two apps in one process never collide
        self.metrics.registry.register(HealthCollector(self.db_health))
        self.pay_client = PayClient.from_settings(settings, self.http_client,
                                                  observer=self._observe_upstream)
        from tornpay.gateway.router import build_gateways

        # The core's way to WeChat: the gateway of each order's API generation.
        self.gateways = build_gateways(settings, self.pay_client, self.http_client,
                                       observer=self._observe_upstream,
                                       generation_of=self._order_generation)
        self.oauth_client = OAuthClient.from_settings(settings, self.http_client)
        self.simulator = None
        if settings.simulator.enabled:
            from tornpay.simulator.state import SimulatorConfig, SimulatorState

            sim = settings.simulator
            config = SimulatorConfig.from_settings(
                settings, time_scale=sim.notify_time_scale,
                close_min_age_seconds=sim.close_min_age_seconds)
            self.simulator = SimulatorState(config)

    def _build_workers(self) -> None:
        from tornpay.bills.scheduler import BillScheduler, register_metrics
        from tornpay.orders.dispatcher import Dispatcher
        from tornpay.orders.reconciler import Reconciler
        from tornpay.orders.refund_followup import RefundFollowUp
        from tornpay.orders.registry import Registry

        settings, owner = self.settings, self.owner_id
        self.dispatcher = Dispatcher(self.hooks, settings, owner)
        self.registry = Registry(self.hooks, settings, owner, on_reaped=self.dispatcher.kick)
        self.reconciler = Reconciler(self.gateways, self.hooks, settings, owner,
                                     on_change=self.dispatcher.kick)
        self.reconciler.dbx = self.dispatcher.dbx = self.registry.dbx = self.dbx
        self.refund_followup = RefundFollowUp(self)
        self.bills = BillScheduler(self)  # runs only when bills.enabled
        register_metrics(self.metrics)

    def _prepare_database(self, settings: Settings) -> None:
        """Create the tables; refuse (one line naming database.url) what cannot be written."""
        from tornpay.orders.refusals import RefusalLog
        from tornpay.orders.dbwatch import DatabaseHealth
        from tornpay.storage.health import require_writable, shown_url

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

    def kick(self) -> None:
        """Outbox rows were committed: wake the dispatcher."""
        self.dispatcher.kick()

    async def db_write(self, fn, *args, group: bool = False, **kwargs):
        """Run the transaction function ``fn`` on a database writer thread; await its result."""
        return await self.dbx.write(fn, *args, group=group, **kwargs)

    async def db_read(self, fn, *args, **kwargs):
        """Run the read-only function ``fn`` on a database reader thread; await its result."""
        return await self.dbx.read(fn, *args, **kwargs)

    async def _order_generation(self, out_trade_no: str):
        """The gateway router's question (which API generation is this order in), off the loop."""
        from tornpay.orders.trade_state import order_generation

        return await self.dbx.read(order_generation, out_trade_no)

    @property
    def prefix(self) -> str:
        return self.settings.server.prefix

    def start(self) -> None:
        """Start the delivery dispatcher and the reconciler on the current IOLoop."""
        if self.started:
            return
        storage.claim(self.settings.database.url, self)
        self.started = True
        self.registry.start()  # first: our plugins known, dead processes' leases released
        self.dispatcher.start()
        self.reconciler.start()
        self.refund_followup.start()
        self.bills.start()
        self.db_health.start()
        if self.simulator is not None:
            self.simulator.start()

    async def stop(self) -> None:
        """Stop background work, let in-flight hook calls finish, close clients."""
        if self.started:
            self.started = False
            storage.release(self)
            await self.reconciler.stop()
            await self.refund_followup.stop()
            await self.bills.stop()
            await self.dispatcher.stop()
            await self.db_health.stop()
            await self.registry.stop()
            if self.simulator is not None:
                await self.simulator.stop()
        if self.closed:  # stop() twice (an estate's shutdown and a test's) closes once
            return
        self.closed = True
        self.hooks.close()
        self.dbx.close()
        if self._own_http_client:
            self.http_client.close()
        if not self.db.is_closed():
            self.db.close()
