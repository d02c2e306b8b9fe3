"""A test-only guard: every database call tornpay makes on the IOLoop's thread is recorded.

It wraps ``cursor()`` of the app's peewee Database object: every statement,
BEGIN, COMMIT and ROLLBACK peewee runs asks it for a cursor (``execute_sql``
does, and so do the transaction calls, which bypass ``execute_sql``). A call on
the loop's thread is a violation when the innermost frame of the project on
its stack is tornpay's own code (``tornpay/``, ``handlers/``, ``plugins/``);
a test's own look at the database (``tests/``, e.g. ``order_row``) is not.
"""

import os
import threading
import traceback

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRODUCT = tuple(os.path.join(ROOT, part) + os.sep for part in ("tornpay", "handlers", "plugins"))
TESTS = os.path.join(ROOT, "tests") + os.sep


class LoopGuard:
    """Records (innermost product frame, statement kind) of each database call on the loop."""

    def __init__(self, db, loop_thread: int):
        self.db, self.loop_thread = db, loop_thread
        self.violations, self.test_queries, self.off_loop = [], 0, 0
        self.active = False
        self._real = None

    def install(self) -> "LoopGuard":
        self._real = self.db.cursor  # the bound method; an instance attribute shadows it
        guard = self

        def cursor(*args, **kwargs):
            guard.seen()
            return guard._real(*args, **kwargs)

        self.db.cursor = cursor
        self.active = True
        return self

    def uninstall(self) -> None:
        self.active = False
        self.db.__dict__.pop("cursor", None)

    def seen(self) -> None:
        if not self.active:
            return
        if threading.get_ident() != self.loop_thread:
            self.off_loop += 1
            return
        where = self.culprit(traceback.extract_stack()[:-2])
        if where is None:
            self.test_queries += 1
        else:
            self.violations.append(where)

    @staticmethod
    def culprit(stack):
        """``path:line in function`` of the innermost product frame, or None for a test's own."""
        for frame in reversed(stack):
            if frame.filename.startswith(TESTS):
                return None
            if frame.filename.startswith(PRODUCT):
                rel = os.path.relpath(frame.filename, ROOT)
                return f"{rel}:{frame.lineno} in {frame.name}"
        return None

    def check(self) -> None:
        """Fail with every place that ran a query on the loop (each once, with a count)."""
        counts = {}
        for where in self.violations:
            counts[where] = counts.get(where, 0) + 1
        assert counts == {}, "database calls on the IOLoop thread:\n" + "\n".join(
            f"  {n} x {where}" for where, n in sorted(counts.items()))
        # Not vacuous: the app did database work, off the loop.
        assert self.off_loop > 0


@pytest.fixture
def loop_guard(ctx, io_loop):
    """The guard on ``ctx.db`` from here to the end of the test (start-up is not watched)."""
    async def ident():
        return threading.get_ident()
    loop_thread = io_loop.run_sync(ident)
    guard = LoopGuard(ctx.db, loop_thread).install()
    yield guard
    guard.uninstall()
