"""Orders this process saw durably paid: a repeated notify is checked against them, not the DB."""

import sys
from typing import Any, Dict, Mapping, NamedTuple, Optional

from tornpay.orders.notify_checks import OrderRef, v2_failure

# WeChat repeats a notify until it is answered, within minutes mostly; the
# newest orders are the ones repeated. ~330 bytes an entry: ~3 MB when full.
CACHE_SIZE = 10_000


class Paid(NamedTuple):
    """What a repeat of an order's notify is checked against (none of it ever changes)."""

    sign_type: str
    total_fee: int
    appid: str  # the order's own ("" = the Official Account's)
    transaction_id: str  # the payment that paid it


class PaidCache:
    """out_trade_no -> :class:`Paid`, bounded, oldest dropped first.

    Filled only on the IOLoop after the transaction that paid the order, or
    that read it already paid, has committed: an entry is never ahead of the
    database. No move leads from PAID back to a payable state (refunds keep it
    paid: docs/ARCHITECTURE.md, the state machine), so an entry never goes
    stale whichever process changes the order later, and a repeat
    of its notify is answered SUCCESS as the database would answer it.
    """

    def __init__(self, size: int = CACHE_SIZE):
        self.size = size
        self._entries: Dict[str, Paid] = {}
        self.hits = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, out_trade_no: Any) -> Optional[Paid]:
        return self._entries.get(out_trade_no) if isinstance(out_trade_no, str) else None

    def add(self, out_trade_no: str, sign_type: str, total_fee: int, appid: str,
            transaction_id: str) -> None:
        """Remember a committed payment (call it only after the commit)."""
        entries = self._entries
        if out_trade_no in entries:
            return
        if len(entries) >= self.size:
            del entries[next(iter(entries))]  # dicts keep insertion order: the oldest
        entries[out_trade_no] = Paid(sys.intern(sign_type), total_fee, sys.intern(appid or ""),
                                     transaction_id)


def repeats(wechat: Any, paid: Paid, fields: Mapping[str, Any]) -> bool:
    """True when ``fields`` pass every check of SPEC §5 against ``paid`` and name its payment.

    The database path's own checks (``notify_checks``: signature in constant
    time with the order's algorithm, appid, mch_id, amount, currency), and the
    same ``transaction_id``. Anything else (a refusal, a second payment to
    alert on) is False: the full pipeline then refuses, logs and records it.
    """
    if (fields.get("return_code") != "SUCCESS" or fields.get("result_code") != "SUCCESS"
            or fields.get("transaction_id") != paid.transaction_id):
        return False
    order = OrderRef(fields.get("out_trade_no"), paid.sign_type, paid.total_fee, "v2",
                     paid.appid)
    return v2_failure(wechat, order, fields) is None
