"""The executor's parts outside its threads: jobs, settling, the writer's transaction."""

import time
from typing import Any, Callable, Optional

import peewee

# The writer's own SQLite busy wait is short: it retries BEGIN IMMEDIATE until
# the earliest deadline of its batch instead, so a queued job never waits
# twice and a job past its deadline is dropped before it touches anything.
SQLITE_WRITER_BUSY_MS = 50


class DbBusy(Exception):
    """The database could not be had within the wait bound; nothing was written."""


class _Job:
    __slots__ = ("fn", "args", "kwargs", "group", "deadline", "loop", "future", "atomic_alone")

    def __init__(self, fn, args, kwargs, group, deadline, loop, future, atomic_alone=False):
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.group, self.deadline, self.loop, self.future = group, deadline, loop, future
        self.atomic_alone = atomic_alone

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


def _extend(deferred, item) -> None:
    # The writers' queue holds single jobs, lists of jobs (one turn of the loop) and a stop mark.
    if type(item) is list:
        deferred.extend(item)
    else:
        deferred.append(item)


def prepare_connection(db: peewee.Database, sqlite: bool, wait_timeout: float) -> None:
    """Once per writer connection: a short busy wait (SQLite), a bounded lock wait (PostgreSQL).

    On PostgreSQL a row lock held elsewhere waits at most the bound, then fails cleanly.
    """
    conn = db.connection()  # this thread's own, opened on first use
    if getattr(db._state, "tp_conn", None) is not conn:
        db.execute_sql(f"PRAGMA busy_timeout = {SQLITE_WRITER_BUSY_MS}" if sqlite
                       else f"SET lock_timeout = {int(wait_timeout * 1000)}")
        db._state.tp_conn = conn


def open_transaction(db: peewee.Database, sqlite: bool, wait_timeout: float, deadline: float):
    """A writer's transaction: SQLite's BEGIN IMMEDIATE retried until ``deadline``."""
    prepare_connection(db, sqlite, wait_timeout)
    if not sqlite:
        return db.atomic()
    while True:
        txn = db.atomic("IMMEDIATE")
        try:
            txn.__enter__()
        except peewee.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() >= deadline:
                raise DbBusy("database locked by another connection; nothing written")
            continue
        return _Entered(txn)


def is_busy(exc: BaseException) -> bool:
    """True for a wait bound reached (ours, or the database's own lock timeout)."""
    if isinstance(exc, DbBusy):
        return True
    text = str(exc).lower()
    return isinstance(exc, peewee.OperationalError) and (
        "locked" in text or "lock timeout" in text or "canceling statement" in text)


async def run_write(dbx: Optional[Any], fn: Callable, *args, group: bool = False,
                    atomic_alone: bool = False, **kwargs) -> Any:
    """``dbx.write`` when the caller has an executor, else ``fn`` on this thread (CLI, tests)."""
    if dbx is None:
        return fn(*args, **kwargs)
    return await dbx.write(fn, *args, group=group, atomic_alone=atomic_alone, **kwargs)


async def run_read(dbx: Optional[Any], fn: Callable, *args, **kwargs) -> Any:
    """``dbx.read`` when the caller has an executor, else ``fn`` on this thread."""
    if dbx is None:
        return fn(*args, **kwargs)
    return await dbx.read(fn, *args, **kwargs)
