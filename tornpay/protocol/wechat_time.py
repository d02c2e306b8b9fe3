"""WeChat's Beijing-time strings converted to naive UTC, and tornpay's one marked UTC text form."""

import datetime
from typing import Optional

_BEIJING_OFFSET = datetime.timedelta(hours=8)
BEIJING = datetime.timezone(_BEIJING_OFFSET)  # China Standard Time, no DST
# WeChat v2 writes "2017-12-15 09:46:01" (refund success_time) or "20171215094601" (time_end).
_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y%m%d%H%M%S")
UTC_TEXT = "%Y-%m-%dT%H:%M:%SZ"  # e.g. 2024-06-01T04:31:10Z: 20 characters, marked UTC


def beijing_to_utc(text: Optional[str]) -> Optional[datetime.datetime]:
    """Parse a WeChat (Beijing) time; return naive UTC like every column, or None if unparsable."""
    text = (text or "").strip()
    if len(text) == 14 and text.isascii() and text.isdigit():
        # time_end of every pay notify: read directly (strptime was a notify's
        # costliest step after the XML); anything odd goes the strptime way.
        try:
            local = datetime.datetime(int(text[:4]), int(text[4:6]), int(text[6:8]),
                                      int(text[8:10]), int(text[10:12]), int(text[12:]))
            return local - _BEIJING_OFFSET
        except ValueError:
            pass
    for fmt in _FORMATS:
        try:
            local = datetime.datetime.strptime(text, fmt)
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
