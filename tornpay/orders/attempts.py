"""Delivery attempt history (one row per hook call) and how a failing delivery is logged."""

import datetime
import logging
from typing import Dict, Iterable, List, Optional

import peewee

from tornpay.storage.fastsql import Statement, param
from tornpay.storage.models import DeliveryAttempt, utcnow

ERROR_CHARS = 500
DONE, ERROR, TIMEOUT = "done", "error", "timeout"

# One per delivered call: compiled once (tornpay.storage.fastsql), not built per row.
_INSERT = Statement("insert_delivery_attempt", lambda: DeliveryAttempt.insert(
    delivery=param(DeliveryAttempt.delivery), started_at=param(DeliveryAttempt.started_at),
    finished_at=param(DeliveryAttempt.finished_at), outcome=param(DeliveryAttempt.outcome),
    error=param(DeliveryAttempt.error), owner=param(DeliveryAttempt.owner)))


def record(delivery_id: str, started_at: datetime.datetime, outcome: str,
           error: Optional[str] = None, owner: Optional[str] = None,
           finished_at: Optional[datetime.datetime] = None) -> None:
    """Keep one attempt: when it started and ended, its outcome and error (never rewritten)."""
    _INSERT.execute(delivery=delivery_id, started_at=started_at,
                    finished_at=finished_at or utcnow(),
                    outcome=outcome, error=error[:ERROR_CHARS] if error else None, owner=owner)


def log_failure(logger: logging.Logger, delivery_id: str, hook: str, plugin: str,
                exc: BaseException, earlier_attempts: int) -> None:
    """The first failure of a delivery's run logs its traceback; later ones one line each.

    ``earlier_attempts`` is the delivery's attempt counter before this call: 0 on
    its first call and on the first call after ``tornpay deliveries retry``.
    """
    if earlier_attempts == 0:
        logger.warning("delivery %s (%s to %s) raised %s: %s", delivery_id, hook, plugin,
                       type(exc).__name__, exc, exc_info=exc)
    else:
        logger.warning("delivery %s (%s to %s) raised %s again (attempt %d): %s", delivery_id,
                       hook, plugin, type(exc).__name__, earlier_attempts + 1, exc)


def history(delivery_ids: Iterable[str]) -> Dict[str, List[DeliveryAttempt]]:
    """Every attempt of each delivery, oldest first."""
    ids = list(delivery_ids)
    out: Dict[str, List[DeliveryAttempt]] = {i: [] for i in ids}
    if ids:
        rows = (DeliveryAttempt.select().where(DeliveryAttempt.delivery.in_(ids))
                .order_by(DeliveryAttempt.started_at, DeliveryAttempt.id))
        for row in rows:
            out[row.delivery_id].append(row)
    return out


def counts(delivery_ids: Iterable[str]) -> Dict[str, int]:
    """How many attempts each delivery has had in all (retries included)."""
    ids = list(delivery_ids)
    if not ids:
        return {}
    rows = (DeliveryAttempt.select(DeliveryAttempt.delivery, peewee.fn.COUNT(DeliveryAttempt.id))
            .where(DeliveryAttempt.delivery.in_(ids)).group_by(DeliveryAttempt.delivery).tuples())
    return dict(rows)
