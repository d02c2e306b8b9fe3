"""WeChat's Beijing-time strings converted to naive UTC, and tornpay's one marked UTC text form."""

import datetime
from typing import Optional

BEIJING = datetime.timezone(datetime.timedelta(hours=8))  # China Standard Time, no DST
# WeChat v2 writes "2017-12-15 09:46:01" (refund success_time) or "20171215094601" (time_end).
_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y%m%d%H%M%S")
UTC_TEXT = "%Y-%m-%dT%H:%M:%SZ"  # e.g. 2024-06-01T04:31:10Z: 20 characters, marked UTC


def beijing_to_utc(text: Optional[str]) -> Optional[datetime.datetime]:
    """Parse a WeChat (Beijing) time; return naive UTC like every column, or None if unparsable."""
    for fmt in _FORMATS:
        try:
            local = datetime.datetime.strptime((text or "").strip(), fmt)
        except ValueError:
            continue
        return local.replace(tzinfo=BEIJING).astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return None


def utc_text(moment: Optional[datetime.datetime]) -> Optional[str]:
    """``2024-06-01T04:31:10Z`` for a naive-UTC (or aware) datetime; None stays None."""
    if moment is None:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return moment.strftime(UTC_TEXT)
