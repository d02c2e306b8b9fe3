"""Route aggregation: every handler module's ``default_handlers`` (under the prefix) and ``root_handlers``."""

import importlib

from tornado.web import URLSpec

# Route families, one module each. Missing modules are a programming error.
MODULES = ("health", "metrics", "shop", "checkout", "pay", "orders", "notify", "refunds")


def routes(ctx, prefix=None, include_root=True):
    """Return URLSpecs for tornpay's routes, bound to ``ctx``, under ``prefix``.

    ``default_handlers`` patterns are relative to the prefix; ``root_handlers``
    (``/healthz``, the demo shop at ``/``) are absolute and can be left out
    when tornpay is embedded in an estate that owns its root.
    """
    prefix = ctx.settings.server.prefix if prefix is None else prefix
    specs = []
    for name in MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{name}":
                continue  # route family not built yet
            raise
        for pattern, handler, route_name in getattr(module, "default_handlers", ()):
            specs.append(URLSpec(prefix + pattern, handler, {"ctx": ctx}, name=route_name))
        if include_root:
            for pattern, handler, route_name in getattr(module, "root_handlers", ()):
                specs.append(URLSpec(pattern, handler, {"ctx": ctx}, name=route_name))
    return specs
