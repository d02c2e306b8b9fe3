"""Open the database named by ``database.url`` and create tornpay's tables on first start."""

import logging
from typing import Any, Iterable, Optional, Tuple

import peewee
from playhouse.db_url import connect as db_url_connect
from playhouse.db_url import parse as db_url_parse
from playhouse.shortcuts import ReconnectMixin

from tornpay.settings import SettingsError

logger = logging.getLogger(__name__)

# Declared once, initialised by the composition root (peewee "Proxy" pattern),
# so models can be defined at import time and bound to SQLite or PostgreSQL later.
database_proxy = peewee.DatabaseProxy()

# SQLite in WAL mode lets readers run beside the single writer; NORMAL sync is
# durable across process crashes in WAL mode (only an OS crash may lose the
# last commits) and is several times faster than FULL on the notify path.
SQLITE_PRAGMAS = (
    ("journal_mode", "wal"),
    ("synchronous", "normal"),
    ("busy_timeout", 5000),
    ("foreign_keys", 1),
)


# Any constant shared by every tornpay process: serialises schema creation and
# migrations (concurrent CREATE TABLE IF NOT EXISTS can still collide in pg_type).
SCHEMA_LOCK_KEY = 0x746F726E706179  # "tornpay"


class PostgresDatabase(ReconnectMixin, peewee.PostgresqlDatabase):
    """PostgreSQL that reconnects once when the server dropped an idle connection.

    Peewee keeps one connection per thread (the IOLoop thread plus each plugin
    worker thread), opened on first use. After a PostgreSQL restart every such
    connection is dead; the mixin closes and reopens it and re-runs the
    statement, but only outside a transaction: inside one the error propagates
    (and the caller's transaction is rolled back), because silently replaying
    half a transaction could lose writes.
    """

    reconnect_errors = (
        (peewee.OperationalError, "server closed the connection"),
        (peewee.OperationalError, "terminating connection"),
        (peewee.OperationalError, "could not receive data"),
        (peewee.OperationalError, "ssl connection has been closed"),
        (peewee.InterfaceError, "connection already closed"),
        (peewee.InterfaceError, "cursor already closed"),
    )


def open_database(url: str) -> peewee.Database:
    """Return an unconnected peewee Database for ``url`` (sqlite:///..., postgresql://...).

    PostgreSQL URLs accept libpq options as query parameters, e.g.
    ``?connect_timeout=5&options=-csearch_path%3Dtornpay``.
    """
    if url.startswith("sqlite"):
        return db_url_connect(url, pragmas=SQLITE_PRAGMAS)
    if url.split(":", 1)[0] in ("postgres", "postgresql"):
        return PostgresDatabase(**db_url_parse(url))
    return db_url_connect(url)


def bind(db: peewee.Database) -> peewee.Database:
    """Point every tornpay model (and plugin models on the proxy) at ``db``."""
    database_proxy.initialize(db)
    return db


class OneTornpayPerProcess(SettingsError):
    """A second tornpay on another database in a process where one is serving."""


# The serving tornpay of this process: (database.url, its Context). The models
# are bound process-wide (``database_proxy``), so two tornpays on two databases
# in one process would write each other's rows; that is refused, not risked.
_serving: Optional[Tuple[str, Any]] = None


def check_claim(url: str, owner: Any = None) -> None:
    """Raise OneTornpayPerProcess unless ``url`` may be bound in this process now."""
    if _serving is not None and _serving[0] != url and _serving[1] is not owner:
        raise OneTornpayPerProcess(
            f"setting database.url: this process already serves tornpay on another database "
            f"({_serving[0].split('://', 1)[0]}://...); one tornpay per process "
            "(docs/ARCHITECTURE.md): stop it first or use the same database")


def claim(url: str, owner: Any) -> None:
    """``owner`` serves tornpay on ``url`` from now on (``Context.start``)."""
    global _serving
    check_claim(url, owner)
    _serving = (url, owner)


def release(owner: Any) -> None:
    """``owner`` stopped serving (``Context.stop``)."""
    global _serving
    if _serving is not None and _serving[1] is owner:
        _serving = None


def create_tables(extra_models: Optional[Iterable[type]] = None) -> None:
    """Create tornpay's tables (and any plugin tables) if they do not exist yet."""
    from tornpay.storage import models

    from tornpay.storage import migrations

    tables = list(models.ALL_MODELS) + list(extra_models or ())
    db = database_proxy.obj
    with db.atomic():
        if is_postgres(db):
            # Several processes starting at once on an empty database: one creates.
            db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_KEY,))
        fresh = not db.table_exists(models.Order._meta.table_name)
        ordered = peewee.sort_models(tables)
        for model in ordered:
            model._schema.create_table(safe=True)
        migrations.upgrade(db, fresh=fresh)
        # Indexes last: one on a column a migration step adds can only be
        # built once that step has run on an older database.
        for model in ordered:
            model._schema.create_indexes(safe=True)


def is_sqlite(db: peewee.Database) -> bool:
    """True for SQLite, where row locks are replaced by conditional updates and leases."""
    return isinstance(db, peewee.SqliteDatabase)


def is_postgres(db: peewee.Database) -> bool:
    """True for PostgreSQL, where claims use ``SELECT ... FOR UPDATE SKIP LOCKED``."""
    return isinstance(db, peewee.PostgresqlDatabase)


def ping(db: peewee.Database) -> bool:
    """Return True when the database answers a trivial query."""
    try:
        db.execute_sql("SELECT 1").fetchone()
        return True
    except peewee.PeeweeException:
        logger.warning("database ping failed", exc_info=True)
        return False
    except Exception:  # driver-specific errors (sqlite3.OperationalError, psycopg2 ...)
        logger.warning("database ping failed", exc_info=True)
        return False
