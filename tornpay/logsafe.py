"""Attacker text in log lines: quoted, escaped, never an ALERT, never a structured field."""

import logging
import re
from typing import Any

ALERT = "ALERT"  # the word operators watch for: only tornpay's own alerts carry it
# Any spelling of it inside text someone else chose.
_ALERT_ANY_CASE = re.compile(ALERT, re.IGNORECASE)
MAX_QUOTED = 200


class Untrusted(str):
    """A log argument that came from outside (a notify field, a header): already quoted.

    tornpay's formatters never take a structured field (``out_trade_no``)
    from it, and it cannot spell ALERT.
    """


def _escape_alert(match: "re.Match") -> str:
    word = match.group(0)
    return "\\x%02x%s" % (ord(word[0]), word[1:])


def untrusted(value: Any, limit: int = MAX_QUOTED) -> Untrusted:
    """``value`` as a repr-style quoted string: newlines and control characters escaped,
    at most ``limit`` characters of it, and ALERT written ``\\x41LERT``."""
    if value is None:
        return Untrusted("None")
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    quoted = repr(text[:limit]) + ("..." if len(text) > limit else "")
    return Untrusted(_ALERT_ANY_CASE.sub(_escape_alert, quoted))


def is_own_alert(record: logging.LogRecord) -> bool:
    """True for a tornpay alert: a tornpay logger, ERROR or worse, a template starting ALERT."""
    return (record.levelno >= logging.ERROR and record.name.startswith("tornpay")
            and isinstance(record.msg, str) and record.msg.startswith(ALERT))


def disarm_alert(message: str) -> str:
    """``message`` with the word ALERT escaped (for lines that are not tornpay's alerts)."""
    return message.replace(ALERT, "\\x41LERT") if ALERT in message else message


def trusted_text(record: logging.LogRecord) -> str:
    """The record's message with every :class:`Untrusted` argument left out."""
    args = record.args
    if isinstance(args, tuple) and any(isinstance(a, Untrusted) for a in args):
        try:
            return str(record.msg) % tuple("<untrusted>" if isinstance(a, Untrusted) else a
                                           for a in args)
        except (TypeError, ValueError):
            return str(record.msg)
    return record.getMessage()
