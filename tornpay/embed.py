"""Embedding API: mount tornpay's routes in an estate's own Tornado application and lifecycle."""

import copy
import logging
import os
from typing import Any, Iterable, List, Mapping, Optional, Union

from tornado.web import URLSpec

from tornpay.pyapi import OrderAPI
from tornpay.settings import SCHEMA, Section, Settings, SettingsError, load_settings
from tornpay.settings import settings_from_dict

logger = logging.getLogger(__name__)

SettingsLike = Union[Settings, Mapping[str, Any], str, "os.PathLike[str]"]


class Embedded(OrderAPI):
    """tornpay inside someone else's Application: its URL specs, lifecycle and Python API.

    ``routes`` is a list of ``tornado.web.URLSpec`` to put in the estate's
    Application (``Application(estate_routes + tp.routes, **estate_settings)``);
    ``start()`` starts the delivery dispatcher and the reconciler on the running
    IOLoop, ``await stop()`` stops them and closes the database and HTTP client.
    It is also an async context manager doing both. The order methods
    (``create_order``, ``get_order``, ``query``, ``close``, ``cancel``,
    ``refund``) come from :class:`tornpay.pyapi.OrderAPI`.
    """

    def __init__(self, ctx, routes: List[URLSpec]):
        self.ctx = ctx
        self.routes = routes

    @property
    def settings(self) -> Settings:
        return self.ctx.settings

    @property
    def prefix(self) -> str:
        return self.ctx.prefix

    @property
    def hooks(self):
        return self.ctx.hooks

    @property
    def metrics(self):
        return self.ctx.metrics

    def start(self) -> None:
        """Start background work on the current IOLoop (call it once the loop runs)."""
        self.ctx.start()

    async def stop(self) -> None:
        """Stop background work, wait for hook calls in flight, release the database."""
        await self.ctx.stop()

    async def __aenter__(self) -> "Embedded":
        self.start()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.stop()

    def __iter__(self):
        # ``Application(estate_routes + list(tp))`` reads naturally too.
        return iter(self.routes)


def routes(settings: SettingsLike, prefix: Optional[str] = None, plugins: Iterable = (), *,
           include_root: bool = False, env: Optional[Mapping[str, str]] = None,
           hooks=None, http_client=None, database=None) -> Embedded:
    """Build tornpay for an estate: an :class:`Embedded` with ``.routes``, ``start``, ``stop``.

    ``settings``: a :class:`Settings`, a plain dict (checked like settings.yaml)
    or the path of a YAML file. ``prefix``: where the estate mounts tornpay
    (``"/pay"``); it becomes ``server.prefix``, the one source of the pay page
    directory, ``notify_url`` and ``redirect_uri``. ``plugins``: objects or
    modules registered in order after those named in ``settings.plugins``.
    ``include_root``: also serve ``/healthz``, ``/metrics`` and the demo shop at
    the root; by default the estate keeps its root and gets
    ``{prefix}/healthz`` and ``{prefix}/metrics`` instead.
    """
    from tornpay.app import tornpay_routes
    from tornpay.context import Context

    settings = resolve_settings(settings, prefix, env=env)
    ctx = Context(settings, plugins=plugins, hooks=hooks, http_client=http_client,
                  database=database)
    specs = tornpay_routes(ctx, include_root=include_root)
    if not include_root:
        specs.extend(_prefixed_root_routes(ctx, ("health", "metrics")))
    for spec in specs:
        # The estate's reverse_url names must never be replaced by ours.
        if spec.name and not spec.name.startswith("tornpay"):
            spec.name = f"tornpay-{spec.name}"
    logger.info("tornpay embedded under %s (simulator %s)", settings.server.prefix,
                "on" if ctx.simulator is not None else "off")
    return Embedded(ctx, specs)


def resolve_settings(settings: SettingsLike, prefix: Optional[str] = None,
                     env: Optional[Mapping[str, str]] = None) -> Settings:
    """Return checked Settings whose ``server.prefix`` is ``prefix`` (when given).

    A prefix written in the dict or file that differs from ``prefix`` is an
    error rather than a silent choice: the redirect_uri and notify_url must
    point where the routes are actually mounted.
    """
    if prefix is not None:
        problem = SCHEMA["server"]["prefix"].check(prefix)
        if problem:
            raise SettingsError(f"embedding prefix: {problem} (got {prefix!r})")
    if isinstance(settings, Settings):
        return _with_prefix(settings, prefix)
    env_prefix = (os.environ if env is None else env).get("TORNPAY_SERVER_PREFIX")
    _check_same(prefix, env_prefix, "TORNPAY_SERVER_PREFIX")
    if isinstance(settings, (str, os.PathLike)):
        loaded = load_settings(os.fspath(settings), env=env)
        _check_same(prefix, _written_prefix_in_file(os.fspath(settings)), loaded.source)
        return _with_prefix(loaded, prefix)
    if isinstance(settings, Mapping):
        _check_same(prefix, (settings.get("server") or {}).get("prefix"), "the settings dict")
        loaded = settings_from_dict(copy.deepcopy(dict(settings)), env=env,
                                    source="<embedded dict>")
        return _with_prefix(loaded, prefix)
    raise TypeError(f"settings must be Settings, a dict or a file path, not "
                    f"{type(settings).__name__}")


def _check_same(prefix: Optional[str], written: Optional[str], where: str) -> None:
    if prefix is not None and written is not None and written != prefix:
        raise SettingsError(f"setting server.prefix: {where} says {written!r} but tornpay is "
                            f"mounted at {prefix!r}; drop one of them")


def _written_prefix_in_file(path: str) -> Optional[str]:
    import yaml

    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    return (data.get("server") or {}).get("prefix")


def _with_prefix(settings: Settings, prefix: Optional[str]) -> Settings:
    """A copy of ``settings`` with ``server.prefix`` (and a success_url under it) moved."""
    if prefix is None or settings.server.prefix == prefix:
        return settings
    old = settings.server.prefix
    moved = copy.copy(settings)
    moved.server = Section(**dict(vars(settings.server), prefix=prefix))
    # The default success_url points into the old prefix; follow the move.
    if old and settings.success_url.startswith(old + "/"):
        moved.success_url = prefix + settings.success_url[len(old):]
    return moved


def _prefixed_root_routes(ctx, modules: Iterable[str]) -> List[URLSpec]:
    """Root-level operational routes (healthz, metrics) re-homed under the prefix."""
    from tornpay.handlers import root_routes

    return root_routes(ctx, modules, under=ctx.prefix, name_prefix="tornpay-")
