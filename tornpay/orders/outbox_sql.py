"""The outbox dispatcher's statements, compiled once per database (tornpay.storage.fastsql)."""

from typing import NamedTuple, Optional

from peewee import JOIN, SQL, NodeList, fn

from tornpay.storage.fastsql import Family, Statement, param
from tornpay.storage.models import DONE, FAILED, PENDING, Delivery, Event, Order

# These ran per paid order, and peewee building their SQL was most of the
# dispatcher's cost (bench/README.md).


def lease_free():
    """No lease on the row, or one that ended before ``now``."""
    return Delivery.lease_until.is_null() | (Delivery.lease_until < param(Delivery.lease_until,
                                                                           "now"))


def claim_query(sqlite: bool = False, plugins: int = 0):
    free = lease_free()
    # A plugin sees one order's events in the order they happened (a cancel of
    # a closed order before the late payment's on_paid), so a delivery waits
    # while an earlier one for the same plugin and order is still pending.
    Earlier, EarlierEvent, ThisEvent = Delivery.alias(), Event.alias(), Event.alias()
    # SQLite would look for earlier rows through the state index, i.e. scan
    # every pending delivery per candidate (quadratic in a backlog); a unary
    # "+" keeps it on the order's events (event_out_trade_no, delivery_event_id).
    earlier_state = NodeList((SQL("+"), Earlier.state), glue="") if sqlite else Earlier.state
    blocked = (Earlier.select(Earlier.id)
               .join(EarlierEvent, on=(Earlier.event == EarlierEvent.id))
               .where((Earlier.plugin == Delivery.plugin) & (earlier_state == PENDING)
                      & (EarlierEvent.out_trade_no == ThisEvent.out_trade_no)
                      & (Earlier.created_at < Delivery.created_at)))
    due = ((Delivery.state == PENDING)
           & (Delivery.next_attempt_at <= param(Delivery.next_attempt_at, "now")) & free)
    if plugins:
        # Only the plugins this process has loaded (orders/registry.py): another
        # process's plugins are delivered there.
        due &= Delivery.plugin.in_([param(f"p{i}") for i in range(plugins)])
    return (Delivery.select(Delivery.id)
            .join(ThisEvent, on=(Delivery.event == ThisEvent.id))
            .where(due & ~fn.EXISTS(blocked))
            .order_by(Delivery.next_attempt_at, Delivery.created_at)
            .limit(param("limit")))


def lease_values():
    return {Delivery.lease_owner: param(Delivery.lease_owner, "owner"),
            Delivery.lease_until: param(Delivery.lease_until, "until")}


CLAIM = Statement("claim", lambda: claim_query(sqlite=True))
# Lock only the delivery rows (not the joined events): a second dispatcher
# skips them, and READ COMMITTED re-checks ``free`` on rows whose lease
# changed since our snapshot.
CLAIM_PG = Statement("claim_pg",
                     lambda: claim_query().for_update(of=Delivery, skip_locked=True))
# The same, for a process with n plugins (keyed by n; parameters p0..p{n-1}).
CLAIM_FOR = Family("claim_for", lambda n: claim_query(sqlite=True, plugins=n))
CLAIM_PG_FOR = Family("claim_pg_for", lambda n: claim_query(plugins=n).for_update(
    of=Delivery, skip_locked=True))
LEASE_PG = Statement("lease_pg", lambda: Delivery.update(lease_values()).where(
    Delivery.id == fn.ANY(param("ids"))))  # one array parameter, whatever the count
# The SQLite claim leases its candidates with one UPDATE (was one per row); the
# id list is padded to a size of SIZES so a handful of texts stay compiled.
SIZES = (1, 2, 4, 8, 16, 32, 64, 128)


def ids_param(n: int) -> list:
    return [param(Delivery.id, f"id{i}") for i in range(n)]


# (SQLite only. The unary "+" keeps it on the primary key: through the state
# index it would visit every pending delivery, a whole backlog per claim.)
LEASE_MANY = Family("lease_many", lambda n: Delivery.update(lease_values()).where(
    Delivery.id.in_(ids_param(n)) & (NodeList((SQL("+"), Delivery.state), glue="") == PENDING)
    & lease_free()))
# A delivery with its event and the order's plugin-visible columns, in one query.
ORDER_COLUMNS = (Order.out_trade_no, Order.product_id, Order.openid, Order.total_fee,
                 Order.state, Order.transaction_id, Order.attach, Order.created_at,
                 Order.paid_at, Order.trade_type)
LOAD_COLUMNS = (Delivery.state, Delivery.plugin, Delivery.attempts, Event.id, Event.hook,
                Event.payload, Event.out_trade_no) + ORDER_COLUMNS


def _loaded(*columns):
    return (Delivery.select(*columns)
            .join(Event, JOIN.LEFT_OUTER, on=(Delivery.event == Event.id))
            .join(Order, JOIN.LEFT_OUTER, on=(Event.out_trade_no == Order.out_trade_no)))


LOAD = Statement("load_delivery", lambda: _loaded(*LOAD_COLUMNS).where(
    Delivery.id == param(Delivery.id)))
# The same for the rows of a claim that ``owner`` holds, in one query (padded like LEASE_MANY).
LOAD_MINE = Family("load_mine", lambda n: _loaded(Delivery.id, *LOAD_COLUMNS).where(
    Delivery.id.in_(ids_param(n)) & (Delivery.lease_owner == param(Delivery.lease_owner,
                                                                   "owner"))))


def padded(ids: list) -> dict:
    """``{"id0": .., "id{n-1}": ..}`` for the smallest size in SIZES, repeating the last id."""
    n = next(size for size in SIZES if size >= len(ids))
    return {f"id{i}": ids[min(i, len(ids) - 1)] for i in range(n)}


class Loaded(NamedTuple):
    """One LOAD row by name: the delivery, its event (None if gone) and the order's columns."""

    state: str
    plugin: str
    attempts: int
    event_id: Optional[str]
    hook: Optional[str]
    payload: Optional[str]
    out_trade_no: Optional[str]
    order: tuple  # ORDER_COLUMNS' values; all None when the order is gone


def load_mine(ids: list, owner: str) -> dict:
    """``{delivery id: Loaded}`` for those of ``ids`` leased to ``owner`` (at most SIZES[-1])."""
    values = padded(ids)
    rows = LOAD_MINE[len(values)].all(owner=owner, **values)
    return {row[0]: Loaded(*row[1:8], order=tuple(row[8:])) for row in rows}


def load(delivery_id: str) -> Optional[Loaded]:
    """The delivery ``delivery_id`` with its event and order, in one compiled query."""
    row = LOAD.one(id=delivery_id)
    return None if row is None else Loaded(*row[:7], order=tuple(row[7:]))


_MINE = ((Delivery.id == param(Delivery.id)) & (Delivery.state == PENDING)
         & (Delivery.lease_owner == param(Delivery.lease_owner, "owner")))
MARK_DONE = Statement("delivery_done", lambda: Delivery.update(
    state=DONE, attempts=Delivery.attempts + 1, done_at=param(Delivery.done_at),
    lease_owner=None, lease_until=None, last_error=None).where(_MINE))
_FAILED = {Delivery.attempts: param(Delivery.attempts), Delivery.lease_owner: None,
           Delivery.lease_until: None, Delivery.last_error: param(Delivery.last_error)}
MARK_RETRY = Statement("delivery_retry", lambda: Delivery.update(
    _FAILED, next_attempt_at=param(Delivery.next_attempt_at)).where(_MINE))
MARK_FAILED = Statement("delivery_park",
                        lambda: Delivery.update(_FAILED, state=FAILED).where(_MINE))
