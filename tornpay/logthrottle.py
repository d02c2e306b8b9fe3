"""Rate-limited logging: one line per kind of repeated event per window, with a count of the rest."""

import errno
import logging
import time
from collections import OrderedDict
from typing import Callable, Hashable, Optional

# How often one kind of repeated line (an accept error, a refused notify from
# one address) may be written; the ones in between are only counted.
DEFAULT_WINDOW = 60.0
# Distinct kinds remembered at once: an attacker varying the key cannot grow
# this table (the oldest kinds are forgotten and simply logged again).
MAX_KEYS = 1024


class Throttle:
    """Let the first event of each key through per ``window`` seconds; count the others."""

    def __init__(self, window: float = DEFAULT_WINDOW, max_keys: int = MAX_KEYS,
                 clock: Callable[[], float] = time.monotonic):
        self.window = window
        self.max_keys = max_keys
        self.clock = clock
        self._seen: "OrderedDict[Hashable, list]" = OrderedDict()  # key -> [opened_at, suppressed]

    def allow(self, key: Hashable) -> Optional[int]:
        """None when this event should be suppressed, else how many were suppressed before it."""
        now = self.clock()
        entry = self._seen.get(key)
        if entry is not None and now - entry[0] < self.window:
            entry[1] += 1
            return None
        suppressed = entry[1] if entry is not None else 0
        self._seen[key] = [now, 0]
        self._seen.move_to_end(key)
        while len(self._seen) > self.max_keys:
            self._seen.popitem(last=False)
        return suppressed

    def pending(self):
        """``(key, suppressed)`` for every key with events counted but not yet reported."""
        return [(key, entry[1]) for key, entry in self._seen.items() if entry[1]]

    def expired(self):
        """Forget keys whose window has passed; return ``(key, suppressed)`` of those with counts."""
        now = self.clock()
        done = []
        # Keys sit in the order their windows opened (allow() moves a reopened
        # key to the end), so the expired ones are at the front.
        while self._seen:
            key, entry = next(iter(self._seen.items()))
            if now - entry[0] < self.window:
                break
            del self._seen[key]
            if entry[1]:
                done.append((key, entry[1]))
        return done


def _record_key(record: logging.LogRecord) -> Hashable:
    exc = record.exc_info[1] if record.exc_info else None
    try:
        first_line = record.getMessage().split("\n", 1)[0][:200]
    except Exception:  # a broken format string: key on the template
        first_line = str(record.msg)[:200]
    return (record.name, record.levelno, first_line, type(exc).__name__,
            getattr(exc, "errno", None))


class RepeatFilter(logging.Filter):
    """A logger filter that collapses identical records (same text, same exception kind).

    The first record of a kind passes; repeats within the window are dropped and
    counted, and the next record let through says how many were dropped.
    """

    def __init__(self, window: float = DEFAULT_WINDOW):
        super().__init__()
        self.throttle = Throttle(window)

    def filter(self, record: logging.LogRecord) -> bool:
        suppressed = self.throttle.allow(_record_key(record))
        if suppressed is None:
            return False
        if suppressed:
            record.msg = f"{record.getMessage()} ({suppressed} more like it suppressed)"
            record.args = None
        return True


# asyncio logs one traceback per failed accept() when file descriptors run out
# (its loop calls the reader again at once): hundreds of thousands a minute.
# (Tornado's loggers are left alone: one template there covers unrelated errors.)
THROTTLED_LOGGERS = ("asyncio",)


def install_repeat_filters(loggers=THROTTLED_LOGGERS, window: float = DEFAULT_WINDOW) -> None:
    """Put one :class:`RepeatFilter` on each of ``loggers`` (idempotent)."""
    for name in loggers:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RepeatFilter) for f in logger.filters):
            logger.addFilter(RepeatFilter(window))


# accept() failures that mean "out of descriptors or memory": wait, do not spin.
RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
