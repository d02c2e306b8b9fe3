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
from typing import Any, Dict, List, NamedTuple, Optional

from tornpay.orders import attempts as history
from tornpay.orders import outbox_sql as sql
from tornpay.orders.claims import BATCH, claim_and_load, claim_due_deliveries  # noqa: F401
from tornpay.orders.events import OrderView, RefundView
from tornpay.orders.registry import loaded_plugins
from tornpay.storage.db import database_proxy as db
from tornpay.storage.executor import run_write
from tornpay.storage.models import FAILED, PENDING, Delivery, Event, Order, utcnow

logger = logging.getLogger(__name__)

ERROR_CHARS = 500


def default_owner_id() -> str:
    """A lease owner id unique to this process (host, pid, random)."""
    return f"{socket.gethostname()[:24]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


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
        self._done_batch: Optional[list] = None  # successes of this turn of the loop
        self._done_job: Optional[asyncio.Future] = None

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
        if self._done_job is not None:  # finished calls' bookkeeping, before the release
            await asyncio.gather(self._done_job, return_exceptions=True)
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

    async def _deliver(self, delivery_id: str, row: Optional[sql.Loaded]) -> None:
        hook = plugin = "?"
        delivery = None
        started = utcnow()
        try:
            if row is None or row.state != PENDING:
                return
            delivery = _Loaded(delivery_id, row.plugin, row.attempts)
            hook, plugin = row.hook, delivery.plugin
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
            await self._record_done(delivery, started)

    async def _record_done(self, delivery: _Loaded, started: datetime.datetime) -> None:
        # The calls that succeed in one turn of the loop share one writer job
        # (each one's done mark and attempt row): a delivery costs no job of its own.
        if self._done_batch is None:
            self._done_batch = []
            self._done_job = asyncio.ensure_future(self._write_done(self._done_batch))
        self._done_batch.append((delivery, started, utcnow()))
        # Shielded: a delivery cancelled at stop() must not cancel the others' bookkeeping.
        error = (await asyncio.shield(self._done_job)).get(delivery.id)
        if error is not None:
            raise error

    async def _write_done(self, batch: list) -> Dict[str, BaseException]:
        self._done_batch = None  # runs on the next turn: later successes start a new batch
        try:
            await run_write(self.dbx, self._done_many, batch, group=True, atomic_alone=True)
            return {}
        except Exception as exc:
            if len(batch) == 1:
                return {batch[0][0].id: exc}
        # One failing row must not undo the others' bookkeeping (their calls
        # would be made again): each alone, so each failure is its own.
        results = await asyncio.gather(*(run_write(self.dbx, self._done, *item, group=True)
                                         for item in batch), return_exceptions=True)
        return {item[0].id: result for item, result in zip(batch, results)
                if isinstance(result, BaseException)}

    def _done_many(self, batch: list) -> None:
        # All or none (a savepoint per batch on a writer), so a retry alone never repeats a row.
        with db.atomic():
            for item in batch:
                self._done(*item)

    @staticmethod
    def _hook_kwargs(row: "sql.Loaded", delivery_id: str) -> dict:
        hook = row.hook
        if row.event_id is None:
            raise Event.DoesNotExist(f"event of delivery {delivery_id} does not exist")
        if row.order[0] is None:
            raise Order.DoesNotExist(f"order {row.out_trade_no} does not exist")
        # Decoded by each field, as a peewee Order row would be.
        order = SimpleNamespace(**{f.name: f.python_value(v)
                                   for f, v in zip(sql.ORDER_COLUMNS, row.order)})
        payload = json.loads(row.payload or "{}")
        kwargs: dict = {"order": OrderView.from_row(order, delivery_id=delivery_id)}
        if hook == "on_cancel":
            kwargs["reason"] = payload.get("reason", "closed")
        elif hook == "on_refund":
            kwargs["refund"] = RefundView.from_payload(payload["refund"])
        return kwargs

    def _done(self, delivery: _Loaded, started: datetime.datetime,
              finished: Optional[datetime.datetime] = None) -> None:
        # One conditional UPDATE and the attempt's history row (group-committed).
        finished = finished or utcnow()
        n = sql.MARK_DONE.rowcount(id=delivery.id, owner=self.owner_id, done_at=finished)
        if n != 1:
            logger.warning("delivery %s returned after its lease was lost", delivery.id)
        else:
            logger.debug("delivery %s done (%s)", delivery.id, delivery.plugin)
        history.record(delivery.id, started, history.DONE, owner=self.owner_id,
                       finished_at=finished)

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
