"""Order creation limits: open orders per payer and per address, and reuse of an open order.

One payer cookie once created 2,000 orders in 6 s, each costing WeChat calls
against the merchant's rate limits. An order is "open" while it is CREATED or
PREPAID and not yet expired.
"""

import datetime
import hashlib
import logging
from typing import Optional

from tornpay.orders import transitions
from tornpay.orders.tradetypes import CODE_URL_LIFETIME_SECONDS
from tornpay.storage.db import database_proxy as db
from tornpay.storage.db import is_postgres
from tornpay.storage.models import CREATED, PREPAID, Order

logger = logging.getLogger(__name__)

OPEN_STATES = (CREATED, PREPAID)
# An open order is offered again only while the payer still has time to pay it.
REUSE_MARGIN = datetime.timedelta(minutes=2)
CODE_URL_LIFETIME = datetime.timedelta(seconds=CODE_URL_LIFETIME_SECONDS)


class TooManyOpenOrders(Exception):
    """Above orders.max_open_per_payer or orders.max_open_per_ip: a 429 page, nothing created."""

    status = 429
    title = "未支付订单过多 / Too many unpaid orders"
    message = ("您已有多笔未支付的订单。请先支付或取消其中一笔，或等待其过期后再试。 / "
               "You already have several unpaid orders. Pay or cancel one of them, or wait "
               "for them to expire, then try again.")

    def __init__(self, which: str):
        super().__init__(f"too many open orders per {which}")
        self.which = which


def _owned_by(payer: str):
    # A JSAPI payer is an openid; a NATIVE/MWEB payer the payer cookie's id (SPEC §9),
    # kept in Order.payer (which also holds the openid of JSAPI orders since migration 7).
    return (Order.openid == payer) | (Order.payer == payer)


def reusable_order(openid: str, product_id: str, total_fee: int, sign_type: str,
                   now: datetime.datetime, trade_type: str = "JSAPI") -> Optional[Order]:
    """The payer's newest open order for this product, at this price, sign type and trade
    type (one out_trade_no, one trade type), if it can still be paid."""
    alive = Order.prepay_at.is_null(False)
    if trade_type == "NATIVE":  # and only while its QR code still has time to be scanned
        alive &= Order.prepay_at > now - CODE_URL_LIFETIME + REUSE_MARGIN
    return (Order.select()
            .where(_owned_by(openid) & (Order.trade_type == trade_type) & alive
                   & (Order.product_id == product_id)
                   & (Order.total_fee == total_fee) & (Order.sign_type == sign_type)
                   & (Order.state == PREPAID)
                   & Order.prepay_id.is_null(False) & (Order.expire_at > now + REUSE_MARGIN))
            .order_by(Order.created_at.desc()).first())


def check_open_limits(orders_settings, openid: str, client_ip: str,
                      now: datetime.datetime) -> None:
    """Raise :class:`TooManyOpenOrders` when a new order would pass a limit."""
    open_now = (Order.state.in_(OPEN_STATES)) & (Order.expire_at > now)
    per_payer = orders_settings.max_open_per_payer
    if per_payer and Order.select().where(open_now & _owned_by(openid)).limit(
            per_payer).count() >= per_payer:
        logger.warning("order refused: payer already has %d open orders "
                       "(orders.max_open_per_payer)", per_payer)
        raise TooManyOpenOrders("payer")
    per_ip = orders_settings.max_open_per_ip
    if per_ip and Order.select().where(open_now & (Order.spbill_create_ip == client_ip)).limit(
            per_ip).count() >= per_ip:
        logger.warning("order refused: %s already has %d open orders (orders.max_open_per_ip)",
                       client_ip, per_ip)
        raise TooManyOpenOrders("address")


def insert_unless_reused(settings, values: dict, reuse: bool = True) -> Optional[Order]:
    """The payer's reusable open order, or the limit checks and the INSERT of a new one.

    One writer transaction, so no other checkout can slip between the checks
    and the INSERT (on PostgreSQL, with several writers, per-payer and
    per-address advisory locks serialise the checkouts that share a limit).
    """
    owner, now = values["payer"], values["created_at"]
    if is_postgres(db.obj) and (settings.orders.max_open_per_payer
                                or settings.orders.max_open_per_ip):
        keys = sorted({_lock_key("payer", owner),
                       _lock_key("ip", values["spbill_create_ip"])})
        db.execute_sql("SELECT " + ", ".join(["pg_advisory_xact_lock(%s)"] * len(keys)), keys)
    if settings.orders.reuse_open_order and reuse:
        existing = reusable_order(owner, values["product_id"], values["total_fee"],
                                  values["sign_type"], now, values["trade_type"])
        # Of the same appid: a Mini Program's order is not the Official Account's.
        if existing is not None and (existing.appid or settings.wechat.appid) == values["appid"]:
            return existing
    check_open_limits(settings.orders, owner, values["spbill_create_ip"], now)
    transitions.create(values)
    return None


def _lock_key(kind: str, value: str) -> int:
    digest = hashlib.sha256(f"tornpay-order-limit|{kind}|{value}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)
