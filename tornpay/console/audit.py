"""The audit trail: every console action in a table and in the log."""

import logging
from typing import List, Optional

from tornpay.storage.db import database_proxy as db
from tornpay.storage.opsmodels import AuditEntry

logger = logging.getLogger("tornpay.audit")

OK, REFUSED, FAILED = "ok", "refused", "failed"


def audit(operator: str, action: str, outcome: str, *, out_trade_no: Optional[str] = None,
          detail: str = "", remote_ip: str = "") -> None:
    """Record one action (operator, what, which order, outcome, now) and log it."""
    with db.atomic():
        AuditEntry.create(operator=operator[:64], action=action[:32], outcome=outcome[:16],
                          out_trade_no=out_trade_no[:64] if out_trade_no else None,
                          detail=detail[:500], remote_ip=remote_ip[:64])
    level = logging.INFO if outcome == OK else logging.WARNING
    logger.log(level, "audit operator=%s action=%s order=%s outcome=%s ip=%s %s", operator,
               action, out_trade_no or "-", outcome, remote_ip or "-", detail)


def recent(out_trade_no: Optional[str] = None, limit: int = 50) -> List[AuditEntry]:
    """The newest entries, optionally of one order."""
    query = AuditEntry.select().order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
    if out_trade_no:
        query = query.where(AuditEntry.out_trade_no == out_trade_no)
    return list(query.limit(limit))
