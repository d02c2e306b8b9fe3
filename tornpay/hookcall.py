"""One plugin call: ``async def`` awaited with a timeout, plain ``def`` on its plugin's threads."""

import asyncio
import queue
import threading
import time
import weakref
from typing import Any, Callable, List, Optional

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


class _Call:
    __slots__ = ("func", "args", "future", "handoff", "started", "abandoned", "timer")

    def __init__(self, func: Callable, args: dict, future: asyncio.Future, handoff: "_Handoff"):
        self.func, self.args, self.future, self.handoff = func, args, future, handoff
        self.started: Optional[float] = None  # time.monotonic() when a thread took it
        self.abandoned = False  # the caller gave up before a thread took it: never run
        self.timer: Optional[asyncio.TimerHandle] = None


_STOP = object()


class Lane:
    """One plugin's worker threads (at most ``threads``, started when needed) and their queue.

    Why not a ThreadPoolExecutor and a slot semaphore: a call then cost a
    semaphore turn, a Future with its condition and a thread wake-up each,
    ~37 us of CPU before the plugin ran; here the threads take calls from one
    queue without waking the loop, and hand back finished calls in batches
    (~7 us; bench/README.md). A hung plugin holds only its own lane.
    """

    def __init__(self, name: str, threads: int):
        self.name, self.max_threads = name, max(1, threads)
        self._queue: "queue.SimpleQueue" = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = self._idle = self._waiting = 0
        self.closed = False

    async def call(self, func: Callable, args: dict, timeout: Optional[float], busy: str) -> Any:
        """``func(**args)`` on one of the lane's threads.

        ``timeout`` bounds the wait for a thread (:class:`PluginBusy`, saying
        ``busy``) and, separately, the call (``asyncio.TimeoutError``). A call
        whose caller gave up before a thread took it is never made.
        """
        if self.closed:
            raise PluginError(f"plugin {self.name}: its worker threads are shut down")
        loop = asyncio.get_running_loop()
        item = _Call(func, args, loop.create_future(), _handoff(loop))
        self._put(item)
        if timeout is not None:
            item.timer = loop.call_later(timeout, self._waited, item, timeout, busy)
        try:
            return await item.future
        finally:
            if item.timer is not None:
                item.timer.cancel()
            with self._lock:
                item.abandoned = item.started is None

    def _put(self, item) -> None:
        with self._lock:
            self._waiting += 1
            start = self._waiting > self._idle and self._threads < self.max_threads
            if start:
                self._threads += 1
        if start:
            threading.Thread(target=self._work, daemon=True,
                             name=f"tornpay-plugin-{self.name}"[:40]).start()
        self._queue.put(item)

    def _waited(self, item: _Call, timeout: float, busy: str) -> None:
        # On the loop, ``timeout`` after the call was queued: not started is
        # PluginBusy; started, the call itself gets ``timeout`` from its start.
        if item.future.done():
            return
        with self._lock:
            item.abandoned = item.started is None
            started = item.started
        if started is None:
            item.future.set_exception(PluginBusy(busy))
            return
        remaining = started + timeout - time.monotonic()
        if remaining <= 0:
            item.future.set_exception(asyncio.TimeoutError())
            return
        item.timer = item.future.get_loop().call_later(remaining, _expire, item)

    def _work(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            item = self._queue.get()
            with self._lock:
                self._idle -= 1
                self._waiting -= 1
                if item is _STOP:
                    self._threads -= 1
                    return
                if item.abandoned:
                    continue
                item.started = time.monotonic()
            item.handoff.add((item.future, *_run(item.func, item.args)))

    def close(self) -> None:
        """Cancel the calls no thread has taken; each thread ends after its current call."""
        self.closed = True
        pending: List[_Call] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not _STOP:
                pending.append(item)
        with self._lock:
            self._waiting -= len(pending)
            for item in pending:
                item.abandoned = True
            threads = self._threads
        for item in pending:
            item.handoff.cancel(item.future)
        for _ in range(threads):
            self._put_stop()

    def _put_stop(self) -> None:
        with self._lock:
            self._waiting += 1
        self._queue.put(_STOP)


def _expire(item: _Call) -> None:
    if not item.future.done():
        item.future.set_exception(asyncio.TimeoutError())


def _run(func: Callable, args: dict) -> tuple:
    try:
        return True, func(**args)
    except BaseException as exc:  # handed to the caller, who logs it
        return False, exc
    finally:
        # peewee connections are per thread: close the one this call may have
        # opened, so worker threads never keep stale connections or transactions.
        from tornpay.storage.db import database_proxy

        if database_proxy.obj is not None and not database_proxy.is_closed():
            database_proxy.close()


class _Handoff:
    """Calls that finished on worker threads, handed to their loop in batches.

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
        self._wake(self._drain)

    def cancel(self, future: asyncio.Future) -> None:
        self._wake(future.cancel)

    def _wake(self, callback: Callable) -> None:
        try:
            self.loop.call_soon_threadsafe(callback)
        except RuntimeError:  # the loop is closed: nobody waits any more
            pass

    def _drain(self) -> None:
        with self.lock:
            items, self.items = self.items, []
        for future, ok, value in items:
            if future.done():  # the caller gave up (timeout, cancel)
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)


_handoffs: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Handoff]" = \
    weakref.WeakKeyDictionary()


def _handoff(loop: asyncio.AbstractEventLoop) -> _Handoff:
    handoff = _handoffs.get(loop)
    if handoff is None:
        handoff = _handoffs[loop] = _Handoff(loop)
    return handoff
