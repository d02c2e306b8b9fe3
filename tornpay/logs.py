"""Structured logging: the out_trade_no on every payment line, as key=value text or JSON lines."""

import datetime
import json
import logging
import re
import sys
from typing import Any, Iterable, Mapping, Optional

from tornpay.logsafe import disarm_alert, is_own_alert, trusted_text

FORMATS = ("text", "json")  # server.log_format
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class OrderLogAdapter(logging.LoggerAdapter):
    """A logger bound to one order: every line carries ``out_trade_no`` (and any other fields).

    The fields go twice: as record attributes (``record.out_trade_no`` and
    ``record.tornpay_fields``) for tornpay's formatters, and as a
    ``key=value`` suffix of the message so an estate's own formatter, which
    knows nothing of them, still prints the order number.
    """

    def process(self, msg, kwargs):
        fields = {k: v for k, v in self.extra.items() if v is not None}
        suffix = " ".join(f"{k}={_kv(v)}" for k, v in fields.items())
        extra = dict(kwargs.get("extra") or {})
        extra.update(fields, tornpay_fields=fields, tornpay_suffix=suffix)
        kwargs["extra"] = extra
        return (f"{msg} {suffix}" if suffix else msg), kwargs


def order_log(logger: logging.Logger, out_trade_no: Optional[str],
              **fields: Any) -> OrderLogAdapter:
    """``order_log(logger, "T1").info("notify accepted from %s", ip)``: the line names the order."""
    return OrderLogAdapter(logger, dict({"out_trade_no": out_trade_no}, **fields))


# What json.dumps(ensure_ascii=False) escapes: without any of these, quoting is enough.
_NEEDS_ESCAPE_RE = re.compile(r'["\\\x00-\x1f]')


def _kv(value: Any) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' "=\n\t'):
        if _NEEDS_ESCAPE_RE.search(text) is None:
            return f'"{text}"'  # what json.dumps gives, for a message line at a third of the cost
        return json.dumps(text, ensure_ascii=False)
    return text


# Lines written without order_log still get the field when they name an order:
# "out_trade_no=X", or one of our own numbers ("TP" + UTC stamp + 14-char nonce).
_NAMED_ORDER_RE = re.compile(r"out_trade_no=([A-Za-z0-9_-]{1,32})\b"
                             r"|(?<![A-Za-z0-9_-])(TP\d{14}[A-Za-z0-9]{14})(?![A-Za-z0-9_-])")


def _fields(record: logging.LogRecord, message: str = "") -> Mapping[str, Any]:
    fields = dict(getattr(record, "tornpay_fields", None) or {})
    # Plain ``extra={"out_trade_no": ...}`` works too, without the adapter. (The
    # set difference, in C, finds them; the loop keeps their order.)
    attrs = vars(record)
    if any(not key.startswith("tornpay_") for key in attrs.keys() - _STANDARD):
        for key, value in attrs.items():
            if key not in _STANDARD and not key.startswith("tornpay_") and key not in fields:
                fields[key] = value
    # Only tornpay's own lines, and only their trusted parts, may name the order;
    # ``extra={"out_trade_no": None}`` says "no order" and stops the guess.
    if "out_trade_no" not in fields and message and record.name.startswith("tornpay"):
        match = _NAMED_ORDER_RE.search(trusted_text(record))
        if match:
            fields["out_trade_no"] = match.group(1) or match.group(2)
    return {k: v for k, v in fields.items() if v is not None}


def _message(record: logging.LogRecord) -> str:
    message = record.getMessage()
    suffix = getattr(record, "tornpay_suffix", "")
    if suffix and message.endswith(" " + suffix):
        message = message[: -len(suffix) - 1]  # the fields are written as fields instead
    # ALERT is the word operators grep for: only tornpay's own alerts may say it.
    return message if is_own_alert(record) else disarm_alert(message)


# (second, "YYYY-MM-DDTHH:MM:SS") of the last line: most lines share their second
# with the one before. One tuple, replaced whole, so threads never see half of it.
_last_second = (-1, "")


def _timestamp(record: logging.LogRecord) -> str:
    global _last_second
    second = int(record.created)
    cached, prefix = _last_second
    if second != cached:
        moment = datetime.datetime.fromtimestamp(second, datetime.timezone.utc)
        prefix = moment.strftime("%Y-%m-%dT%H:%M:%S")
        _last_second = (second, prefix)
    return f"{prefix}.{int(record.msecs):03d}Z"


class KeyValueFormatter(logging.Formatter):
    """``time=... level=INFO logger=tornpay.orders.notify msg="..." out_trade_no=T1``."""

    def format(self, record: logging.LogRecord) -> str:
        message = _message(record)
        parts = [f"time={_timestamp(record)}", f"level={record.levelname}",
                 f"logger={record.name}", f"msg={_kv(message)}"]
        parts += [f"{k}={_kv(v)}" for k, v in _fields(record, message).items()]
        line = " ".join(parts)
        if record.exc_info:
            # exc_text: already formatted (and scrubbed) by weblog.ScrubFilter.
            line += "\n" + (record.exc_text or self.formatException(record.exc_info))
        return line


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, msg, the order fields, exc."""

    def format(self, record: logging.LogRecord) -> str:
        message = _message(record)
        data = {"time": _timestamp(record), "level": record.levelname, "logger": record.name,
                "msg": message}
        for key, value in _fields(record, message).items():
            data.setdefault(key, value)
        if record.exc_info:
            data["exc"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


def make_formatter(fmt: str = "text") -> logging.Formatter:
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    return JSONFormatter() if fmt == "json" else KeyValueFormatter()


def configure(level: str = "INFO", fmt: str = "text", stream=None,
              secrets: Iterable[str] = ()) -> logging.Handler:
    """Logging for a standalone tornpay process (never called when embedded: the estate owns it).

    One stderr handler on the root logger with the chosen formatter and a
    :class:`~tornpay.weblog.ScrubFilter` (URIs with codes or signatures, and the
    literal ``secrets``, never reach the output).
    """
    from tornpay.weblog import ScrubFilter

    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(make_formatter(fmt))
    handler.addFilter(ScrubFilter(secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level))
    # Neither format prints a thread or process: do not look them up for every
    # record (a getpid call each; logging was a tenth of a notify's CPU).
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    # Nor a caller's file and line: no frame walk per record (the Python docs'
    # own advice for speed; an estate's logging is not configured here).
    logging._srcfile = None
    return handler
