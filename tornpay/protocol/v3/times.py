"""v3 times (RFC 3339) and the v2 forms the core stores (Beijing yyyyMMddHHmmss)."""

import datetime
from typing import Optional

BEIJING = datetime.timezone(datetime.timedelta(hours=8))


def _parse(text) -> Optional[datetime.datetime]:
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(BEIJING) if moment.tzinfo else None


def rfc3339_epoch(text) -> Optional[float]:
    """Epoch seconds of an RFC 3339 time (``...+08:00`` or ``...Z``), None when malformed."""
    moment = _parse(text)
    return moment.timestamp() if moment else None


def beijing_compact(text) -> Optional[str]:
    moment = _parse(text)
    return moment.strftime("%Y%m%d%H%M%S") if moment else None


def beijing_dashed(text) -> Optional[str]:
    moment = _parse(text)
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else None


def rfc3339_from_compact(text: str) -> str:
    """``20250101100000`` (Beijing) -> ``2025-01-01T10:00:00+08:00`` (P7)."""
    moment = datetime.datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=BEIJING)
    return moment.isoformat(timespec="seconds")
