"""Refused notifies: rate-limited warnings and rows, and a bounded number of rows kept.

Anyone can POST junk to /notify. Each refusal used to cost a WARNING line
and a stored row; 20,000 junk notifies added 10.5 MB to each. Now the first
refusal of a kind (notify kind, sender address, reply) in a window is logged
and stored; the repeats are only counted, and the count is written as one
line and one row when the window ends. Older refused rows beyond
``orders.refused_notify_rows`` are deleted.
"""

import logging
import threading
from typing import Callable, Optional

from tornpay.logsafe import untrusted
from tornpay.logthrottle import Throttle
from tornpay.storage.models import Notification

logger = logging.getLogger(__name__)

REFUSED = "refused"
# Senders x replies remembered at once; past it the oldest kinds are forgotten
# (and logged afresh), so varying the address cannot grow memory.
MAX_KINDS = 4096
# Distinct (sender, reason) kinds logged one by one per window; past it, counted.
MAX_LINES_PER_WINDOW = 100
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
        self._window_started = self.throttle.clock()
        self._lines = 0
        self._over_budget = 0
        self._last_flush = float("-inf")
        # Called from the database writer threads (several on PostgreSQL): the
        # counters and the throttle are read-modify-write. Re-entrant: refused()
        # flushes first.
        self._lock = threading.RLock()

    def refused(self, kind: str, remote_ip: str, reply: str, reason: str, *,
                claimed: Optional[str], verified: Optional[str], record: Recorder) -> None:
        """Log and store one refusal, unless one like it was stored in this window.

        ``claimed``: the out_trade_no the body named (attacker text until the
        signature checked out); ``verified``: the same once it did, else None.
        """
        with self._lock:
            self._refused(kind, remote_ip, reply, reason, claimed, verified, record)

    def _refused(self, kind, remote_ip, reply, reason, claimed, verified, record) -> None:
        self.flush(record)
        # Only unauthenticated junk is throttled: a refusal of a notify WeChat
        # signed (or encrypted with our key) is rare and always worth its line.
        if verified is None and (self.throttle.allow((kind, remote_ip, reply)) is None
                                 or not self._within_window_budget()):
            return
        # Attacker text is quoted, and only a verified number names the order.
        logger.warning("%s notify from %s refused: %s (claimed out_trade_no %s)", kind,
                       remote_ip, untrusted(reason), untrusted(claimed),
                       extra={"out_trade_no": verified})
        self._store(record, verified or _safe_number(claimed), remote_ip, reason)

    def _within_window_budget(self) -> bool:
        # Many senders (or forged addresses) each get one line: cap those too.
        now = self.throttle.clock()
        if now - self._window_started >= self.throttle.window:
            self._window_started, self._lines = now, 0
        self._lines += 1
        if self._lines > MAX_LINES_PER_WINDOW:
            self._over_budget += 1
            return False
        return True

    def flush(self, record: Recorder) -> None:
        """Write the counts of windows that have ended (one line and one row each)."""
        with self._lock:
            self._flush(record)

    def _flush(self, record: Recorder) -> None:
        now = self.throttle.clock()
        if now - self._last_flush < 1.0:
            return
        self._last_flush = now
        for (kind, remote_ip, reply), count in self.throttle.expired():
            logger.warning("%d more %s notifies from %s refused (%s) were not logged one by "
                           "one", count, kind, remote_ip, reply, extra={"out_trade_no": None})
            self._store(record, None, remote_ip,
                        f"{count} more refused like this ({kind}): {reply}")
        if self._over_budget and now - self._window_started >= self.throttle.window:
            logger.warning("%d more refused notifies (over %d senders and reasons a window) "
                           "were not logged one by one", self._over_budget,
                           MAX_LINES_PER_WINDOW, extra={"out_trade_no": None})
            self._store(record, None, "", f"{self._over_budget} more refused, from many senders")
            self._over_budget = 0

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
