"""Follow up open refunds: refundquery them, or resend a request WeChat never saw."""

import asyncio
import datetime
import logging
from typing import Any, List

from tornpay.orders import refunds
from tornpay.orders.periodic import PeriodicWorker
from tornpay.protocol.errors import BusinessError, WeChatError
from tornpay.storage.db import database_proxy as db
from tornpay.storage.models import Refund, utcnow

logger = logging.getLogger(__name__)

BATCH = 20


def due_refunds(older_than: float, limit: int = BATCH) -> List[str]:
    """Open refunds (REQUESTED or PROCESSING) untouched for ``older_than`` seconds."""
    cutoff = utcnow() - datetime.timedelta(seconds=older_than)
    query = (Refund.select(Refund.out_refund_no)
             .where(Refund.state.in_(refunds.OPEN_STATES) & (Refund.updated_at <= cutoff))
             .order_by(Refund.updated_at).limit(limit))
    return [row.out_refund_no for row in query]


class RefundFollowUp(PeriodicWorker):
    """Periodic pass over open refunds, in the server's IOLoop beside the reconciler.

    A refund notify can be lost like a payment notify, and a refund request can
    time out with its outcome unknown. Both are settled the same way: ask
    ``refundquery``; a REQUESTED refund WeChat has never seen is re-sent with
    the same ``out_refund_no`` and bytes, which WeChat refunds at most once
    (reference §8, P18). No lease is needed across processes: the query is
    read-only, applying its answer is a conditional update, and a duplicate
    resend of the same ``out_refund_no`` is idempotent at WeChat.
    """

    name = "refund follow-up"

    def __init__(self, ctx: Any):
        self.ctx = ctx
        self.cfg = ctx.settings.orders

    def interval(self) -> float:
        return self.cfg.reconcile_interval_seconds

    async def run_once(self) -> int:
        """Check every due refund once; return how many were checked."""
        due = await self.ctx.db_read(due_refunds, self.cfg.reconcile_after_seconds)
        await asyncio.gather(*(self.check(no) for no in due))
        return len(due)

    async def check(self, out_refund_no: str) -> str:
        """Settle one open refund as far as WeChat's answer allows; return what happened."""
        refund = await self.ctx.db_read(Refund.get_by_id, out_refund_no)
        try:
            status, _changed = await refunds.query_refund(self.ctx, out_refund_no)
        except BusinessError as exc:
            if exc.err_code == "REFUNDNOTEXIST" and refund.state == "REQUESTED":
                logger.info("refund %s: unknown to WeChat; re-sending the same request",
                            out_refund_no)
                after = await refunds.send_refund(self.ctx, out_refund_no)
                status = f"RESENT:{after.state}"
            else:
                status = f"ERROR:{exc.err_code}"
                logger.warning("refund %s follow-up: %s", out_refund_no, exc)
        except (WeChatError, refunds.RefundError) as exc:
            status = f"ERROR:{type(exc).__name__}"
            logger.warning("refund %s follow-up: %s", out_refund_no, exc)
        await self.ctx.db_write(self._touch, out_refund_no, group=True)
        return status

    @staticmethod
    def _touch(out_refund_no: str) -> None:
        # updated_at doubles as "last checked": the next look is one interval later.
        with db.atomic():
            (Refund.update(updated_at=utcnow())
             .where((Refund.out_refund_no == out_refund_no)
                    & Refund.state.in_(refunds.OPEN_STATES))
             .execute())
