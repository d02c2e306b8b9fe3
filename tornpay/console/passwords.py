"""Operators and their passwords: scrypt hashes (hashlib), checked in constant time."""

import asyncio
import base64
import hashlib
import hmac
import logging
import re
import secrets
from typing import Any, Optional

from tornpay.storage.db import database_proxy as db
from tornpay.storage.dbjobs import run_read
from tornpay.storage.models import utcnow
from tornpay.storage.opsmodels import Operator

logger = logging.getLogger(__name__)

# scrypt cost: N=2**15, r=8, p=1 (about 32 MiB and tens of milliseconds): the
# parameters OWASP lists for scrypt; stored with each hash so they can grow.
N, R, P = 2 ** 15, 8, 1
MAXMEM = 64 * 1024 * 1024
MIN_PASSWORD = 10
MAX_PASSWORD = 1024  # bounded: a huge password must not make scrypt hash megabytes
NAME_RE = re.compile(r"[A-Za-z0-9_.@-]{1,64}")


class PasswordError(ValueError):
    """A name or password that cannot be used; the message says why."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$hash`` for ``password`` with a fresh 16-byte salt."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=N, r=R, p=P, maxmem=MAXMEM,
                            dklen=32)
    return f"scrypt${N}${R}${P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches the ``stored`` hash (constant-time comparison)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(password.encode("utf-8")[:MAX_PASSWORD * 4],
                             salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                             maxmem=MAXMEM, dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


# Checked when the name is unknown, so an unknown name costs as long as a wrong
# password and timing does not tell which names exist.
_DUMMY = hash_password(secrets.token_hex(16))


def check_name(name: str) -> str:
    if not NAME_RE.fullmatch(name or ""):
        raise PasswordError("operator name: 1-64 of letters, digits and _ . @ -")
    return name


def set_password(name: str, password: str) -> bool:
    """Create operator ``name`` or change its password; True when it was created."""
    check_name(name)
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise PasswordError(f"password: {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    hashed = hash_password(password)
    with db.atomic():
        updated = (Operator.update(password_hash=hashed, updated_at=utcnow())
                   .where(Operator.name == name).execute())
        if not updated:
            Operator.create(name=name, password_hash=hashed)
    logger.info("console: operator %s %s", name, "password changed" if updated else "created")
    return not updated


async def authenticate(name: str, password: str, dbx: Any = None) -> Optional[Operator]:
    """The operator when ``name`` and ``password`` match, else None.

    scrypt takes tens of milliseconds of CPU on purpose: it runs in a worker
    thread so sign-ins never hold up notifies and pages on the IOLoop; the
    operator is read through ``dbx`` (the server's executor; None: right here).
    """
    operator = await run_read(dbx, Operator.get_or_none, Operator.name == name) \
        if NAME_RE.fullmatch(name) else None
    stored = operator.password_hash if operator else _DUMMY
    ok = await asyncio.get_running_loop().run_in_executor(
        None, verify_password, password[:MAX_PASSWORD], stored)
    return operator if ok and operator is not None else None


def fingerprint(operator: Operator) -> str:
    """A short tag of the current hash: a new password ends the operator's old sessions."""
    return hashlib.sha256(operator.password_hash.encode("ascii")).hexdigest()[:16]
