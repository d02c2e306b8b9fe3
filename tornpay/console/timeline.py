"""An order's timeline: creation, unified order, notifies, state changes, deliveries, refunds."""

import json
from dataclasses import dataclass, field
from typing import List, Optional

from tornpay.console.audit import recent
from tornpay.orders.admin import get_order
from tornpay.storage.models import Delivery, Event, Notification, Refund

STATE_OF_HOOK = {"on_paid": "PAID", "on_cancel": "CLOSED", "on_refund": "REFUND"}


@dataclass
class Entry:
    """One line of the timeline; ``kind`` picks its wording and colour."""

    at: object  # naive UTC datetime
    kind: str
    title: str
    detail: str = ""
    outcome: str = ""  # ok, refused, failed, pending ... (for the badge)
    extra: List[str] = field(default_factory=list)


def _payload(event: Event) -> dict:
    try:
        return json.loads(event.payload or "{}")
    except ValueError:
        return {}


def _order_entries(order) -> List[Entry]:
    out = [Entry(order.created_at, "created", "Order created",
                 f"{order.product_id} · {order.total_fee} fen · {order.trade_type}"
                 f" · {order.openid or '-'}")]
    if order.prepay_at:
        out.append(Entry(order.prepay_at, "unified", "Unified order", f"prepay_id "
                         f"{order.prepay_id}", "ok"))
    elif order.last_error:
        out.append(Entry(order.created_at, "unified", "Unified order failed",
                         order.last_error[:300], "failed"))
    return out


def _notify_entries(out_trade_no: str) -> List[Entry]:
    rows = (Notification.select().where(Notification.out_trade_no == out_trade_no)
            .order_by(Notification.received_at).limit(200))
    return [Entry(n.received_at, "notify", "Refund notify" if n.kind == "refund" else
                  "Payment notify", " · ".join(x for x in (n.remote_ip or "-", n.reason) if x),
                  n.outcome)
            for n in rows]


def _event_entries(out_trade_no: str) -> List[Entry]:
    out = []
    events = Event.select().where(Event.out_trade_no == out_trade_no).order_by(Event.created_at)
    deliveries = {}
    for d in Delivery.select().join(Event).where(Event.out_trade_no == out_trade_no):
        deliveries.setdefault(d.event_id, []).append(d)
    for event in events:
        payload = _payload(event)
        why = payload.get("reason") or payload.get("source") or ""
        refund = payload.get("refund") or {}
        if refund:
            why = f"{refund.get('out_refund_no')} · {refund.get('refund_fee')} fen"
        out.append(Entry(event.created_at, "state", "State change",
                         f"→ {STATE_OF_HOOK.get(event.hook, event.hook)} ({why})", "ok"))
        for d in deliveries.get(event.id, []):
            out.append(Entry(d.done_at or d.created_at, "delivery", "Delivery",
                             f"{event.hook} · {d.plugin} · attempts {d.attempts}", d.state,
                             [d.last_error[:300]] if d.last_error else []))
    return out


def _refund_entries(out_trade_no: str) -> List[Entry]:
    out = []
    for r in Refund.select().where(Refund.order == out_trade_no).order_by(Refund.created_at):
        extra = [f"refund_id {r.refund_id}"] if r.refund_id else []
        if r.success_time:
            extra.append(f"success {r.success_time} (Beijing)")
        if r.last_error:
            extra.append(r.last_error[:300])
        out.append(Entry(r.created_at, "refund", "Refund",
                         f"{r.out_refund_no} · {r.refund_fee} fen · {r.reason or '-'}",
                         r.state, extra))
    return out


def timeline(out_trade_no: str, with_audit: bool = True) -> dict:
    """The order and its timeline entries, oldest first (raises NotFound)."""
    order = get_order(out_trade_no)
    entries = (_order_entries(order) + _notify_entries(out_trade_no)
               + _event_entries(out_trade_no) + _refund_entries(out_trade_no))
    if with_audit:
        entries += [Entry(a.at, "audit", "Console", f"{a.operator} · {a.action} · {a.detail}",
                          a.outcome) for a in recent(out_trade_no)]
    entries.sort(key=lambda e: e.at)
    return {"order": order, "entries": entries,
            "refundable": refundable(order)}


def refundable(order) -> int:
    """Fen that a new refund may still take (nothing unless PAID or PARTIAL_REFUNDED)."""
    if order.state not in ("PAID", "PARTIAL_REFUNDED"):
        return 0
    return max(0, order.total_fee - order.reserved_refund_fee)


def parse_fee(text: str, limit: int) -> Optional[int]:
    """A positive whole number of fen no larger than ``limit``, else None."""
    text = (text or "").strip()
    if not text.isascii() or not text.isdigit() or len(text) > 12:
        return None
    fee = int(text)
    return fee if 0 < fee <= limit else None
