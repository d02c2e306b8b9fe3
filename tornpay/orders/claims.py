"""The dispatcher's claim: lease due deliveries to one process and load what each call needs."""

import datetime
from typing import Dict, Iterable, List, Optional, Set, Tuple

from tornpay.orders import outbox_sql as sql
from tornpay.storage.db import database_proxy as db
from tornpay.storage.db import is_postgres
from tornpay.storage.models import utcnow

BATCH = 100  # deliveries claimed per pass


def claim_due_deliveries(owner_id: str, lease_seconds: float, limit: int = BATCH,
                         exclude: Optional[Set[str]] = None,
                         plugins: Optional[List[str]] = None) -> List[str]:
    """Lease up to ``limit`` due pending deliveries for ``owner_id``; return their ids.

    ``plugins``: only deliveries to these plugins (the ones this process has
    loaded); None means any.

    PostgreSQL: one short transaction selects the rows ``FOR UPDATE SKIP
    LOCKED`` (a row another process is claiming right now is skipped, not
    waited for) and sets their lease. SQLite (one writer at a time): select
    candidates, then take them with one conditional UPDATE that only succeeds
    on rows whose lease is free or expired (all in one commit). Either way the
    lease, not the lock, is what is held during the call, so a dead process's
    rows come back when its lease expires.
    """
    return list(_claim(owner_id, lease_seconds, limit, exclude or set(), plugins))


def _claim(owner_id: str, lease_seconds: float, limit: int, exclude: Set[str],
           plugins: Optional[List[str]]) -> Dict[str, Optional[sql.Loaded]]:
    """``{id: Loaded}`` in claim order (SQLite loads while it checks the lease; PG: None)."""
    now = utcnow()
    until = now + datetime.timedelta(seconds=lease_seconds)
    # ``exclude`` (our own calls still running) is filtered here rather than in
    # the SQL, so the statement stays one compiled text whatever its size.
    args = {"now": now, "limit": limit + len(exclude)}
    pg = is_postgres(db.obj)
    if plugins is None:
        claim = sql.CLAIM_PG if pg else sql.CLAIM
    elif not plugins:
        return {}
    else:
        claim = (sql.CLAIM_PG_FOR if pg else sql.CLAIM_FOR)[len(plugins)]
        args.update((f"p{i}", name) for i, name in enumerate(plugins))
    if pg:
        with db.atomic():
            ids = [r[0] for r in claim.all(**args) if r[0] not in exclude][:limit]
            if ids:
                sql.LEASE_PG.execute(ids=ids, owner=owner_id, until=until)
        return dict.fromkeys(ids)
    candidates = [r[0] for r in claim.all(**args) if r[0] not in exclude][:limit]
    mine: Dict[str, Optional[sql.Loaded]] = {}
    with db.atomic():
        for start in range(0, len(candidates), sql.SIZES[-1]):
            chunk = candidates[start:start + sql.SIZES[-1]]
            # One conditional UPDATE per chunk, then load those it leased to us.
            values = sql.padded(chunk)
            sql.LEASE_MANY[len(values)].execute(owner=owner_id, until=until, now=now, **values)
            mine.update(sql.load_mine(chunk, owner_id))
    return {delivery_id: mine[delivery_id] for delivery_id in candidates if delivery_id in mine}


def claim_and_load(owner_id: str, lease_seconds: float, *, exclude: Set[str],
                   plugins: Optional[Iterable[str]] = None
                   ) -> List[Tuple[str, Optional[sql.Loaded]]]:
    """Claim due deliveries and load each one's delivery, event and order columns."""
    claimed = _claim(owner_id, lease_seconds, BATCH, exclude,
                     None if plugins is None else list(plugins))
    # PostgreSQL: one lookup by primary key each. An ``id IN (...)`` there is
    # planned from the table's statistics, which lag a growing outbox: it ran as
    # a scan of every delivery and cost the 5 ms-proxy bench 12% (bench/README.md).
    return [(delivery_id, row if row is not None else sql.load(delivery_id))
            for delivery_id, row in claimed.items()]
