"""HookManager: loading, validation, resolve_product, sync/async calls and isolation."""

import asyncio
import logging
import sys
import threading
import types
from importlib import metadata

import pytest

from helpers_orders import make_settings
from tornpay.hooks import HookManager, PluginError
from tornpay.orders.events import OrderView
from tornpay.plugins import hookimpl
from tornpay.storage.models import utcnow


def module(name, **funcs):
    mod = types.ModuleType(name)
    for key, value in funcs.items():
        setattr(mod, key, value)
    return mod


def view():
    return OrderView("T1", "p", "o", 100, "PREPAID", None, "", utcnow(), None)


@pytest.fixture
def hooks():
    manager = HookManager(make_settings())
    yield manager
    manager.close()


@pytest.fixture
def fake_modules():
    added = []

    def add(name, **funcs):
        sys.modules[name] = module(name, **funcs)
        added.append(name)
        return sys.modules[name]

    yield add
    for name in added:
        sys.modules.pop(name, None)


def test_load_settings_plugins_in_order(fake_modules):
    fake_modules("fake_one", on_paid=lambda order: None)
    fake_modules("fake_two", on_paid=lambda order: None, on_cancel=lambda order, reason: None)
    manager = HookManager(make_settings(plugins=["fake_two", "fake_one"]))
    manager.load_settings_plugins()
    manager.check()
    assert manager.plugin_names("on_paid") == ["fake_two", "fake_one"]
    assert manager.plugin_names("on_cancel") == ["fake_two"]
    assert manager.plugin_names("on_refund") == []


def test_unimportable_plugin_is_one_line():
    manager = HookManager(make_settings(plugins=["no_such_tornpay_plugin"]))
    with pytest.raises(PluginError, match=r"^plugin no_such_tornpay_plugin: cannot import"):
        manager.load_settings_plugins()


@pytest.mark.parametrize("bad", ["on_payed", "on_refunded", "resolve_products"])
def test_misspelled_hook_fails_with_one_line(hooks, bad):
    plugin = module("merchant_plugin", **{bad: lambda order: None})
    with pytest.raises(PluginError) as info:
        hooks.register(plugin)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"plugin merchant_plugin: function {bad}() is not a tornpay hook")


def test_decorated_misspelling_fails_too(hooks):
    plugin = module("decorated", on_payed=hookimpl(lambda order: None))
    with pytest.raises(PluginError, match="on_payed"):
        hooks.register(plugin)


def test_wrong_arguments_fail(hooks):
    plugin = module("wrongargs", on_paid=lambda order, app: None)
    with pytest.raises(PluginError, match=r"^plugin wrongargs: .*app"):
        hooks.register(plugin)


def test_private_helpers_are_fine(hooks):
    hooks.register(module("helpers", _on_payed=lambda: None, on_paid=lambda order: None))
    hooks.check()
    assert hooks.plugin_names("on_paid") == ["helpers"]


def test_register_object_and_decorated_functions(hooks):
    class Plugin:
        @hookimpl
        def on_paid(self, order):
            return "obj"

    hooks.register(Plugin(), name="obj")
    hooks.register(module("deco", on_paid=hookimpl(lambda order: "deco")))
    assert hooks.plugin_names("on_paid") == ["obj", "deco"]


def test_register_twice_fails(hooks):
    hooks.register(module("twice"), name="twice")
    with pytest.raises(PluginError, match="registered twice"):
        hooks.register(module("twice"), name="twice")


def test_load_entry_points(monkeypatch, fake_modules):
    fake_modules("ep_plugin", on_paid=lambda order: None)
    ep = metadata.EntryPoint(name="ep", value="ep_plugin", group="tornpay.plugins")

    def entry_points(group):
        return [ep] if group == "tornpay.plugins" else []

    monkeypatch.setattr(metadata, "entry_points", entry_points)
    manager = HookManager(make_settings())
    manager.load_entry_points()
    assert manager.plugin_names("on_paid") == ["ep"]


@pytest.mark.parametrize("allowed, loaded", [
    (None, ["ep_a", "ep_b"]),  # the default, ["*"]: every installed one
    (["*"], ["ep_a", "ep_b"]),
    ([], []),  # entry-point discovery off
    (["ep_b"], ["ep_b"]),
])
def test_entry_point_plugins_setting_and_where_each_came_from(monkeypatch, fake_modules, caplog,
                                                              allowed, loaded):
    for name in ("ep_a_mod", "ep_b_mod"):
        fake_modules(name, on_paid=lambda order: None)
    eps = [metadata.EntryPoint(name=n, value=f"{n}_mod", group="tornpay.plugins")
           for n in ("ep_a", "ep_b")]
    monkeypatch.setattr(metadata, "entry_points",
                        lambda group: eps if group == "tornpay.plugins" else [])
    top = {} if allowed is None else {"entry_point_plugins": allowed}
    manager = HookManager(make_settings(**top))
    caplog.set_level(logging.INFO, logger="tornpay.hooks")
    manager.load_entry_points()
    assert manager.plugin_names("on_paid") == loaded
    lines = [r.getMessage() for r in caplog.records if r.name == "tornpay.hooks"]
    for name in loaded:
        assert any(f"plugin {name} loaded from entry point {name} = {name}_mod" in line
                   for line in lines), lines


def test_settings_plugins_log_their_file(fake_modules, caplog, tmp_path, monkeypatch):
    (tmp_path / "beside_plugin.py").write_text("def on_paid(order):\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    caplog.set_level(logging.INFO, logger="tornpay.hooks")
    manager = HookManager(make_settings(plugins=["beside_plugin"]))
    try:
        manager.load_settings_plugins()
    finally:
        sys.modules.pop("beside_plugin", None)
    assert (f"plugin beside_plugin loaded from settings.plugins ({tmp_path}/beside_plugin.py)"
            in caplog.text)


def test_tornpay_configure_and_models(hooks):
    seen = {}

    class FakeModel:
        pass

    def configure(settings):
        seen["settings"] = settings

    hooks.register(module("configured", tornpay_configure=configure, tornpay_models=[FakeModel]))
    assert seen["settings"] is hooks.settings
    assert hooks.models() == [FakeModel]


def test_tornpay_configure_may_return_the_plugin_object(hooks):
    class PerApp:
        def resolve_product(self, product_id, openid):
            return {"body": "x", "total_fee": 1}

    hooks.register(module("factory", tornpay_configure=lambda settings: PerApp()))
    assert hooks.plugin_names("resolve_product") == ["factory"]


@pytest.mark.gen_test
async def test_hook_resolve_product_first_answer_wins(hooks):
    hooks.register(module("none", resolve_product=lambda product_id, openid: None))

    async def first(product_id, openid):
        return {"body": "First", "total_fee": 5}

    hooks.register(module("first", resolve_product=first))
    hooks.register(module("second", resolve_product=lambda product_id: {"body": "S",
                                                                        "total_fee": 9}))
    assert await hooks.resolve_product("p", "o") == {"body": "First", "total_fee": 5,
                                                     "attach": ""}


@pytest.mark.gen_test
async def test_resolve_product_none_when_nobody_knows(hooks):
    hooks.register(module("none", resolve_product=lambda product_id, openid: None))
    assert await hooks.resolve_product("p", "o") is None


@pytest.mark.parametrize("answer", [
    {"body": "", "total_fee": 1}, {"body": "x", "total_fee": 0}, {"body": "x", "total_fee": 1.5},
    {"body": "x", "total_fee": True}, {"body": "x", "total_fee": 1, "attach": "a" * 128},
    {"body": "x", "total_fee": 1, "price": 3}, ["body"], {"total_fee": 1},
])
@pytest.mark.gen_test
async def test_resolve_product_bad_answers(hooks, answer):
    hooks.register(module("bad", resolve_product=lambda product_id, openid: answer))
    with pytest.raises(PluginError, match="^plugin bad: resolve_product"):
        await hooks.resolve_product("p", "o")


@pytest.mark.gen_test
async def test_resolve_product_raising_is_a_plugin_error(hooks):
    def broken(product_id, openid):
        raise KeyError("db down")

    hooks.register(module("broken", resolve_product=broken))
    with pytest.raises(PluginError, match="^plugin broken: resolve_product raised KeyError"):
        await hooks.resolve_product("p", "o")


@pytest.mark.gen_test
async def test_hook_on_order_created_isolated(hooks, caplog):
    got = []

    def boom(order):
        raise RuntimeError("boom")

    async def ok(order):
        got.append(order.out_trade_no)

    hooks.register(module("boom", on_order_created=boom))
    hooks.register(module("ok", on_order_created=ok))
    await hooks.notify_order_created(view())
    assert got == ["T1"]
    assert "plugin boom: on_order_created failed" in caplog.text


@pytest.mark.gen_test
async def test_sync_hook_runs_in_a_thread_and_async_on_the_loop(hooks):
    threads = {}

    def sync_hook(order):
        threads["sync"] = threading.current_thread()

    async def async_hook(order):
        threads["async"] = threading.current_thread()

    hooks.register(module("s", on_paid=sync_hook))
    hooks.register(module("a", on_paid=async_hook))
    await hooks.call_plugin("on_paid", "s", order=view())
    await hooks.call_plugin("on_paid", "a", order=view())
    assert threads["sync"] is not threading.main_thread()
    assert threads["async"] is threading.main_thread()


@pytest.mark.gen_test
async def test_blocking_sync_plugin_does_not_freeze_the_loop(hooks):
    release = threading.Event()
    hooks.register(module("slow", on_paid=lambda order: release.wait(5)))
    call = asyncio.ensure_future(hooks.call_plugin("on_paid", "slow", order=view()))
    ticks = 0
    for _ in range(5):
        await asyncio.sleep(0.01)
        ticks += 1
    assert ticks == 5 and not call.done()
    release.set()
    assert await call is True


@pytest.mark.gen_test
async def test_call_plugin_passes_only_the_arguments_asked_for(hooks):
    hooks.register(module("lean", on_cancel=lambda reason: reason))
    assert await hooks.call_plugin("on_cancel", "lean", order=view(), reason="expired") == \
        "expired"


@pytest.mark.gen_test
async def test_call_plugin_unknown_plugin(hooks):
    with pytest.raises(PluginError, match="not loaded"):
        await hooks.call_plugin("on_paid", "ghost", order=view())


@pytest.mark.gen_test
async def test_hung_sync_plugin_cannot_take_the_whole_pool():
    from tornpay.hooks import PluginBusy

    manager = HookManager(make_settings(), max_workers=4)  # one thread per plugin
    release = threading.Event()
    manager.register(module("stuck", on_paid=lambda order: release.wait(5)))
    manager.register(module("fine", on_paid=lambda order: "ok"))
    try:
        with pytest.raises(asyncio.TimeoutError):
            await manager.call_plugin("on_paid", "stuck", timeout=0.05, order=view())
        with pytest.raises(PluginBusy, match="^plugin stuck: earlier calls"):
            await manager.call_plugin("on_paid", "stuck", timeout=0.05, order=view())
        assert await manager.call_plugin("on_paid", "fine", timeout=1, order=view()) == "ok"
        release.set()
        assert await manager.call_plugin("on_paid", "stuck", timeout=1, order=view()) is True
    finally:
        release.set()
        manager.close()


@pytest.mark.gen_test
async def test_many_calls_to_one_sync_plugin_queue_for_its_threads():
    manager = HookManager(make_settings(), max_workers=4)
    manager.register(module("busy", on_paid=lambda order: order.out_trade_no))
    try:
        results = await asyncio.gather(*(manager.call_plugin("on_paid", "busy", timeout=2,
                                                             order=view()) for _ in range(30)))
        assert results == ["T1"] * 30
    finally:
        manager.close()


async def _held_lane():
    """A one-thread Lane whose thread waits on a gate, and a list a later call would fill."""
    from tornpay.hookcall import Lane

    lane, gate, made = Lane("one", 1), threading.Event(), []
    first = asyncio.ensure_future(lane.call(gate.wait, {"timeout": 5}, 5, "busy"))
    await asyncio.sleep(0.05)  # the lane's one thread is held
    return lane, gate, made, first


@pytest.mark.gen_test(timeout=30)
async def test_a_plain_call_still_queued_at_close_is_cancelled_and_never_made():
    lane, gate, made, first = await _held_lane()
    second = asyncio.ensure_future(lane.call(lambda: made.append(1), {}, 5, "busy"))
    await asyncio.sleep(0.05)
    lane.close()  # the second call never starts
    with pytest.raises(asyncio.CancelledError):
        await second
    gate.set()
    assert await first is True
    await asyncio.sleep(0.05)
    assert made == []
    with pytest.raises(PluginError, match="shut down"):
        await lane.call(lambda: 1, {}, 5, "busy")


@pytest.mark.gen_test(timeout=30)
async def test_a_call_that_waited_too_long_for_a_thread_is_busy_and_never_made():
    from tornpay.hookcall import PluginBusy

    lane, gate, made, first = await _held_lane()
    with pytest.raises(PluginBusy, match="^held$"):
        await lane.call(lambda: made.append(1), {}, 0.1, "held")
    gate.set()
    assert await first is True
    assert await lane.call(lambda: "next", {}, 1, "busy") == "next"
    assert made == []  # the queued call was dropped when its caller gave up
    lane.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_call_gets_its_whole_timeout_from_when_a_thread_takes_it():
    # Queued 0.2 s behind another call, then 0.3 s of work: inside a 0.4 s timeout,
    # because the call's own time starts when it starts.
    import time as _time

    from tornpay.hookcall import Lane

    def nap(secs):
        _time.sleep(secs)

    lane = Lane("one", 1)
    first = asyncio.ensure_future(lane.call(nap, {"secs": 0.2}, 1, "busy"))
    await asyncio.sleep(0)
    assert await lane.call(lambda: (_time.sleep(0.3), "done")[1], {}, 0.4, "busy") == "done"
    await first
    with pytest.raises(asyncio.TimeoutError):
        await lane.call(nap, {"secs": 0.3}, 0.1, "busy")
    lane.close()


@pytest.mark.gen_test
async def test_thread_calls_that_finish_together_wake_the_loop_once(monkeypatch):
    # Each plain-def call used to cost its own loop wake-up (a pipe write);
    # calls finishing before the loop runs again are now handed over together.
    import time as _time

    from tornpay.hookcall import Lane

    loop = asyncio.get_running_loop()
    wakeups = []
    real = loop.call_soon_threadsafe
    monkeypatch.setattr(loop, "call_soon_threadsafe",
                        lambda *a, **k: (wakeups.append(a), real(*a, **k))[1])
    lane = Lane("eight", 8)
    started = threading.Barrier(9)

    def call(i):
        started.wait(5)
        return i * 2

    calls = [asyncio.ensure_future(lane.call(call, {"i": i}, 5, "busy")) for i in range(8)]
    await asyncio.sleep(0)  # every call queued
    started.wait(5)
    _time.sleep(0.3)  # the loop busy elsewhere while all eight finish
    assert await asyncio.gather(*calls) == [i * 2 for i in range(8)]
    assert len(wakeups) == 1
    lane.close()
