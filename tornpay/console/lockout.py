"""Sign-in lockout: 5 failures for one name or from one IP within 15 minutes lock it 15 minutes."""

import datetime
import logging
from typing import Optional

from tornpay.storage.db import database_proxy as db
from tornpay.storage.models import utcnow
from tornpay.storage.opsmodels import LoginFailure

logger = logging.getLogger(__name__)

MAX_FAILURES = 5
WINDOW = datetime.timedelta(minutes=15)
LOCK = datetime.timedelta(minutes=15)
KEEP = datetime.timedelta(days=1)  # failures older than this are deleted: the table stays small


def _locked_until(field, value: str, now: datetime.datetime) -> Optional[datetime.datetime]:
    # The newest five failures; while locked, attempts are refused unchecked
    # and not recorded, so the lock ends LOCK after the fifth failure.
    times = [row.at for row in LoginFailure.select(LoginFailure.at).where(field == value)
             .order_by(LoginFailure.at.desc()).limit(MAX_FAILURES)]
    if len(times) < MAX_FAILURES or times[0] - times[-1] > WINDOW:
        return None
    until = times[0] + LOCK
    return until if until > now else None


def locked_until(name: str, remote_ip: str) -> Optional[datetime.datetime]:
    """When the lock on ``name`` or ``remote_ip`` ends (naive UTC), or None when neither is."""
    now = utcnow()
    found = [t for t in (_locked_until(LoginFailure.name, name[:64], now),
                         _locked_until(LoginFailure.remote_ip, remote_ip[:64], now)) if t]
    return max(found) if found else None


def record_failure(name: str, remote_ip: str) -> None:
    """Count one failed sign-in (and prune old ones)."""
    now = utcnow()
    with db.atomic():
        LoginFailure.create(name=name[:64], remote_ip=remote_ip[:64], at=now)
        LoginFailure.delete().where(LoginFailure.at < now - KEEP).execute()


def clear(name: str) -> None:
    """A successful sign-in forgets the name's failures (the IP's stay counted)."""
    with db.atomic():
        LoginFailure.delete().where(LoginFailure.name == name[:64]).execute()
