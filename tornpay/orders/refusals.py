"""Refused notifies: rate-limited warnings and rows, and a bounded number of rows kept.

Anyone can POST junk to /notify. Each refusal used to cost a WARNING line
and a stored row; 20,000 junk notifies added 10.5 MB to each. Now the first
refusal of a kind (notify kind, sender address, reply) in a window is logged
and stored; the repeats are only counted, and the count is written as one
line and one row when the window ends. Older refused rows beyond
``orders.refused_notify_rows`` are deleted.
"""

import logging
from typing import Callable, Optional

from tornpay.logsafe import untrusted
from tornpay.logthrottle import Throttle
from tornpay.storage.models import Notification

logger = logging.getLogger(__name__)

REFUSED = "refused"
# Senders x replies remembered at once; past it the oldest kinds are forgotten
# (and logged afresh), so varying the address cannot grow memory.
MAX_KINDS = 4096
# Recorder: (out_trade_no, remote_ip, outcome, reason) -> None, one INSERT.
Recorder = Callable[[Optional[str], str, str, str], None]


class RefusalLog:
    """One per app: decides which refused notifies are logged and stored."""

    def __init__(self, settings):
        orders = settings.orders
        self.keep = orders.refused_notify_rows
        self.prune_every = max(1, self.keep // 10)
        self.throttle = Throttle(orders.refused_notify_window_seconds, max_keys=MAX_KINDS)
        # Prune at the first stored refusal of a process, then every prune_every.
        self._until_prune = 1

    def refused(self, kind: str, remote_ip: str, reply: str, reason: str, *,
                claimed: Optional[str], verified: Optional[str], record: Recorder) -> None:
        """Log and store one refusal, unless one like it was stored in this window.

        ``claimed``: the out_trade_no the body named (attacker text until the
        signature checked out); ``verified``: the same once it did, else None.
        """
        self.flush(record)
        # Only unauthenticated junk is throttled: a refusal of a notify WeChat
        # signed (or encrypted with our key) is rare and always worth its line.
        if verified is None and self.throttle.allow((kind, remote_ip, reply)) is None:
            return
        # Attacker text is quoted, and only a verified number names the order.
        logger.warning("%s notify from %s refused: %s (claimed out_trade_no %s)", kind,
                       remote_ip, untrusted(reason), untrusted(claimed),
                       extra={"out_trade_no": verified})
        self._store(record, verified or _safe_number(claimed), remote_ip, reason)

    def flush(self, record: Recorder) -> None:
        """Write the counts of windows that have ended (one line and one row each)."""
        for (kind, remote_ip, reply), count in self.throttle.expired():
            logger.warning("%d more %s notifies from %s refused (%s) were not logged one by "
                           "one", count, kind, remote_ip, reply, extra={"out_trade_no": None})
            self._store(record, None, remote_ip,
                        f"{count} more refused like this ({kind}): {reply}")

    def _store(self, record: Recorder, out_trade_no: Optional[str], remote_ip: str,
               reason: str) -> None:
        record(out_trade_no, remote_ip, REFUSED, reason)
        self._until_prune -= 1
        if self._until_prune <= 0:
            self._until_prune = self.prune_every
            prune(self.keep - self.prune_every)


def _safe_number(claimed: Optional[str]) -> Optional[str]:
    from tornpay.protocol.ids import is_valid_out_trade_no

    return claimed if isinstance(claimed, str) and is_valid_out_trade_no(claimed) else None


def prune(keep: int) -> int:
    """Delete all but the newest ``keep`` refused rows; return how many went."""
    cutoff = (Notification.select(Notification.id).where(Notification.outcome == REFUSED)
              .order_by(Notification.id.desc()).offset(max(0, keep)).limit(1).scalar())
    if cutoff is None:
        return 0
    return (Notification.delete()
            .where((Notification.outcome == REFUSED) & (Notification.id <= cutoff)).execute())
