"""HookManager: loads plugins (settings, entry points, code), checks them, calls each isolated."""

import asyncio
import importlib
import inspect
import logging
from typing import Any, Callable, Dict, List, Optional

import pluggy

from tornpay import plugin_sources
from tornpay.hookcall import Lane, PluginBusy, PluginError, call_async  # noqa: F401
from tornpay.orders.events import product_from_answer
from tornpay.plugins import hookspecs
from tornpay.plugins.hookspecs import HOOK_NAMES

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "tornpay.plugins"
# Names that look like a hook: a public one not in the spec is a typo (on_payed).
HOOK_PREFIXES = ("on_", "resolve_")


class _Manager(pluggy.PluginManager):
    """pluggy manager that also accepts undecorated functions named after a hook."""

    def parse_hookimpl_opts(self, plugin, name):
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is None and name in HOOK_NAMES and inspect.isroutine(getattr(plugin, name, None)):
            # SPEC §6: "a module that defines functions named after hooks".
            opts = {"wrapper": False, "hookwrapper": False, "optionalhook": False,
                    "tryfirst": False, "trylast": False, "specname": None}
        return opts


class HookManager:
    """One per application: the registered plugins and the way tornpay calls them."""

    def __init__(self, settings: Any = None, max_workers: int = 16):
        self.settings = settings
        self._pm = _Manager("tornpay")
        self._pm.add_hookspecs(hookspecs)
        self._names: List[str] = []  # registration order (pluggy calls LIFO)
        self._objects: Dict[str, Any] = {}
        self._sources: List[Any] = []  # what was passed to register (before tornpay_configure)
        # Plain (sync) hook functions run on their plugin's own threads (a
        # quarter of max_workers each, started when needed) so a blocking
        # plugin can freeze neither the IOLoop nor another plugin.
        self._per_plugin_threads = max(1, max_workers // 4)
        self._lanes: Dict[str, Lane] = {}

    # -- loading -------------------------------------------------------------

    def load_settings_plugins(self, settings: Any = None) -> None:
        """Import and register every dotted module name in ``settings.plugins``, in order."""
        settings = settings if settings is not None else self.settings
        if self.settings is None:
            self.settings = settings
        for dotted in list(getattr(settings, "plugins", None) or ()):
            try:
                module = importlib.import_module(dotted)
            except Exception as exc:
                raise PluginError(f"plugin {dotted}: cannot import it ({type(exc).__name__}: "
                                  f"{exc})") from None
            self.register(module, name=dotted)
            logger.info("plugin %s loaded from settings.plugins (%s)", dotted,
                        plugin_sources.describe_module(module))

    def load_entry_points(self, group: str = ENTRY_POINT_GROUP) -> None:
        """Register the ``group`` entry-point plugins that ``entry_point_plugins`` allows."""
        allowed = getattr(self.settings, "entry_point_plugins", None)
        for ep in plugin_sources.selected_entry_points(group, allowed):
            try:
                plugin = ep.load()
            except Exception as exc:
                raise PluginError(f"plugin {ep.name} (entry point {ep.value}): cannot load it "
                                  f"({type(exc).__name__}: {exc})") from None
            if any(obj is plugin for obj in self._sources):
                logger.debug("plugin %s already registered from settings", ep.name)
                continue
            self.register(plugin, name=ep.name)
            logger.info("plugin %s loaded from %s (%s)", ep.name,
                        plugin_sources.describe_entry_point(ep),
                        plugin_sources.describe_module(plugin))

    def register(self, plugin: Any, name: Optional[str] = None) -> str:
        """Register a module or object; return its name. Raises :class:`PluginError`.

        Optional plugin attributes: ``tornpay_models`` (peewee models whose
        tables are created at start) and ``tornpay_configure(settings)``, called
        here; an object it returns is registered in place of the module.
        """
        name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
        if name in self._objects:
            raise PluginError(f"plugin {name}: registered twice")
        source = plugin
        configure = getattr(plugin, "tornpay_configure", None)
        if callable(configure):
            try:
                replacement = configure(self.settings)
            except Exception as exc:
                raise PluginError(f"plugin {name}: tornpay_configure failed "
                                  f"({type(exc).__name__}: {exc})") from None
            if replacement is not None:
                # Per-application state lives in the returned object, not the module.
                replacement.tornpay_models = list(getattr(plugin, "tornpay_models", ()))
                plugin = replacement
        self._check_names(plugin, name)
        try:
            self._pm.register(plugin, name=name)
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"plugin {name}: {_first_line(exc)}") from None
        self._names.append(name)
        self._objects[name] = plugin
        self._sources.append(source)
        return name

    def _check_names(self, plugin: Any, name: str) -> None:
        for attr in dir(plugin):
            if not attr.startswith(HOOK_PREFIXES):
                continue
            value = getattr(plugin, attr, None)
            if not inspect.isroutine(value):
                continue
            if attr not in HOOK_NAMES:
                raise PluginError(
                    f"plugin {name}: function {attr}() is not a tornpay hook "
                    f"(hooks are: {', '.join(HOOK_NAMES)})")
            allowed = _argnames(getattr(hookspecs, attr))
            extra = [a for a in _argnames(value) if a not in allowed]
            if extra:
                raise PluginError(
                    f"plugin {name}: {attr}() asks for {', '.join(extra)}, but the hook "
                    f"only passes {attr}({', '.join(allowed)})")

    def check(self) -> None:
        """Validate the whole set once everything is registered, and log what was loaded."""
        try:
            self._pm.check_pending()
        except pluggy.PluginValidationError as exc:
            raise PluginError(_first_line(exc)) from None
        for hook in HOOK_NAMES:
            for impl in getattr(self._pm.hook, hook).get_hookimpls():
                if inspect.isgeneratorfunction(impl.function):
                    raise PluginError(f"plugin {impl.plugin_name}: {hook} must not be a "
                                      "generator")
        if not self.plugin_names("resolve_product"):
            logger.warning("no plugin implements resolve_product: every checkout will 404")
        for name in self._names:
            hooks = [h for h in HOOK_NAMES if self._impl(h, name) is not None]
            logger.info("plugin %s: %s", name, ", ".join(hooks) or "no hooks")

    # -- introspection ---------------------------------------------------------

    def plugin_names(self, hook: str) -> List[str]:
        """Names of the plugins implementing ``hook``, in registration order."""
        return [n for n in self._names if self._impl(hook, n) is not None]

    def get_plugin(self, name: str) -> Any:
        return self._objects.get(name)

    def offered(self, attribute: str) -> list:
        """What plugins offer beside hooks: each plugin's ``attribute`` where it has one."""
        found = (getattr(self._objects[name], attribute, None) for name in self._names)
        return [value for value in found if value is not None]

    def models(self) -> list:
        """Peewee models that plugins list in ``tornpay_models`` (their tables are created)."""
        every = [model for models in self.offered("tornpay_models") for model in models or ()]
        return list(dict.fromkeys(every))  # once each, in registration order

    def _impl(self, hook: str, plugin_name: str):
        caller = getattr(self._pm.hook, hook)
        for impl in caller.get_hookimpls():
            if impl.plugin_name == plugin_name:
                return impl
        return None

    # -- calling ----------------------------------------------------------------

    async def call_plugin(self, hook: str, plugin_name: str, *, timeout: Optional[float] = None,
                          **kwargs: Any) -> Any:
        """Call one plugin's ``hook``: await it if async, else run it in a worker thread.

        ``timeout`` bounds the call (``asyncio.TimeoutError``) and, for a plain
        function, separately the wait for one of the plugin's threads
        (:class:`PluginBusy`), so a call never takes more than twice ``timeout``.
        """
        impl = self._impl(hook, plugin_name)
        if impl is None:
            raise PluginError(f"plugin {plugin_name}: not loaded or has no {hook}")
        # Like pluggy: an implementation may take a subset of the spec's arguments.
        args = {k: kwargs[k] for k in impl.argnames}
        func: Callable = impl.function
        if inspect.iscoroutinefunction(func):
            return await call_async(func, args, timeout)
        # A timed-out thread cannot be stopped: each plugin has threads of its
        # own so a hung plugin cannot take the others' away.
        lane = self._lanes.get(plugin_name)
        if lane is None:
            lane = self._lanes[plugin_name] = Lane(plugin_name, self._per_plugin_threads)
        result = await lane.call(
            func, args, timeout,
            f"plugin {plugin_name}: earlier calls still hold its {self._per_plugin_threads} "
            f"worker thread(s)")
        if inspect.isawaitable(result):
            result = await asyncio.wait_for(result, timeout)
        return result

    async def resolve_product(self, product_id: str, openid: str) -> Optional[dict]:
        """First non-None ``resolve_product`` answer in registration order, checked."""
        for name in self.plugin_names("resolve_product"):
            try:
                answer = await self.call_plugin("resolve_product", name, timeout=self._timeout(),
                                                product_id=product_id, openid=openid)
            except PluginError:
                raise
            except Exception as exc:
                logger.exception("plugin %s: resolve_product(%r) raised", name, product_id)
                raise PluginError(f"plugin {name}: resolve_product raised "
                                  f"{type(exc).__name__}") from exc
            if answer is not None:
                try:
                    return product_from_answer(answer)
                except ValueError as exc:
                    raise PluginError(f"plugin {name}: resolve_product {exc}") from None
        return None

    async def notify_order_created(self, order_view: Any) -> None:
        """Tell every ``on_order_created`` plugin, concurrently; failures are only logged."""
        names = self.plugin_names("on_order_created")
        await asyncio.gather(*(self._call_isolated("on_order_created", n, order=order_view)
                               for n in names))

    async def _call_isolated(self, hook: str, name: str, **kwargs: Any) -> None:
        try:
            await self.call_plugin(hook, name, timeout=self._timeout(), **kwargs)
        except Exception:
            logger.exception("plugin %s: %s failed (ignored)", name, hook)

    def _timeout(self) -> Optional[float]:
        return getattr(getattr(self.settings, "deliveries", None), "timeout_seconds", None)

    def close(self) -> None:
        """Shut the worker threads down (without waiting for a hung plugin)."""
        lanes, self._lanes = list(self._lanes.values()), {}
        for lane in lanes:
            lane.close()


def _argnames(func: Callable) -> List[str]:
    # Parameters without a default (defaults are never filled in, as in pluggy).
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in params if p.default is p.empty
            and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
