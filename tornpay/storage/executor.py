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
# Kept importable from here: the names every caller knows.
from tornpay.storage.dbjobs import (SQLITE_WRITER_BUSY_MS, DbBusy, _Entered,  # noqa: F401
                                    _extend, _GroupFailure, _Job, _settle, is_busy,
                                    open_transaction, prepare_connection, run_read,
                                    run_write)

logger = logging.getLogger(__name__)

GROUP_MAX = 64  # jobs made durable by one commit at most
SWITCH_INTERVAL = 0.001  # seconds, see DbExecutor._start
_STOP = object()


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
        self._pending: List[_Job] = []  # handed off at the end of this turn of the loop
        self.closed = False
        self.commits = 0  # transactions committed by writers (a group counts once)
        self.jobs = 0  # write jobs run
        self.submitted = 0  # write jobs handed in (counted on the loop)

    # -- the loop side --------------------------------------------------

    async def write(self, fn: Callable, *args, group: bool = False, atomic_alone: bool = False,
                    timeout: Optional[float] = None, **kwargs) -> Any:
        """Run ``fn(*args, **kwargs)`` in a writer's transaction; its result once committed.

        ``atomic_alone``: ``fn`` is atomic by itself (a single statement, or one
        ``db.atomic()`` around everything it writes), so on PostgreSQL it runs
        without the executor's own BEGIN and COMMIT: a single statement saves
        those two round trips, and an ``fn`` with its own ``db.atomic()`` the
        two of the savepoint that block would otherwise be.
        """
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        deadline = time.monotonic() + (self.wait_timeout if timeout is None else timeout)
        self._start()
        self.submitted += 1
        job = _Job(fn, args, kwargs, group, deadline, loop, future, atomic_alone)
        if self.writers > 1:
            self._queue.put(job)  # one job each, so idle writers take them in parallel
        else:
            self._hand_off(loop, job)
        return await future

    def _hand_off(self, loop, job: _Job) -> None:
        # The jobs of one turn of the loop go to the writer as one list: one
        # queue put and one writer wake-up per turn instead of one per job
        # (each wake-up is the writer competing for the GIL with the loop).
        with self._lock:
            self._pending.append(job)
            if len(self._pending) > 1:
                return
        loop.call_soon(self._flush)

    def _flush(self) -> None:
        with self._lock:
            jobs, self._pending = self._pending, []
        if jobs:
            self._queue.put(jobs)

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
        self._flush()  # jobs handed off in this turn of the loop still run
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
            if not deferred:
                _extend(deferred, self._queue.get())
            job = deferred.popleft()
            if job is _STOP:
                break
            batch = [job]
            if job.group and self.group_max > 1:
                self._gather(batch, deferred)
            try:
                self._run_batch(batch)
            except BaseException:  # pragma: no cover - a bug here must not kill the writer
                logger.exception("database writer: batch failed unexpectedly")
        self._close_connection()

    def _gather(self, batch: list, deferred) -> None:
        """Move queued group jobs into ``batch``; the others keep their order in ``deferred``."""
        while True:  # everything handed off so far (one writer: nobody else takes it)
            try:
                _extend(deferred, self._queue.get_nowait())
            except queue.Empty:
                break
        skipped = []
        while deferred and len(batch) < self.group_max:
            job = deferred.popleft()
            if job is _STOP:  # jobs queued before the stop still run, then the writer ends
                skipped.append(job)
                break
            (batch if job.group else skipped).append(job)
        deferred.extendleft(reversed(skipped))

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
        if len(live) == 1 and live[0].atomic_alone and not self.sqlite:
            prepare_connection(self.db, self.sqlite, self.wait_timeout)
            outcomes.append((live[0], True, live[0].run()))  # its own transaction
            self.jobs += 1
            return outcomes
        deadline = min(job.deadline for job in live)
        with open_transaction(self.db, self.sqlite, self.wait_timeout, deadline):
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

    def _answer(self, outcomes) -> None:
        by_loop: dict = {}
        for outcome in outcomes:
            by_loop.setdefault(outcome[0].loop, []).append(outcome)
        for loop, items in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, items)
            except RuntimeError:  # the loop is closed: nobody waits any more
                pass


def make_executor(db: peewee.Database, settings: Any) -> DbExecutor:
    """The executor for ``settings.database`` (wait bound, PostgreSQL pool size)."""
    cfg = settings.database
    return DbExecutor(db, wait_timeout=getattr(cfg, "wait_timeout", 3.0),
                      writers=getattr(cfg, "pool_size", 16) if is_postgres(db) else 1,
                      readers=2)
