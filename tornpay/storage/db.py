"""Open the database named by ``database.url`` and create tornpay's tables on first start."""

import logging
from typing import Iterable, Optional

import peewee
from playhouse.db_url import connect as db_url_connect

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


def open_database(url: str) -> peewee.Database:
    """Return an unconnected peewee Database for ``url`` (sqlite:///..., postgresql://...)."""
    if url.startswith("sqlite"):
        db = db_url_connect(url, pragmas=SQLITE_PRAGMAS)
    else:
        db = db_url_connect(url)
    return db


def bind(db: peewee.Database) -> peewee.Database:
    """Point every tornpay model (and plugin models on the proxy) at ``db``."""
    database_proxy.initialize(db)
    return db


def create_tables(extra_models: Optional[Iterable[type]] = None) -> None:
    """Create tornpay's tables (and any plugin tables) if they do not exist yet."""
    from tornpay.storage import models

    tables = list(models.ALL_MODELS) + list(extra_models or ())
    database_proxy.create_tables(tables, safe=True)


def is_sqlite(db: peewee.Database) -> bool:
    """True for SQLite, where row locks are replaced by conditional updates and leases."""
    return isinstance(db, peewee.SqliteDatabase)


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
