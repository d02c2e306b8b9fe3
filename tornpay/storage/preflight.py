"""Start-up check of ``database.url``: one line naming the setting, where it looked and the fix."""

from typing import Optional
from urllib.parse import unquote, urlsplit

from tornpay.settings import SettingsError

POSTGRES_SCHEMES = ("postgres", "postgresql")
DRIVER_FIX = "pip install 'tornpay[postgres]'"


class DatabaseUnavailable(SettingsError):
    """The database named by database.url cannot be used at start (no driver, unreachable)."""


def where(url: str) -> str:
    """``PostgreSQL at HOST:PORT (database NAME)`` or ``SQLite file PATH``; never the password."""
    parts = urlsplit(url)
    if parts.scheme in POSTGRES_SCHEMES:
        try:
            port = parts.port or 5432
        except ValueError:
            port = "?"
        host = parts.hostname or "the local socket"
        name = unquote(parts.path.lstrip("/")) or "default"
        return f"PostgreSQL at {host}:{port} (database {name})"
    if parts.scheme.startswith("sqlite"):
        return f"SQLite file {url.split(':///', 1)[-1] or ':memory:'}"
    return f"{parts.scheme} database"


def check_database(url: str) -> None:
    """Connect once and run ``SELECT 1``; raise :class:`DatabaseUnavailable` as one clean line."""
    from tornpay.storage.db import open_database

    scheme = url.split(":", 1)[0]
    if scheme in POSTGRES_SCHEMES and not _has_psycopg2():
        raise DatabaseUnavailable(
            f"setting database.url names PostgreSQL but its driver (psycopg2) is not installed: "
            f"{DRIVER_FIX}")
    try:
        db = open_database(url)
    except Exception as exc:  # unknown scheme, malformed URL
        raise DatabaseUnavailable(f"setting database.url: {_reason(exc, url)}") from None
    try:
        db.connect()
        db.execute_sql("SELECT 1").fetchone()
    except Exception as exc:
        raise DatabaseUnavailable(f"setting database.url: cannot connect to {where(url)}: "
                                  f"{_reason(exc, url)}") from None
    finally:
        if not db.is_closed():
            db.close()


def _has_psycopg2() -> bool:
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        return False
    return True


def _reason(exc: BaseException, url: str) -> str:
    """The driver's first line, with the URL's password (if any) blanked out."""
    text = next((line.strip() for line in str(exc).splitlines() if line.strip()),
                type(exc).__name__)
    password: Optional[str] = urlsplit(url).password
    if password:
        text = text.replace(password, "********").replace(unquote(password), "********")
    return text
