"""What the core asks of a context: the typed face of the server's Context and the CLI's.

``tornpay.context.Context`` (a serving process) and ``orders.admin.AdminContext``
(the CLI: no background work) both satisfy :class:`CoreContext`, so core
functions take one typed ``ctx`` instead of probing it with ``getattr``: what a
context may lack is declared here and set to None by the context that lacks it
(``tests/test_architecture.py`` refuses ``getattr(ctx, ...)`` in product code).
"""

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class CoreContext(Protocol):
    """Settings, database, hooks and the WeChat client, plus a way to wake deliveries."""

    settings: Any
    db: Any
    dbx: Any  # the DbExecutor running database work off the IOLoop; None in the CLI
    hooks: Any
    reconciler: Any  # the serving process's Reconciler (orderquery now); None in the CLI

    @property
    def pay_client(self) -> Any:
        """The WeChat pay client (v2 ``PayClient``)."""

    @property
    def gateways(self) -> Any:
        """The core's way to WeChat (``tornpay.gateway.router.Gateways``): one per generation."""

    def kick(self) -> None:
        """Outbox rows were committed: deliver them now (a no-op where nothing delivers)."""


@runtime_checkable
class ServingContext(CoreContext, Protocol):
    """A serving process's context: also the refusal log, the database watch, the paid cache."""

    refusals: Any  # the notify pipelines' refusal log
    db_health: Any  # DatabaseHealth: pages and notifies refuse while it is not ``ok``
    paid_cache: Any  # orders.paid_cache.PaidCache (repeated notifies), or None: no cache
