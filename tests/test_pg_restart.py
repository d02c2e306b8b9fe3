"""A PostgreSQL restart under a running tornpay: the next statements reconnect, nothing is lost."""

import os
import subprocess
import uuid

import pytest

from proc_helpers import PG_ENV, make_prepaid, with_schema
from tornpay.orders import transitions
from tornpay.storage.db import bind, create_tables, open_database, ping
from tornpay.storage.models import Order

# .ci/run exports the command that restarts its throwaway cluster (pg_ctl restart -w).
RESTART_ENV = "TORNPAY_TEST_PG_RESTART"

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _admin(sql: str) -> None:
    import psycopg2

    conn = psycopg2.connect(os.environ[PG_ENV])  # a fresh connection: the old ones die
    conn.autocommit = True
    try:
        conn.cursor().execute(sql)
    finally:
        conn.close()


@pytest.fixture
def pg_db():
    if not os.environ.get(PG_ENV) or not os.environ.get(RESTART_ENV):
        pytest.skip(f"{PG_ENV} and {RESTART_ENV} are not set (.ci/run sets both)")
    schema = "r_" + uuid.uuid4().hex[:12]
    _admin(f"CREATE SCHEMA {schema}")
    db = bind(open_database(with_schema(os.environ[PG_ENV], schema)))
    create_tables()
    yield db
    db.close()
    _admin(f"DROP SCHEMA {schema} CASCADE")


def restart_postgres():
    subprocess.run(os.environ[RESTART_ENV], shell=True, check=True, capture_output=True,
                   timeout=60)


def pay(out_trade_no):
    return transitions.mark_paid(out_trade_no, transaction_id="4" * 28,
                                 time_end="20240601123110", bank_type="OTHERS", cash_fee=100,
                                 source="test", hooks=lambda hook: [])


def test_payment_after_a_database_restart_reconnects(pg_db):
    make_prepaid("TPRESTART1")
    assert ping(pg_db)
    restart_postgres()  # every connection tornpay held is now dead
    assert pay("TPRESTART1") is True  # the first transaction reconnects
    assert Order.get_by_id("TPRESTART1").state == "PAID"
    assert pay("TPRESTART1") is False  # and a duplicate still changes nothing


def test_health_ping_recovers_after_a_restart(pg_db):
    assert ping(pg_db)
    restart_postgres()
    assert ping(pg_db)  # /healthz answers 200 again without a process restart
