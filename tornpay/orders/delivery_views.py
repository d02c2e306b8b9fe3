"""Read-only views of hook deliveries for the CLI: filtered listings and one delivery's history."""

from typing import List, Optional

from tornpay.orders import attempts
from tornpay.orders.refunds import NotFound
from tornpay.storage.models import PENDING, Delivery, Event


def _as_dict(d: Delivery, recorded: int) -> dict:
    return {"id": d.id, "hook": d.event.hook, "out_trade_no": d.event.out_trade_no,
            "plugin": d.plugin, "state": d.state,
            # Every call ever made (the counter itself restarts at a retry; rows from
            # before the history table only have the counter).
            "attempts": max(recorded, d.attempts),
            "next_attempt_at": d.next_attempt_at if d.state == PENDING else None,
            "last_error": d.last_error, "created_at": d.created_at, "done_at": d.done_at}


def list_deliveries(state: Optional[str] = None, limit: Optional[int] = None,
                    out_trade_no: Optional[str] = None) -> List[dict]:
    """Deliveries newest first, optionally only those in ``state`` / of one order."""
    query = Delivery.select(Delivery, Event).join(Event).order_by(Delivery.created_at.desc(),
                                                                  Delivery.id)
    if state is not None:
        query = query.where(Delivery.state == state)
    if out_trade_no is not None:
        query = query.where(Event.out_trade_no == out_trade_no)
    if limit is not None:
        query = query.limit(limit)
    rows = list(query)
    recorded = attempts.counts(d.id for d in rows)
    return [_as_dict(d, recorded.get(d.id, 0)) for d in rows]


def order_deliveries(out_trade_no: str) -> List[dict]:
    """One order's deliveries, oldest first, each with its attempts (``history``)."""
    rows = list(Delivery.select(Delivery, Event).join(Event)
                .where(Event.out_trade_no == out_trade_no).order_by(Delivery.created_at))
    found = attempts.history(d.id for d in rows)
    return [dict(_as_dict(d, len(found[d.id])), history=found[d.id]) for d in rows]


def delivery_details(delivery_id: str) -> dict:
    """One delivery and every attempt of it; NotFound when there is no such delivery."""
    d = Delivery.select(Delivery, Event).join(Event).where(Delivery.id == delivery_id).first()
    if d is None:
        raise NotFound(f"delivery {delivery_id} not found")
    found = attempts.history([d.id])[d.id]
    return dict(_as_dict(d, len(found)), history=found)
