"""One plugin call: an ``async def`` awaited with a timeout, a plain ``def`` on a worker thread."""

import asyncio
import threading
import weakref
from typing import Any, Callable

# Python 3.11+: a timeout around an await without a task of its own per call.
_timeout = getattr(asyncio, "timeout", None)


class PluginError(Exception):
    """A plugin problem, as one line naming the plugin (fails the start or the checkout)."""


class PluginBusy(PluginError):
    """A plugin's earlier calls still hold its worker threads (it hangs); retry later."""


async def call_async(func: Callable, args: dict, timeout) -> Any:
    """Await ``func(**args)``; ``asyncio.TimeoutError`` after ``timeout`` seconds."""
    if _timeout is None:
        return await asyncio.wait_for(func(**args), timeout)
    async with _timeout(timeout):
        return await func(**args)


async def call_in_thread(func: Callable, args: dict, timeout, slots: asyncio.Semaphore,
                         executor: Callable, busy: str) -> Any:
    """Run ``func(**args)`` on ``executor()`` once one of ``slots`` is free.

    ``timeout`` bounds the wait for a slot (:class:`PluginBusy`, saying ``busy``)
    and, separately, the call (``asyncio.TimeoutError``). The slot is freed when
    the thread is, not when the caller gives up.
    """
    if slots.locked():
        try:
            await asyncio.wait_for(slots.acquire(), timeout)
        except asyncio.TimeoutError:
            raise PluginBusy(busy) from None
    else:
        await slots.acquire()  # a free slot: taken at once
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    try:
        future = executor().submit(_call_in_thread, func, args)
    except BaseException:
        slots.release()
        raise
    handoff = _handoffs.get(loop)
    if handoff is None:
        handoff = _handoffs[loop] = _Handoff(loop)
    future.add_done_callback(lambda f: handoff.add((slots, f, done)))
    if _timeout is None:
        return await asyncio.wait_for(done, timeout)
    async with _timeout(timeout):  # cheaper than wait_for's extra future per call
        return await done


class _Handoff:
    """Calls that finished on worker threads, handed to the loop in batches.

    One wake-up of the loop (``call_soon_threadsafe``, a write to its pipe)
    for all the calls that finish before it runs, rather than one per call.
    """

    __slots__ = ("loop", "lock", "items", "__weakref__")

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop, self.lock, self.items = loop, threading.Lock(), []

    def add(self, item: tuple) -> None:
        with self.lock:
            self.items.append(item)
            if len(self.items) > 1:
                return  # a drain is already scheduled and will take this one too
        try:
            self.loop.call_soon_threadsafe(self._drain)
        except RuntimeError:  # the loop is closed: nobody waits any more
            pass

    def _drain(self) -> None:
        with self.lock:
            items, self.items = self.items, []
        for slots, future, done in items:
            _thread_done(slots, future, done)


_handoffs: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Handoff]" = \
    weakref.WeakKeyDictionary()


def _thread_done(slots: asyncio.Semaphore, future, done: asyncio.Future) -> None:
    # On the loop: free the plugin's slot, then pass the thread's outcome on
    # (unless the caller gave up waiting: ``done`` is cancelled then).
    slots.release()
    if done.done():
        return
    if future.cancelled():  # the pool shut down before the call started
        done.cancel()
        return
    error = future.exception()
    if error is not None:
        done.set_exception(error)
    else:
        done.set_result(future.result())


def _call_in_thread(func: Callable, args: dict) -> Any:
    try:
        return func(**args)
    finally:
        # peewee connections are per thread: close the one this call may have
        # opened, so pool threads never keep stale connections or transactions.
        from tornpay.storage.db import database_proxy

        if database_proxy.obj is not None and not database_proxy.is_closed():
            database_proxy.close()
