"""Outbox dispatcher: delivers durable hook events to each plugin with leases, timeouts, backoff."""

import asyncio
import datetime
import functools
import json
import logging
import os
import socket
import uuid
from types import SimpleNamespace
from typing import Any, Dict, Iterable, List, NamedTuple, Optional, Set, Tuple

from tornpay.orders import attempts as history
from tornpay.orders import outbox_sql as sql
from tornpay.orders.events import OrderView, RefundView
from tornpay.orders.registry import loaded_plugins
from tornpay.storage.db import database_proxy as db
from tornpay.storage.db import is_postgres
from tornpay.storage.executor import run_write
from tornpay.storage.models import FAILED, PENDING, Delivery, Event, Order, utcnow

logger = logging.getLogger(__name__)

BATCH = 100  # deliveries claimed per pass
ERROR_CHARS = 500


def default_owner_id() -> str:
    """A lease owner id unique to this process (host, pid, random)."""
    return f"{socket.gethostname()[:24]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def claim_due_deliveries(owner_id: str, lease_seconds: float, limit: int = BATCH,
                         exclude: Optional[Set[str]] = None,
                         plugins: Optional[List[str]] = None) -> List[str]:
    """Lease up to ``limit`` due pending deliveries for ``owner_id``; return their ids.

    ``plugins``: only deliveries to these plugins (the ones this process has
    loaded); None means any.

    PostgreSQL: one short transaction selects the rows ``FOR UPDATE SKIP
    LOCKED`` (a row another process is claiming right now is skipped, not
    waited for) and sets their lease. SQLite (one writer at a time): select
    candidates, then take each with a conditional UPDATE that only succeeds
    while the lease is free or expired (all in one commit). Either way the
    lease, not the lock, is what is held during the call, so a dead process's
    rows come back when its lease expires.
    """
    now = utcnow()
    until = now + datetime.timedelta(seconds=lease_seconds)
    exclude = exclude or set()
    # ``exclude`` (our own calls still running) is filtered here rather than in
    # the SQL, so the statement stays one compiled text whatever its size.
    args = {"now": now, "limit": limit + len(exclude)}
    pg = is_postgres(db.obj)
    if plugins is None:
        claim = sql.CLAIM_PG if pg else sql.CLAIM
    elif not plugins:
        return []
    else:
        claim = (sql.CLAIM_PG_FOR if pg else sql.CLAIM_FOR)[len(plugins)]
        args.update((f"p{i}", name) for i, name in enumerate(plugins))
    if pg:
        with db.atomic():
            ids = [r[0] for r in claim.all(**args) if r[0] not in exclude][:limit]
            if ids:
                sql.LEASE_PG.execute(ids=ids, owner=owner_id, until=until)
        return ids
    candidates = [r[0] for r in claim.all(**args) if r[0] not in exclude][:limit]
    claimed = []
    if candidates:
        with db.atomic():
            for delivery_id in candidates:
                if sql.LEASE.rowcount(id=delivery_id, owner=owner_id, until=until, now=now) == 1:
                    claimed.append(delivery_id)
    return claimed


def claim_and_load(owner_id: str, lease_seconds: float, *, exclude: Set[str],
                   plugins: Optional[Iterable[str]] = None) -> List[Tuple[str, Optional[tuple]]]:
    """Claim due deliveries and load each one's delivery, event and order columns."""
    ids = claim_due_deliveries(owner_id, lease_seconds, exclude=exclude, plugins=plugins)
    return [(delivery_id, sql.LOAD.one(id=delivery_id)) for delivery_id in ids]


class _Loaded(NamedTuple):
    """What one attempt needs from its delivery row."""

    id: str
    plugin: str
    attempts: int


class Dispatcher:
    """Deliver pending ``on_paid``/``on_cancel``/``on_refund`` calls from the IOLoop."""

    def __init__(self, hooks: Any, settings: Any, owner_id: Optional[str] = None):
        self.hooks = hooks
        self.cfg = settings.deliveries
        self.owner_id = owner_id or default_owner_id()
        self._inflight: Dict[str, asyncio.Task] = {}
        self._wake: Optional[asyncio.Event] = None
        self._loop_task: Optional[asyncio.Task] = None
        self._stopping = False
        self.dbx = None  # the app's DbExecutor (set by Context): database work off the loop

    @property
    def lease_seconds(self) -> float:
        # Twice the call timeout: a live owner always finishes (or times out)
        # before its lease ends; a dead owner's rows come back after it.
        return self.cfg.timeout_seconds * 2

    def start(self) -> None:
        """Start the background loop; anything pending (e.g. from before a restart) resumes."""
        if self._loop_task is None:
            self._stopping = False
            self._wake = asyncio.Event()
            self._loop_task = asyncio.ensure_future(self._run())

    def kick(self) -> None:
        """Look for work now (call it after a transition committed)."""
        if self._wake is not None:
            self._wake.set()

    async def stop(self, grace: Optional[float] = None) -> None:
        """Stop claiming; let in-flight calls finish for ``grace`` seconds, then cancel them."""
        self._stopping = True
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
            self._loop_task = None
        tasks = list(self._inflight.values())
        if tasks:
            grace = self.cfg.timeout_seconds if grace is None else grace
            _, pending = await asyncio.wait(tasks, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await run_write(self.dbx, self._release_leases)

    def _release_leases(self) -> None:
        # Unfinished rows are claimable at once by the next process, not after the lease.
        with db.atomic():
            (Delivery.update(lease_owner=None, lease_until=None)
             .where((Delivery.lease_owner == self.owner_id) & (Delivery.state == PENDING))
             .execute())

    async def run_once(self) -> int:
        """Claim what is due, deliver it all, and return how many deliveries were attempted."""
        tasks = await self._claim_and_spawn()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        return len(tasks)

    async def _run(self) -> None:
        assert self._wake is not None
        while not self._stopping:
            try:
                await self._claim_and_spawn()
            except Exception:
                logger.exception("dispatcher: claiming deliveries failed; will retry")
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), self.cfg.poll_interval_seconds)
            except asyncio.TimeoutError:
                pass

    async def _claim_and_spawn(self) -> List[asyncio.Task]:
        # One writer job claims the rows and loads what each call needs.
        loaded = await run_write(self.dbx, claim_and_load, self.owner_id, self.lease_seconds,
                                 exclude=set(self._inflight),
                                 plugins=loaded_plugins(self.hooks), group=True)
        tasks = []
        for delivery_id, row in loaded:
            if delivery_id in self._inflight:  # claimed again while the claim was queued
                continue
            task = asyncio.ensure_future(self._deliver(delivery_id, row))
            self._inflight[delivery_id] = task
            task.add_done_callback(functools.partial(self._finished, delivery_id))
            tasks.append(task)
        return tasks

    def _finished(self, delivery_id: str, task: asyncio.Task) -> None:
        self._inflight.pop(delivery_id, None)
        if not task.cancelled() and task.exception() is not None:
            # e.g. the database refused the bookkeeping: the lease expires and
            # the row is claimed again.
            logger.error("delivery %s: bookkeeping failed", delivery_id,
                         exc_info=task.exception())

    async def _deliver(self, delivery_id: str, row: Optional[tuple]) -> None:
        hook = plugin = "?"
        delivery = None
        started = utcnow()
        try:
            if row is None or row[0] != PENDING:
                return
            delivery = _Loaded(delivery_id, row[1], row[2])
            hook, plugin = row[4], delivery.plugin
            kwargs = self._hook_kwargs(row, delivery_id)
            # The timeout bounds the call itself (and separately a wait for a
            # worker thread), which keeps the whole attempt inside the lease.
            await self.hooks.call_plugin(hook, plugin, timeout=self.cfg.timeout_seconds,
                                         **kwargs)
        except asyncio.CancelledError:
            raise  # stopping: the row stays pending and its lease is released
        except asyncio.TimeoutError:
            await run_write(self.dbx, self._failed, delivery,
                            f"timeout after {self.cfg.timeout_seconds:g}s", started,
                            history.TIMEOUT, group=True)
        except Exception as exc:
            history.log_failure(logger, delivery_id, hook, plugin, exc,
                                delivery.attempts if delivery is not None else 0)
            if delivery is not None:
                await run_write(self.dbx, self._failed, delivery,
                                f"{type(exc).__name__}: {exc}", started, group=True)
        else:
            await run_write(self.dbx, self._done, delivery, started, group=True)

    @staticmethod
    def _hook_kwargs(row: tuple, delivery_id: str) -> dict:
        event_id, hook, payload, out_trade_no = row[3:7]
        if event_id is None:
            raise Event.DoesNotExist(f"event of delivery {delivery_id} does not exist")
        if row[7] is None:
            raise Order.DoesNotExist(f"order {out_trade_no} does not exist")
        # Decoded by each field, as a peewee Order row would be.
        order = SimpleNamespace(**{f.name: f.python_value(v)
                                   for f, v in zip(sql.ORDER_COLUMNS, row[7:])})
        payload = json.loads(payload or "{}")
        kwargs: dict = {"order": OrderView.from_row(order, delivery_id=delivery_id)}
        if hook == "on_cancel":
            kwargs["reason"] = payload.get("reason", "closed")
        elif hook == "on_refund":
            kwargs["refund"] = RefundView.from_payload(payload["refund"])
        return kwargs

    def _done(self, delivery: _Loaded, started: datetime.datetime) -> None:
        # One conditional UPDATE and the attempt's history row (group-committed).
        n = sql.MARK_DONE.rowcount(id=delivery.id, owner=self.owner_id, done_at=utcnow())
        if n != 1:
            logger.warning("delivery %s returned after its lease was lost", delivery.id)
        else:
            logger.debug("delivery %s done (%s)", delivery.id, delivery.plugin)
        history.record(delivery.id, started, history.DONE, owner=self.owner_id)

    def _failed(self, delivery: _Loaded, error: str, started: datetime.datetime,
                outcome: str = "error") -> None:
        history.record(delivery.id, started, outcome, error, owner=self.owner_id)
        attempts = delivery.attempts + 1
        values = {"id": delivery.id, "owner": self.owner_id, "attempts": attempts,
                  "last_error": error[:ERROR_CHARS]}
        if attempts >= self.cfg.max_attempts:
            logger.error("delivery %s to plugin %s failed %d times; parked (tornpay deliveries "
                         "retry)", delivery.id, delivery.plugin, attempts)
            sql.MARK_FAILED.execute(**values)
        else:
            delay = min(self.cfg.first_retry_seconds * 2 ** (attempts - 1),
                        self.cfg.max_retry_seconds)
            logger.info("delivery %s attempt %d failed; retry in %.1fs", delivery.id, attempts,
                        delay)
            next_at = utcnow() + datetime.timedelta(seconds=delay)
            sql.MARK_RETRY.execute(next_attempt_at=next_at, **values)


def retry_delivery(delivery_id: Optional[str] = None) -> int:
    """Make one failed/pending delivery (or, with None, every failed one) due now; count them.

    A delivery that is done is never repeated.
    """
    # A pending row leased by a live dispatcher is left alone: resetting its
    # lease could let a second process deliver it at the same time.
    free = Delivery.lease_until.is_null() | (Delivery.lease_until < utcnow())
    cond = (Delivery.state == FAILED) | ((Delivery.state == PENDING) & free)
    if delivery_id is not None:
        cond = (Delivery.id == delivery_id) & cond
    else:
        cond = Delivery.state == FAILED
    with db.atomic():
        return (Delivery.update(state=PENDING, attempts=0, next_attempt_at=utcnow(),
                                lease_owner=None, lease_until=None)
                .where(cond).execute())
