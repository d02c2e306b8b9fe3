"""Database work off the IOLoop: writer threads with group commit, reader threads, bounded waits."""

import asyncio
import collections
import logging
import queue
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, List, Optional

import peewee

from tornpay.storage.db import is_postgres, is_sqlite

logger = logging.getLogger(__name__)

GROUP_MAX = 64  # jobs made durable by one commit at most
# The writer's own SQLite busy wait is short: it retries BEGIN IMMEDIATE until
# the earliest deadline of its batch instead, so a queued job never waits
# twice and a job past its deadline is dropped before it touches anything.
SQLITE_WRITER_BUSY_MS = 50
SWITCH_INTERVAL = 0.001  # seconds, see DbExecutor._start
_STOP = object()


class DbBusy(Exception):
    """The database could not be had within the wait bound; nothing was written."""


class _Job:
    __slots__ = ("fn", "args", "kwargs", "group", "deadline", "loop", "future")

    def __init__(self, fn, args, kwargs, group, deadline, loop, future):
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.group, self.deadline, self.loop, self.future = group, deadline, loop, future

    def run(self):
        return self.fn(*self.args, **self.kwargs)


def _settle(outcomes) -> None:
    # On the loop thread: one wake-up resolves a whole batch.
    for job, ok, value in outcomes:
        if job.future.done():  # the waiter was cancelled; the work stands
            continue
        if ok:
            job.future.set_result(value)
        else:
            job.future.set_exception(value)


class DbExecutor:
    """Run plain transaction functions in threads and await them from the IOLoop.

    ``write(fn, ...)``: ``fn`` runs inside a transaction the executor opens
    (``fn``'s own ``db.atomic()`` becomes a savepoint). With ``group=True``
    jobs queued together share one transaction and one commit; when one raises,
    the batch is rolled back and re-run without it (the failing job alone, so
    its failure is its own), and if the commit itself fails every job is re-run
    alone. Each waiter is answered only after its own change has committed.

    ``read(fn, ...)``: ``fn`` runs on a reader thread with its own connection
    and no transaction (SQLite's WAL lets it read while a writer holds the
    lock).

    A job that has not started within ``wait_timeout`` seconds raises
    ``DbBusy`` without running; SQLite's lock and PostgreSQL's ``lock_timeout``
    are bounded by the same figure.
    """

    def __init__(self, db: peewee.Database, *, wait_timeout: float = 3.0,
                 writers: int = 8, readers: int = 2, group_max: int = GROUP_MAX):
        self.db = db
        self.sqlite = is_sqlite(db)
        self.wait_timeout = wait_timeout
        # One writer for SQLite (one write lock per file anyway); on PostgreSQL
        # several, so a slow or distant server is waited on in parallel.
        self.writers = 1 if self.sqlite else max(1, writers)
        # PostgreSQL answers over the network: a group would run its jobs' round
        # trips one after another on one connection while the other writers
        # idle, so there each job has its own transaction and the pool gives
        # the parallelism (and PostgreSQL flushes concurrent commits together).
        self.group_max = group_max if self.sqlite else 1
        self._queue: "queue.SimpleQueue" = queue.SimpleQueue()
        self._threads: List[threading.Thread] = []
        self._readers: Optional[ThreadPoolExecutor] = None
        self._n_readers = max(1, readers)
        self._lock = threading.Lock()
        self.closed = False
        self.commits = 0  # transactions committed by writers (a group counts once)
        self.jobs = 0  # write jobs run
        self.submitted = 0  # write jobs handed in (counted on the loop)

    # -- the loop side --------------------------------------------------

    async def write(self, fn: Callable, *args, group: bool = False,
                    timeout: Optional[float] = None, **kwargs) -> Any:
        """Run ``fn(*args, **kwargs)`` in a writer's transaction; its result once committed."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        deadline = time.monotonic() + (self.wait_timeout if timeout is None else timeout)
        self._start()
        self.submitted += 1
        self._queue.put(_Job(fn, args, kwargs, group, deadline, loop, future))
        return await future

    async def read(self, fn: Callable, *args, timeout: Optional[float] = None, **kwargs) -> Any:
        """Run ``fn(*args, **kwargs)`` on a reader thread (no transaction)."""
        deadline = time.monotonic() + (self.wait_timeout if timeout is None else timeout)

        def run():
            if time.monotonic() > deadline:
                raise DbBusy("no database reader free in time")
            return fn(*args, **kwargs)

        self._start()
        return await asyncio.wrap_future(self._readers.submit(run))

    def _start(self) -> None:
        if self._threads or self.closed:
            if self.closed:
                raise DbBusy("the database executor is stopped")
            return
        with self._lock:
            if self._threads:
                return
            # A writer gives up the GIL at every SQLite call and must get it back
            # from the busy loop thread: switch more often than every 5 ms so a
            # batch is not stretched by the loop's turns (latency, not CPU).
            sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL))
            self._readers = ThreadPoolExecutor(self._n_readers,
                                               thread_name_prefix="tornpay-db-read")
            for i in range(self.writers):
                thread = threading.Thread(target=self._writer_main, daemon=True,
                                          name=f"tornpay-db-write-{i}")
                thread.start()
                self._threads.append(thread)

    def close(self, wait: float = 5.0) -> None:
        """Finish queued work, stop the threads and close their connections."""
        if self.closed:
            return
        self.closed = True
        if self.jobs:
            logger.info("database writers: %d jobs in %d commits", self.jobs, self.commits)
        for _ in self._threads:
            self._queue.put(_STOP)
        for thread in self._threads:
            thread.join(wait)
        if self._readers is not None:
            # Close each reader's connection from its own thread (they are per thread).
            for _ in range(self._n_readers):
                self._readers.submit(self._close_connection)
            self._readers.shutdown(wait=True)

    def _close_connection(self) -> None:
        try:
            if not self.db.is_closed():
                self.db.close()
        except Exception:  # pragma: no cover - closing a broken connection
            logger.debug("closing a database connection failed", exc_info=True)

    # -- the writer threads -----------------------------------------------

    def _writer_main(self) -> None:
        deferred: "collections.deque[_Job]" = collections.deque()
        while True:
            job = deferred.popleft() if deferred else self._queue.get()
            if job is _STOP:
                break
            batch = [job]
            if job.group:
                stop = self._gather(batch, deferred)
                if stop:
                    deferred.append(_STOP)
            try:
                self._run_batch(batch)
            except BaseException:  # pragma: no cover - a bug here must not kill the writer
                logger.exception("database writer: batch failed unexpectedly")
        self._close_connection()

    def _gather(self, batch: list, deferred) -> bool:
        """Add queued group jobs to ``batch``; others wait in ``deferred``. True on stop."""
        while len(batch) < self.group_max:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return False
            if job is _STOP:
                return True
            (batch if job.group else deferred).append(job)
        return False

    def _run_batch(self, batch: List[_Job]) -> None:
        now = time.monotonic()
        live = [job for job in batch if job.deadline >= now]
        expired = [(job, False, DbBusy("database busy; nothing written"))
                   for job in batch if job.deadline < now]
        if expired:
            self._answer(expired)
        if not live:
            return
        failed = _GroupFailure(-1, None)
        try:
            outcomes = self._run_in_transaction(live)
        except _GroupFailure as exc:
            failed = exc
        except Exception as exc:  # BEGIN or COMMIT: nothing of the batch was kept
            failed = _GroupFailure(-1, exc)
        else:
            self._answer(outcomes)
            return
        self._recover(live, failed)

    def _recover(self, live: List[_Job], failed: "_GroupFailure") -> None:
        """After a rolled-back batch: the failing job alone, the others again without it."""
        exc, index = failed.error, failed.index
        if len(live) == 1 or isinstance(exc, DbBusy):
            self._answer([(job, False, exc) for job in live])
            return
        if index < 0:
            logger.warning("group commit of %d failed (%s); each is retried alone", len(live),
                           exc)
            for job in live:
                self._run_batch([job])
            return
        # Jobs before the failing one ran fine and run again together; the
        # failing one alone (its failure is its own); those after it together.
        for part in (live[:index], [live[index]], live[index + 1:]):
            if part:
                self._run_batch(part)

    def _run_in_transaction(self, live: List[_Job]):
        # No savepoint per job: a failing job rolls the whole batch back and
        # ``_recover`` re-runs the others (failures are rare; savepoints are not free).
        outcomes = []
        with self._transaction(min(job.deadline for job in live)):
            if len(live) == 1:
                outcomes.append((live[0], True, live[0].run()))
            else:
                for index, job in enumerate(live):
                    try:
                        outcomes.append((job, True, job.run()))
                    except Exception as exc:
                        raise _GroupFailure(index, exc) from exc
        self.commits += 1
        self.jobs += len(live)
        return outcomes

    def _transaction(self, deadline: float):
        if not self.sqlite:
            self._prepare_postgres()
            return self.db.atomic()
        self._prepare_sqlite()
        while True:
            txn = self.db.atomic("IMMEDIATE")
            try:
                txn.__enter__()
            except peewee.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if time.monotonic() >= deadline:
                    raise DbBusy("database locked by another connection; nothing written")
                continue
            return _Entered(txn)

    def _prepare_sqlite(self) -> None:
        conn = self.db.connection()  # this thread's own, opened on first use
        if getattr(self.db._state, "tp_conn", None) is not conn:
            self.db.execute_sql(f"PRAGMA busy_timeout = {SQLITE_WRITER_BUSY_MS}")
            self.db._state.tp_conn = conn

    def _prepare_postgres(self) -> None:
        # A row lock held elsewhere waits at most the bound, then fails cleanly.
        conn = self.db.connection()
        if getattr(self.db._state, "tp_conn", None) is not conn:
            ms = int(self.wait_timeout * 1000)
            self.db.execute_sql(f"SET lock_timeout = {ms}")
            self.db._state.tp_conn = conn

    def _answer(self, outcomes) -> None:
        by_loop: dict = {}
        for outcome in outcomes:
            by_loop.setdefault(outcome[0].loop, []).append(outcome)
        for loop, items in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, items)
            except RuntimeError:  # the loop is closed: nobody waits any more
                pass


class _GroupFailure(Exception):
    """Job ``index`` of a batch raised ``error`` (the batch was rolled back)."""

    def __init__(self, index: int, error: Optional[BaseException]):
        super().__init__(index, error)
        self.index, self.error = index, error


class _Entered:
    """An already-entered peewee transaction used as a context manager."""

    def __init__(self, txn):
        self.txn = txn

    def __enter__(self):
        return self.txn

    def __exit__(self, *exc):
        return self.txn.__exit__(*exc)


def is_busy(exc: BaseException) -> bool:
    """True for a wait bound reached (ours, or the database's own lock timeout)."""
    if isinstance(exc, DbBusy):
        return True
    text = str(exc).lower()
    return isinstance(exc, peewee.OperationalError) and (
        "locked" in text or "lock timeout" in text or "canceling statement" in text)


def make_executor(db: peewee.Database, settings: Any) -> DbExecutor:
    """The executor for ``settings.database`` (wait bound, PostgreSQL pool size)."""
    cfg = settings.database
    return DbExecutor(db, wait_timeout=getattr(cfg, "wait_timeout", 3.0),
                      writers=getattr(cfg, "pool_size", 16) if is_postgres(db) else 1,
                      readers=2)


async def run_write(dbx: Optional[DbExecutor], fn: Callable, *args, group: bool = False,
                    **kwargs) -> Any:
    """``dbx.write`` when the caller has an executor, else ``fn`` on this thread (CLI, tests)."""
    if dbx is None:
        return fn(*args, **kwargs)
    return await dbx.write(fn, *args, group=group, **kwargs)


async def run_read(dbx: Optional[DbExecutor], fn: Callable, *args, **kwargs) -> Any:
    """``dbx.read`` when the caller has an executor, else ``fn`` on this thread."""
    if dbx is None:
        return fn(*args, **kwargs)
    return await dbx.read(fn, *args, **kwargs)
