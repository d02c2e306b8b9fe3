"""peewee's DEBUG SQL lines: parameters scrubbed, the statement itself left exactly as written."""

import datetime
import decimal
import logging
import re
from typing import Any, Iterable, Sequence, Tuple

SQL_LOGGER = "peewee"  # peewee logs ``(sql, params)`` tuples at DEBUG on this logger
SECRET = "[secret]"
# Short values (states, hook names, sign types, IP addresses, product ids) stay
# readable; openids (28), signatures (32+), prepay ids (36), OAuth codes and the
# stored signed XML are longer and never shown. tornpay's own order and refund
# numbers ("TP"/"RF" + UTC stamp + 14 characters) stay readable too.
MAX_SHOWN_CHARS = 16
_OWN_NUMBER_RE = re.compile(r"(?:TP|RF)\d{14}[A-Za-z0-9]{14}")
_PLAIN_TYPES = (bool, int, float, decimal.Decimal, datetime.date, datetime.time,
                datetime.timedelta)


def is_sql_record(record: logging.LogRecord) -> bool:
    """True for peewee's ``(sql, params)`` records (the message is a tuple, not text)."""
    msg = record.msg
    return (isinstance(msg, tuple) and len(msg) == 2 and isinstance(msg[0], str)
            and (msg[1] is None or isinstance(msg[1], (list, tuple, dict))))


def scrub_param(value: Any, secrets: Iterable[str] = ()) -> Any:
    """The value if it is plainly safe to print, else ``[secret]``."""
    if value is None or isinstance(value, _PLAIN_TYPES):
        return value
    if not isinstance(value, str):
        return SECRET  # bytes, JSON blobs, anything unexpected
    if _OWN_NUMBER_RE.fullmatch(value):
        return value
    if len(value) > MAX_SHOWN_CHARS or any(s and s in value for s in secrets):
        return SECRET
    return value


def scrub_sql(msg: Tuple[str, Any], secrets: Sequence[str] = ()) -> Tuple[str, Any]:
    """``(sql, params)`` with each parameter scrubbed; literal secrets in ``sql`` replaced."""
    sql, params = msg
    for secret in secrets:
        if secret and secret in sql:
            sql = sql.replace(secret, SECRET)
    if isinstance(params, dict):
        return sql, {k: scrub_param(v, secrets) for k, v in params.items()}
    return sql, [scrub_param(v, secrets) for v in (params or ())]
