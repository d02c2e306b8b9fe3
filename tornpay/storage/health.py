"""Can the database still be written? Checked at start (refuse) and every few seconds (report)."""

import asyncio
import logging
import os
import sqlite3
from typing import Optional, Tuple
from urllib.parse import urlsplit, urlunsplit

import peewee

from tornpay.orders.periodic import PeriodicWorker
from tornpay.settings import SettingsError
from tornpay.storage.db import is_postgres, is_sqlite

logger = logging.getLogger(__name__)

# The write probe: one row that is never committed (version -1 cannot clash).
_PROBE_SQL = ("INSERT INTO tornpay_schema_version (version, name, applied_at) "
              "VALUES (-1, 'write probe', '2000-01-01 00:00:00')")
LOCKED = "database is locked"


def shown_url(url: str) -> str:
    """``url`` without a password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(":" + parts.password + "@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _sqlite_path(db: peewee.Database) -> Optional[str]:
    path = getattr(db, "database", None)
    if not is_sqlite(db) or not path or path == ":memory:" or path.startswith("file:"):
        return None
    return os.path.abspath(path)


def _identity(path: Optional[str]) -> Optional[Tuple[int, int]]:
    try:
        st = os.stat(path) if path else None
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if st else None


def file_problem(path: str) -> Optional[str]:
    """Why the SQLite file at ``path`` (or its directory, where the WAL lives) is unwritable.

    Only stat-like calls: opening the file here and closing it again would drop
    SQLite's POSIX locks on it, and SQLite itself reuses the descriptors it
    already holds, so a probe through it cannot see a file turned read-only.
    """
    directory = os.path.dirname(path)
    try:
        if os.statvfs(directory).f_flag & os.ST_RDONLY:
            return f"the file system of {directory} is mounted read-only"
    except OSError as exc:
        return f"{directory}: {exc.strerror}"
    for target in (path, directory):
        if os.path.exists(target) and not os.access(target, os.W_OK):
            return f"no write permission on {target}"
    return None


def probe_write(db: peewee.Database) -> Optional[str]:
    """Why ``db`` cannot be written now, or None. Blocking: never call it on the IOLoop."""
    path = _sqlite_path(db)
    problem = file_problem(path) if path is not None else None
    if problem:
        return problem
    try:
        if path is not None:
            # A fresh connection, as a restart (or the CLI) would open it: the
            # server's own may still hold a descriptor the file no longer allows.
            conn = sqlite3.connect(path, timeout=1.0, isolation_level=None)
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute(_PROBE_SQL)
                conn.execute("ROLLBACK")
            finally:
                conn.close()
        elif is_postgres(db):
            row = db.execute_sql("SELECT current_setting('transaction_read_only')").fetchone()
            if row and row[0] == "on":
                return "the server only allows read-only transactions"
        else:  # SQLite by URI (file:...?mode=ro): probe through its own connection
            with db.atomic() as txn:
                db.execute_sql(_PROBE_SQL)
                txn.rollback()
    except (sqlite3.Error, peewee.PeeweeException) as exc:
        if LOCKED in str(exc):
            return None  # busy, not broken: someone else is writing
        return str(exc).split("\n", 1)[0] or type(exc).__name__
    except Exception as exc:  # driver errors (psycopg2 ...) not wrapped by peewee
        return str(exc).split("\n", 1)[0] or type(exc).__name__
    return None


def require_writable(db: peewee.Database, url: str) -> None:
    """Refuse to start (one line naming database.url) on a database that cannot be written."""
    problem = probe_write(db)
    if problem:
        raise SettingsError(f"setting database.url {shown_url(url)}: the database cannot be "
                            f"written ({problem}); fix its permissions, disk or server")


class DatabaseHealth(PeriodicWorker):
    """The last verdict on the database: ``ok`` and, when not, ``reason``.

    Every ``check_interval`` seconds ``check()`` looks at the SQLite file
    (gone, replaced, read-only) on the loop and runs the write probe in a
    worker thread.
    """

    name = "database health check"

    def __init__(self, db: peewee.Database, interval: float):
        self.db = db
        self.check_interval = interval
        self.ok = True
        self.reason = ""
        self._path = _sqlite_path(db)
        self._identity = _identity(self._path)

    def interval(self) -> float:
        return self.check_interval

    async def run_once(self) -> None:
        await self.check()

    def _file_problem(self) -> Optional[str]:
        if self._path is None:
            return None
        now = _identity(self._path)
        if now is None:
            return f"database file {self._path} has vanished"
        if self._identity is not None and now != self._identity:
            return f"database file {self._path} was replaced by another file"
        return file_problem(self._path)

    async def check(self) -> bool:
        problem = self._file_problem()
        if problem is None:
            loop = asyncio.get_running_loop()
            problem = await loop.run_in_executor(None, probe_write, self.db)
        self._set(problem)
        return self.ok

    def _set(self, problem: Optional[str]) -> None:
        if problem and self.ok:
            logger.error("database cannot be written: %s; notifies are answered FAIL (WeChat "
                         "retries), pages show an error, /healthz answers 503", problem)
        elif not problem and not self.ok:
            logger.warning("database can be written again (was: %s)", self.reason)
        self.ok, self.reason = not problem, problem or ""


class HealthCollector:
    """``tornpay_database_writable``: 1 while the last check could write, 0 otherwise."""

    def __init__(self, health: DatabaseHealth):
        self.health = health

    def describe(self):
        return [self._family()]

    def collect(self):
        family = self._family()
        family.add_metric([], 1 if self.health.ok else 0)
        yield family

    @staticmethod
    def _family():
        from prometheus_client.core import GaugeMetricFamily

        return GaugeMetricFamily("tornpay_database_writable",
                                 "1 while the database can be written (checked every "
                                 "database.check_interval_seconds)")
