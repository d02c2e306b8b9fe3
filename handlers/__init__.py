"""Route aggregation: each module's ``default_handlers`` (prefixed) and ``root_handlers``."""

import importlib
from typing import Iterable, List

from tornado.web import URLSpec

# Route families, one module each.
MODULES = ("health", "metrics", "shop", "checkout", "pay", "orders", "notify", "refunds",
           "admin_auth", "admin_orders", "admin_ops", "api")
# Families a setting switches on: while it is off they are not even imported,
# so a server without the console never loads it (nor its memory).
SWITCHED_ON_BY = {name: (lambda settings: bool(settings.admin.enabled))
                  for name in ("admin_auth", "admin_orders", "admin_ops")}


def _modules(names: Iterable[str], ctx):
    for name in names:
        switch = SWITCHED_ON_BY.get(name)
        if switch is None or switch(ctx.settings):
            yield importlib.import_module(f"{__name__}.{name}")


def root_routes(ctx, names: Iterable[str] = MODULES, under: str = "",
                name_prefix: str = "") -> List[URLSpec]:
    """URLSpecs for the ``root_handlers`` of ``names`` (``/healthz``, ``/metrics``, ``/``).

    An embedding estate owns its root, so it re-homes them ``under`` the prefix.
    """
    return [URLSpec(under + pattern, handler, {"ctx": ctx}, name=name_prefix + route_name)
            for module in _modules(names, ctx)
            for pattern, handler, route_name in getattr(module, "root_handlers", ())]


def routes(ctx, prefix=None, include_root=True) -> List[URLSpec]:
    """Return URLSpecs for tornpay's routes, bound to ``ctx``, under ``prefix``.

    ``default_handlers`` patterns are relative to the prefix; ``root_handlers``
    (``/healthz``, the demo shop at ``/``) are absolute and can be left out
    when tornpay is embedded in an estate that owns its root.
    """
    prefix = ctx.settings.server.prefix if prefix is None else prefix
    # A module may offer ``enabled(ctx)``: the console is mounted only when switched on.
    specs = [URLSpec(prefix + pattern, handler, {"ctx": ctx}, name=route_name)
             for module in _modules(MODULES, ctx) if getattr(module, "enabled", bool)(ctx)
             for pattern, handler, route_name in getattr(module, "default_handlers", ())]
    if include_root:
        specs.extend(root_routes(ctx))
    return specs
