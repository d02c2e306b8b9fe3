"""What the console shows: the summary, the order search, failed deliveries (read-only queries)."""

import datetime
from dataclasses import dataclass
from typing import List, Optional

import peewee

from tornpay.protocol.wechat_time import BEIJING
from tornpay.storage.models import ORDER_STATES, Delivery, Event, Order, utcnow
from tornpay.storage.opsmodels import BillRun

PAGE_SIZE = 25
TRADE_TYPES = ("JSAPI", "NATIVE", "MWEB")
DELIVERY_STATES = ("failed", "pending", "done")


class BadFilter(ValueError):
    """A filter value the console cannot use; the message names it."""


@dataclass
class OrderFilter:
    """The checked filters of the orders page."""

    state: str = ""
    trade_type: str = ""
    since: Optional[datetime.date] = None
    until: Optional[datetime.date] = None
    q: str = ""
    page: int = 1

    @classmethod
    def parse(cls, state: str = "", trade_type: str = "", since: str = "", until: str = "",
              q: str = "", page: str = "1") -> "OrderFilter":
        if state and state not in ORDER_STATES:
            raise BadFilter("state")
        if trade_type and trade_type not in TRADE_TYPES:
            raise BadFilter("trade_type")
        try:
            page_no = int(page or "1")
        except ValueError:
            raise BadFilter("page") from None
        if not 1 <= page_no <= 100000:
            raise BadFilter("page")
        return cls(state, trade_type, _date(since, "since"), _date(until, "until"),
                   q.strip()[:128], page_no)


def _date(text: str, name: str) -> Optional[datetime.date]:
    if not text:
        return None
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise BadFilter(name) from None


def beijing_day_utc(day: datetime.date):
    """The naive-UTC bounds [start, end) of a Beijing calendar day."""
    start = datetime.datetime.combine(day, datetime.time(), BEIJING)
    to_utc = lambda t: t.astimezone(datetime.timezone.utc).replace(tzinfo=None)  # noqa: E731
    return to_utc(start), to_utc(start + datetime.timedelta(days=1))


def search_orders(f: OrderFilter):
    """One page of orders matching ``f`` (newest first) and whether there is a next page.

    Dates are Beijing days of creation, the merchant's calendar.
    """
    query = Order.select().order_by(Order.created_at.desc(), Order.out_trade_no)
    if f.state:
        query = query.where(Order.state == f.state)
    if f.trade_type:
        query = query.where(Order.trade_type == f.trade_type)
    if f.since:
        query = query.where(Order.created_at >= beijing_day_utc(f.since)[0])
    if f.until:
        query = query.where(Order.created_at < beijing_day_utc(f.until)[1])
    if f.q:
        query = query.where((Order.out_trade_no == f.q) | (Order.transaction_id == f.q)
                            | (Order.openid == f.q))
    rows = list(query.offset((f.page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1))
    return rows[:PAGE_SIZE], len(rows) > PAGE_SIZE


def summary() -> dict:
    """Orders created today (Beijing) by state, failed deliveries, the last bill run."""
    today = utcnow().replace(tzinfo=datetime.timezone.utc).astimezone(BEIJING).date()
    start, end = beijing_day_utc(today)
    counts = dict(Order.select(Order.state, peewee.fn.COUNT(Order.out_trade_no))
                  .where((Order.created_at >= start) & (Order.created_at < end))
                  .group_by(Order.state).tuples())
    return {
        "today": today.isoformat(),
        "by_state": [(state, counts.get(state, 0)) for state in ORDER_STATES],
        "failed_deliveries": Delivery.select().where(Delivery.state == "failed").count(),
        "last_bill": next(iter(bill_runs(1)), None),
    }


def deliveries(state: str, page: int = 1) -> tuple:
    """One page of deliveries in ``state`` (newest first) with their hook and order."""
    if state not in DELIVERY_STATES:
        raise BadFilter("state")
    query = (Delivery.select(Delivery, Event).join(Event).where(Delivery.state == state)
             .order_by(Delivery.created_at.desc(), Delivery.id))
    rows = list(query.offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1))
    return rows[:PAGE_SIZE], len(rows) > PAGE_SIZE


def bill_runs(limit: int = 60, day: Optional[str] = None) -> List[BillRun]:
    """The newest bill runs (of one ``day``), without their raw bytes (megabytes each)."""
    fields = [f for f in BillRun._meta.sorted_fields if f.name != "raw"]
    query = BillRun.select(*fields).order_by(BillRun.bill_date.desc(), BillRun.id.desc())
    if day:
        query = query.where(BillRun.bill_date == day)
    return list(query.limit(limit))
