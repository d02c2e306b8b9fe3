"""Who is dead: a crashed process's leases are released at once, a live one's never.

The SIGKILL test itself is tests/test_kill_restart.py.
"""

import datetime
import subprocess

import pytest

from helpers_orders import make_db, make_order, make_settings
from tornpay.hooks import HookManager
from tornpay.orders import registry as reg
from tornpay.orders import transitions
from tornpay.storage.models import PENDING, Delivery, ProcessRow, utcnow


@pytest.fixture
def db(tmp_path):
    return make_db(tmp_path)


def leased_delivery(owner, pid, machine, heartbeat_age=0.0):
    make_order("T1")
    transitions.mark_paid("T1", transaction_id="4200000000000000000000000009", time_end=None,
                          bank_type=None, cash_fee=None, source="notify",
                          hooks=lambda hook: ["p"])
    until = utcnow() + datetime.timedelta(hours=1)
    Delivery.update(lease_owner=owner, lease_until=until).execute()
    beat = utcnow() - datetime.timedelta(seconds=heartbeat_age)
    ProcessRow.create(owner_id=owner, machine=machine, pid=pid, started_at=beat,
                      heartbeat_at=beat)


def registry():
    return reg.Registry(HookManager(make_settings()), make_settings(), owner_id="me")


def test_live_process_on_this_machine_keeps_its_lease_even_with_a_stalled_heartbeat(db):
    child = subprocess.Popen(["sleep", "60"])
    try:
        leased_delivery("stalled", child.pid, reg.machine_id(), heartbeat_age=3600)
        r = registry()
        r.beat()
        assert Delivery.get().lease_owner == "stalled"
        assert ProcessRow.get_or_none(ProcessRow.owner_id == "stalled") is not None
        child.kill()
        child.wait()
        r.beat()  # the pid is gone now: released at once, row dropped
        assert Delivery.get().lease_owner is None and Delivery.get().state == PENDING
        assert ProcessRow.get_or_none(ProcessRow.owner_id == "stalled") is None
    finally:
        child.kill()
        child.wait()


@pytest.mark.parametrize("heartbeat_age, released", [(5, False), (3600, True)])
def test_process_elsewhere_is_dead_only_once_its_heartbeat_stopped(db, heartbeat_age, released):
    leased_delivery("elsewhere", 1, "another-host|boot|ns", heartbeat_age=heartbeat_age)
    registry().beat()
    assert (Delivery.get().lease_owner is None) is released
