"""Order administration for the CLI: dispatcher-less contexts, listings, query and close."""

import datetime
import logging
from typing import Any, List, Optional

from tornpay.interfaces import CoreContext
from tornpay.orders.trade_state import apply_trade_state
from tornpay.orders import transitions
from tornpay.orders.transitions import OPEN_REFUND_STATES
from tornpay.orders.delivery_views import order_deliveries
from tornpay.orders.dispatcher import retry_delivery
from tornpay.orders.refunds import (NotFound, RefundError, query_refund, request_refund,
                                    send_refund)
from tornpay.protocol.errors import BusinessError
from tornpay.storage import db as storage
from tornpay.storage import migrations
from tornpay.storage.dbjobs import run_read, run_write
from tornpay.storage.models import (CREATED, DONE, PREPAID, Delivery, Notification, Order,
                                    Refund, RefundState, utcnow)

logger = logging.getLogger(__name__)


class Refused(Exception):
    """An admin operation refused (order state, age, a delivery in flight); nothing changed."""


class DatabaseContext:
    """Settings and the database: all that read-only and delivery verbs need (no credentials)."""

    dispatcher = None
    reconciler = None
    dbx = None  # no executor: the CLI does its database work on its own thread

    def kick(self) -> None:
        """Nothing delivers here: a serving process's dispatcher picks the events up."""

    def __init__(self, settings: Any, create_tables: bool = True):
        self.settings = settings
        self.db = storage.bind(storage.open_database(settings.database.url))
        # A new or older database gets the server's schema steps; a current one is
        # left untouched, so a read-only database role is enough for these verbs.
        steps = {version for version, _, _ in migrations.MIGRATIONS}
        if create_tables and not steps <= migrations.applied_versions(self.db):
            storage.create_tables()

    def close(self) -> None:
        if not self.db.is_closed():
            self.db.close()


class AdminContext(DatabaseContext):
    """Settings, database, hooks and a WeChat client: what the CLI needs, no background work.

    The hooks are loaded only so outbox rows get one Delivery per plugin, exactly
    as in the server; the serving process's dispatcher delivers them.
    """

    def __init__(self, settings: Any, hooks: Any = None):
        from tornpay.startup import check_startable, make_http_client
        from tornpay.hooks import HookManager
        from tornpay.protocol.client import PayClient

        check_startable(settings)  # the same settings the server would refuse
        super().__init__(settings, create_tables=False)  # below, with the plugins' tables
        self.hooks = hooks or HookManager(settings)
        if hooks is None:
            self.hooks.load_settings_plugins(settings)
            self.hooks.load_entry_points()
            self.hooks.check()
        storage.create_tables(self.hooks.models())
        self._http_client = None
        self._pay_client = None
        self._gateways = None
        self._make_http = make_http_client
        self._pay_cls = PayClient

    @property
    def pay_client(self):
        # Made on first use: local verbs (orders list) never touch the network.
        if self._pay_client is None:
            self._http_client = self._make_http(self.settings)
            self._pay_client = self._pay_cls.from_settings(self.settings, self._http_client)
        return self._pay_client

    @property
    def gateways(self):
        """The WeChat gateways (v2, and v3 when configured), made on first use."""
        if self._gateways is None:
            from tornpay.gateway.router import build_gateways
            from tornpay.orders.trade_state import order_generation
            self._gateways = build_gateways(self.settings, self.pay_client, self._http_client,
                                            generation_of=order_generation)
        return self._gateways

    def close(self) -> None:
        if self._http_client is not None:
            self._http_client.close()
        self.hooks.close()
        super().close()


def get_order(out_trade_no: str) -> Order:
    order = Order.get_or_none(Order.out_trade_no == out_trade_no)
    if order is None:
        raise NotFound(f"order {out_trade_no} not found")
    return order


def list_orders(state: Optional[str] = None, since: Optional[datetime.date] = None,
                until: Optional[datetime.date] = None, limit: int = 50) -> List[Order]:
    """Orders newest first; ``since``/``until`` are inclusive UTC dates of creation."""
    query = Order.select().order_by(Order.created_at.desc())
    if state:
        query = query.where(Order.state == state)
    if since:
        query = query.where(Order.created_at >= datetime.datetime.combine(since,
                                                                          datetime.time()))
    if until:
        end = datetime.datetime.combine(until, datetime.time()) + datetime.timedelta(days=1)
        query = query.where(Order.created_at < end)
    return list(query.limit(limit))


def order_details(out_trade_no: str) -> dict:
    """The order and everything about it: notifies, deliveries, refunds."""
    order = get_order(out_trade_no)
    return {
        "order": order,
        "notifies": list(Notification.select().where(Notification.out_trade_no == out_trade_no)
                         .order_by(Notification.received_at)),
        "deliveries": order_deliveries(out_trade_no),
        "refunds": list(Refund.select().where(Refund.order == out_trade_no)
                        .order_by(Refund.created_at)),
    }


async def query_order(ctx: CoreContext, out_trade_no: str) -> str:
    """orderquery and apply the answer like the reconciler; return trade_state."""
    # In a server on the database threads (SPEC §12); in the CLI (dbx None) right here.
    order = await run_read(ctx.dbx, get_order, out_trade_no)
    reply = await ctx.gateways.for_order(order).order_query(out_trade_no, order.sign_type,
                                                            appid=order.appid or None)
    trade_state = await run_write(ctx.dbx, apply_trade_state, out_trade_no, reply, ctx.hooks)
    ctx.kick()
    return trade_state


async def close_order(ctx: CoreContext, out_trade_no: str) -> str:
    """closeorder a CREATED/PREPAID order at least min_close_age_seconds old; return the outcome.

    ``CLOSED`` when closed here, or the trade_state found when WeChat says the
    order was paid meanwhile (ORDERPAID: it is queried and marked paid).
    """
    order = await run_read(ctx.dbx, get_order, out_trade_no)
    if order.state not in (CREATED, PREPAID):
        raise Refused(f"order {out_trade_no} is {order.state}; only CREATED or PREPAID "
                      "orders can be closed")
    age = (utcnow() - order.created_at).total_seconds()
    min_age = ctx.settings.orders.min_close_age_seconds
    if age < min_age:
        raise Refused(f"order {out_trade_no} is {age:.0f}s old; WeChat refuses to close "
                      f"orders younger than {min_age:.0f}s (orders.min_close_age_seconds)")
    try:
        await ctx.gateways.for_order(order).close_order(out_trade_no, order.sign_type,
                                                        appid=order.appid or None)
    except BusinessError as exc:
        if exc.err_code == "ORDERPAID":
            logger.warning("order %s: closeorder says ORDERPAID; querying it", out_trade_no)
            return await query_order(ctx, out_trade_no)
        # ORDERNOTEXIST: WeChat never saw it (failed unified order), so nothing can pay it.
        if exc.err_code not in ("ORDERCLOSED", "ORDERNOTEXIST"):
            raise
    changed = await run_write(ctx.dbx, transitions.mark_closed, out_trade_no, "closed",
                              hooks=ctx.hooks)
    ctx.kick()
    if not changed:
        return (await run_read(ctx.dbx, get_order, out_trade_no)).state
    return "CLOSED"


async def query_everything(ctx: CoreContext, out_trade_no: str) -> List[str]:
    """``tornpay query``: orderquery, then refundquery for each open refund; report lines."""
    trade_state = await query_order(ctx, out_trade_no)
    lines = [f"order {out_trade_no}: WeChat trade_state {trade_state}; "
             f"here {get_order(out_trade_no).state}"]
    open_refunds = Refund.select().where((Refund.order == out_trade_no)
                                         & Refund.state.in_(OPEN_REFUND_STATES))
    for refund in open_refunds:
        try:
            status, _ = await query_refund(ctx, refund.out_refund_no)
        except BusinessError as exc:
            if exc.err_code != "REFUNDNOTEXIST":
                raise
            lines.append(f"refund {refund.out_refund_no}: unknown to WeChat; re-send it with "
                         f"tornpay refund {out_trade_no} --resend {refund.out_refund_no}")
            continue
        lines.append(f"refund {refund.out_refund_no}: WeChat refund_status {status}; here "
                     f"{Refund.get_by_id(refund.out_refund_no).state}")
    return lines


async def refund_and_report(ctx: CoreContext, out_trade_no: str, fee: Optional[int], reason: str,
                            resend: Optional[str]) -> str:
    """``tornpay refund``: request (or re-send) a refund; a line on success, else raise."""
    await run_read(ctx.dbx, get_order, out_trade_no)
    if resend:
        row = await run_read(ctx.dbx, Refund.get_or_none, (Refund.out_refund_no == resend)
                             & (Refund.order == out_trade_no))
        if row is None:
            raise NotFound(f"refund {resend} of order {out_trade_no} not found")
        refund = await send_refund(ctx, resend)
    else:
        refund = await request_refund(ctx, out_trade_no, fee, reason)
    if refund.state == RefundState.FAILED:
        raise RefundError(f"refund {refund.out_refund_no} of {refund.refund_fee} fen refused by "
                          f"WeChat: {refund.last_error}")
    if refund.state == RefundState.REQUESTED:
        raise RefundError(f"refund {refund.out_refund_no} of {refund.refund_fee} fen not "
                          f"confirmed ({refund.last_error}); nothing is lost, re-send it with "
                          f"tornpay refund {out_trade_no} --resend {refund.out_refund_no}")
    if refund.state == RefundState.PROCESSING:
        return (f"refund {refund.out_refund_no} of {refund.refund_fee} fen accepted by WeChat "
                f"(refund_id {refund.refund_id}); final when WeChat reports SUCCESS")
    return f"refund {refund.out_refund_no} of {refund.refund_fee} fen: {refund.state}"


def retry_deliveries(delivery_id: Optional[str]) -> str:
    """``tornpay deliveries retry``: make failed deliveries due now; a report line."""
    if delivery_id is None:
        return f"{retry_delivery(None)} failed deliveries made due again"
    row = Delivery.get_or_none(Delivery.id == delivery_id)
    if row is None:
        raise NotFound(f"delivery {delivery_id} not found")
    if row.state == DONE:
        raise Refused(f"delivery {delivery_id} is done; a delivery that returned is "
                      "never repeated")
    if retry_delivery(delivery_id) != 1:
        raise Refused(f"delivery {delivery_id} is being delivered right now")
    return f"delivery {delivery_id} made due again"
