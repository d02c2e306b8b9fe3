"""Outbox writes: one Event and one Delivery per plugin, inside the caller's transaction."""

import datetime
import json
import logging
import secrets
import time
from typing import Any, Callable, Iterable, Mapping, Optional, Union

import peewee

from tornpay.storage import fastsql
from tornpay.storage.fastsql import param
from tornpay.storage.models import PENDING, Delivery, Event, KnownPlugin, utcnow

logger = logging.getLogger("tornpay.orders.transitions")  # the name operators grep for

# Either a HookManager or any callable hook -> [plugin names].
Hooks = Union[Any, Callable[[str], Iterable[str]]]


def _local_names(hooks: Hooks, hook: str) -> list:
    names = hooks.plugin_names if hasattr(hooks, "plugin_names") else hooks
    return list(names(hook))


def new_event_id() -> str:
    """A unique event id: 32 hex digits, microseconds since the epoch then 72 random bits."""
    # Why not uuid4: events and deliveries are keyed (and indexed) by this id,
    # and random keys put each new row on another page of those B-trees, every
    # such page written to the WAL at each commit and again at the checkpoint.
    # Time-ordered keys append to the same few pages (bench/README.md, 2026-12-02).
    return f"{time.time_ns() // 1000:014x}{secrets.token_hex(9)}"


def write_event(out_trade_no: str, hook: str, payload: Mapping[str, Any], hooks: Hooks,
                now: Optional[datetime.datetime] = None) -> str:
    """Write one outbox Event and a Delivery per plugin implementing ``hook``; return its id.

    The plugins are ours and those of every serving process (orders/registry.py).

    Call it inside the ``db.atomic()`` block of the state change it reports
    (e.g. ``on_refund`` with ``{"refund": RefundView.as_payload()}``).
    """
    event_id = new_event_id()
    now = now or utcnow()
    _INSERT_EVENT.execute(id=event_id, hook=hook, out_trade_no=out_trade_no,
                          payload=json.dumps(dict(payload), sort_keys=True), created_at=now)
    # SPEC §6 fan-out: this process's plugins and every plugin another serving
    # process has loaded (orders/registry.py), looked up by the INSERT itself.
    local = _local_names(hooks, hook)
    values: dict = {"event": event_id, "prefix": f"{event_id}:", "now": now}
    values.update((f"plugin{i}", name) for i, name in enumerate(local))
    count = _INSERT_DELIVERIES[(hook, len(local))].execute(**values).rowcount
    # on_paid is reported in mark_paid's own line (one INFO line per payment).
    logger.log(logging.DEBUG if hook == "on_paid" else logging.INFO,
               "order %s: %s event %s for %d plugin(s)", out_trade_no, hook, event_id,
               count)
    return event_id


# The hot statements, compiled once per database (tornpay.storage.fastsql).
_INSERT_EVENT = fastsql.Statement("insert_event", lambda: Event.insert(
    id=param(Event.id), hook=param(Event.hook), out_trade_no=param(Event.out_trade_no),
    payload=param(Event.payload), created_at=param(Event.created_at)))
# One INSERT ... SELECT for all of an event's deliveries, one statement per
# hook and number of local plugins. Why not SELECT the known plugins first and
# INSERT them after: on a PostgreSQL a few milliseconds away that is one more
# round trip inside every payment's transaction (bench/README.md, 2026-12-02).
# UNION also drops a local plugin that is known already.


def _deliveries_for(key):
    hook, n_local = key
    known = getattr(KnownPlugin, hook) == True  # noqa: E712  (SQL, not Python)
    names = KnownPlugin.select(KnownPlugin.name).where(known)
    for i in range(n_local):
        names = names | peewee.Select(columns=[param(f"plugin{i}").alias("name")])
    plugins = names.alias("plugins")
    rows = peewee.Select([plugins], [
        param("prefix").concat(plugins.c.name), param(Delivery.event), plugins.c.name, PENDING,
        0, param(Delivery.next_attempt_at, "now"), param(Delivery.created_at, "now")])
    return Delivery.insert_from(rows, [Delivery.id, Delivery.event, Delivery.plugin,
                                       Delivery.state, Delivery.attempts,
                                       Delivery.next_attempt_at, Delivery.created_at])


_INSERT_DELIVERIES = fastsql.Family("insert_deliveries", _deliveries_for)
