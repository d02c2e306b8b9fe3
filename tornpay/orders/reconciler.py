"""Reconciler: queries WeChat about orders never notified, and closes the expired ones."""

import asyncio
import datetime
import logging
from typing import Any, Callable, List, Optional

from tornpay.orders.trade_state import apply_trade_state
from tornpay.orders import transitions
from tornpay.orders.dispatcher import default_owner_id
from tornpay.orders.periodic import PeriodicWorker
from tornpay.protocol.errors import BusinessError, WeChatError
from tornpay.storage.db import database_proxy as db
from tornpay.storage.db import is_postgres
from tornpay.storage.executor import run_read, run_write
from tornpay.storage.models import CLOSED, CREATED, PREPAID, Order, utcnow

logger = logging.getLogger(__name__)

BATCH = 20  # orders per pass, queried concurrently
MAX_BACKOFF_SECONDS = 600.0
CHANGED_STATES = ("SUCCESS", "CLOSED", "REVOKED", "PAYERROR")


def claim_stale_orders(owner_id: str, reconcile_after: float, lease_seconds: float,
                       limit: int = BATCH) -> List[str]:
    """Lease up to ``limit`` orders due for a check; return their out_trade_nos.

    Due: PREPAID (or CREATED after a failed unified order, or past expiry)
    older than ``reconcile_after`` whose ``next_check_at`` has come, and
    CLOSED orders the payer cancelled here whose ``close_at_wechat_after``
    has come (WeChat still holds them open: see ``_finish_local_close``). Same
    pattern as the dispatcher: ``FOR UPDATE SKIP LOCKED`` plus the lease in
    one short transaction on PostgreSQL; select, then a conditional UPDATE
    per row on SQLite.
    """
    now = utcnow()
    old = now - datetime.timedelta(seconds=reconcile_after)
    free = Order.lease_until.is_null() | (Order.lease_until < now)
    stale_created = (Order.state == CREATED) & (Order.last_error.is_null(False)
                                                | (Order.expire_at < now))
    open_at_wechat = ((Order.state == CLOSED) & Order.close_at_wechat_after.is_null(False)
                      & (Order.close_at_wechat_after <= now))
    due = (((((Order.state == PREPAID) | stale_created) & (Order.created_at <= old))
            | open_at_wechat)
           & (Order.next_check_at.is_null() | (Order.next_check_at <= now)))
    query = (Order.select(Order.out_trade_no).where(due & free)
             .order_by(Order.created_at).limit(limit))
    until = now + datetime.timedelta(seconds=lease_seconds)
    if is_postgres(db.obj):
        with db.atomic():
            # A payment committing meanwhile holds the row lock: skip it, the
            # next pass re-reads its (by then PAID) state.
            nos = [o.out_trade_no for o in query.for_update(skip_locked=True)]
            if nos:
                (Order.update(lease_owner=owner_id, lease_until=until)
                 .where(Order.out_trade_no.in_(nos)).execute())
        return nos
    candidates = [o.out_trade_no for o in query]
    claimed = []
    for out_trade_no in candidates:
        with db.atomic():
            n = (Order.update(lease_owner=owner_id, lease_until=until)
                 .where((Order.out_trade_no == out_trade_no) & due & free).execute())
        if n == 1:
            claimed.append(out_trade_no)
    return claimed


class Reconciler(PeriodicWorker):
    """Periodic ``orderquery`` / ``closeorder`` of orders WeChat never told us about."""

    name = "reconciler"

    def __init__(self, gateways: Any, hooks: Any, settings: Any,
                 owner_id: Optional[str] = None, on_change: Optional[Callable[[], None]] = None):
        self.client = gateways  # order_query / close_order, routed by the order's generation
        self.hooks = hooks
        self.cfg = settings.orders
        self.timeout = float(getattr(getattr(settings, "wechat", None), "timeout", 10.0))
        self.owner_id = owner_id or default_owner_id()
        self.on_change = on_change or (lambda: None)
        self.dbx = None  # the app's DbExecutor (set by Context): database work off the loop

    @property
    def lease_seconds(self) -> float:
        # Room for a query, a close and a second query, each bounded by the timeout.
        return max(60.0, self.timeout * 4)

    def interval(self) -> float:
        return self.cfg.reconcile_interval_seconds

    async def run_once(self) -> int:
        """Check every due order once; return how many were checked."""
        claimed = await run_write(self.dbx, claim_stale_orders, self.owner_id,
                                  self.cfg.reconcile_after_seconds, self.lease_seconds)
        await asyncio.gather(*(self._check_claimed(no) for no in claimed))
        return len(claimed)

    async def _check_claimed(self, out_trade_no: str) -> None:
        error: Optional[str] = None
        try:
            await self.check(out_trade_no)
        except WeChatError as exc:
            error = f"{type(exc).__name__}: {exc}"
            logger.warning("reconcile %s: %s", out_trade_no, error)
        except Exception as exc:
            error = type(exc).__name__
            logger.exception("reconcile %s failed", out_trade_no)
        await run_write(self.dbx, self._reschedule, out_trade_no, error, group=True)

    async def check(self, out_trade_no: str) -> str:
        """Query one order, apply the answer, close it if expired; return the trade_state."""
        order = await run_read(self.dbx, Order.get_by_id, out_trade_no)
        if order.state == CLOSED and order.close_at_wechat_after is not None:
            return await self._finish_local_close(order)
        try:
            reply = await self.client.order_query(out_trade_no=out_trade_no,
                                                  sign_type=order.sign_type,
                                                  appid=order.appid or None)
        except BusinessError as exc:
            if exc.err_code != "ORDERNOTEXIST":
                raise
            return await self._not_at_wechat(order)
        trade_state = await self._apply(out_trade_no, reply)
        if trade_state == "NOTPAY" and self._closable(order):
            await self._close(order)
        return trade_state

    async def _apply(self, out_trade_no: str, reply: dict) -> str:
        trade_state = await run_write(self.dbx, apply_trade_state, out_trade_no,
                                      reply, self.hooks, group=True)
        if trade_state in CHANGED_STATES:
            self.on_change()
        logger.info("reconcile %s: trade_state %s", out_trade_no, trade_state)
        return trade_state

    async def _not_at_wechat(self, order: Order) -> str:
        # WeChat never saw a CREATED order (its unified order failed): nothing
        # can be paid, so close it here. A PREPAID one it should know: wait.
        if order.state == CREATED or self._closable(order):
            reason = "expired" if utcnow() >= order.expire_at else "closed"
            if await run_write(self.dbx, transitions.mark_closed, order.out_trade_no, reason,
                               hooks=self.hooks, group=True):
                self.on_change()
        else:
            logger.warning("reconcile %s: ORDERNOTEXIST for a %s order", order.out_trade_no,
                           order.state)
        return "ORDERNOTEXIST"

    async def _finish_local_close(self, order: Order) -> str:
        """Close at WeChat an order the payer cancelled here while it was too young to.

        A verified payment still wins (CLOSED -> PAID via ``_apply``); NOTPAY is
        closed now; once WeChat's side is settled the flag is cleared. Errors
        propagate and keep the flag, so the order is retried with backoff.
        """
        no = order.out_trade_no
        try:
            reply = await self.client.order_query(out_trade_no=no, sign_type=order.sign_type,
                                                  appid=order.appid or None)
        except BusinessError as exc:
            if exc.err_code != "ORDERNOTEXIST":
                raise
            trade_state = "ORDERNOTEXIST"  # its unified order failed: nothing to close there
        else:
            trade_state = await self._apply(no, reply)
        if trade_state == "NOTPAY":
            try:
                await self.client.close_order(no, sign_type=order.sign_type,
                                              appid=order.appid or None)
                trade_state = "CLOSED"
            except BusinessError as exc:
                if exc.err_code == "ORDERPAID":
                    # Paid between our query and the close: the payment wins.
                    reply = await self.client.order_query(out_trade_no=no,
                                                          sign_type=order.sign_type,
                                                          appid=order.appid or None)
                    trade_state = await self._apply(no, reply)
                elif exc.err_code != "ORDERCLOSED":
                    raise
        if trade_state in ("USERPAYING", "AMOUNT_MISMATCH", "TRANSACTION_REUSED"):
            # The payer is mid-payment (or the answer is suspect): ask again later.
            logger.warning("reconcile %s: cancelled here, WeChat says %s; retrying later",
                           no, trade_state)
            return trade_state
        await run_write(self.dbx, transitions.settled_at_wechat, no, group=True)
        logger.info("reconcile %s: cancelled order settled at WeChat (%s)", no, trade_state)
        return trade_state

    def _closable(self, order: Order) -> bool:
        now = utcnow()
        age = (now - order.created_at).total_seconds()
        return now >= order.expire_at and age >= self.cfg.min_close_age_seconds

    async def _close(self, order: Order) -> None:
        try:
            await self.client.close_order(order.out_trade_no, sign_type=order.sign_type,
                                          appid=order.appid or None)
        except BusinessError as exc:
            if exc.err_code == "ORDERPAID":
                # Paid in the meantime: the query has the payment details.
                reply = await self.client.order_query(out_trade_no=order.out_trade_no,
                                                      sign_type=order.sign_type,
                                                      appid=order.appid or None)
                await self._apply(order.out_trade_no, reply)
                return
            if exc.err_code != "ORDERCLOSED":
                raise
        if await run_write(self.dbx, transitions.mark_closed, order.out_trade_no, "expired",
                           hooks=self.hooks, group=True):
            self.on_change()

    def _reschedule(self, out_trade_no: str, error: Optional[str]) -> None:
        order = Order.get_or_none(Order.out_trade_no == out_trade_no)
        if order is None:
            return
        now = utcnow()
        attempts = order.check_attempts + 1
        base = max(self.cfg.reconcile_after_seconds, self.cfg.reconcile_interval_seconds, 1.0)
        delay = min(base * 2 ** min(attempts - 1, 16), MAX_BACKOFF_SECONDS)
        next_at = now + datetime.timedelta(seconds=delay)
        if error is None:
            # Do not sleep past the moment the order becomes closable.
            close_at = order.close_at_wechat_after or max(
                order.expire_at,
                order.created_at + datetime.timedelta(seconds=self.cfg.min_close_age_seconds))
            if now < close_at < next_at:
                next_at = close_at
        values = {"check_attempts": attempts, "next_check_at": next_at,
                  "lease_owner": None, "lease_until": None}
        if error is not None and order.state == CREATED:
            values["last_error"] = error[:1000]
        with db.atomic():
            (Order.update(**values)
             .where((Order.out_trade_no == out_trade_no) & (Order.lease_owner == self.owner_id))
             .execute())
