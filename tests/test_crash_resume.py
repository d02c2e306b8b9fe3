"""A process killed mid-delivery: its restart resumes it in seconds, not after the lease."""

import datetime
import os
import subprocess

import pytest

from helpers_orders import make_db, make_order, make_settings
from proc_helpers import (bind_db, database_url, environ, free_port, kill, make_prepaid,
                          notify_body, send_notifies, server_log, start_server, terminate,
                          wait_until, write_settings)
from tornpay.hooks import HookManager
from tornpay.orders import registry as reg
from tornpay.orders import transitions
from tornpay.storage.db import database_proxy
from tornpay.storage.models import DONE, PENDING, Delivery, ProcessRow, utcnow

# A hook timeout of 10 minutes: the dead process's lease would last 20.
TIMEOUT = 600

PLUGIN = '''
import os
import time

def on_paid(order):
    record = os.environ["TP_RECORD"]
    started = record + ".started"
    if not os.path.exists(started):
        with open(started, "a") as f:
            f.write(order.delivery_id + "\\n")
        time.sleep(3600)
    with open(record, "a") as f:
        f.write(f"{order.out_trade_no} {order.delivery_id} {os.getpid()}\\n")
'''


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres",
                                                            marks=pytest.mark.postgres)])
def test_kill_9_mid_delivery_resumes_within_seconds_of_restart(backend, tmp_path):
    (tmp_path / "slow_fulfil.py").write_text(PLUGIN)
    record = tmp_path / "record.txt"
    env = environ(tmp_path, TP_RECORD=str(record))
    with database_url(backend, tmp_path) as url:
        db = bind_db(url)
        port = free_port()
        settings = write_settings(tmp_path, "s", port, url, plugins=["slow_fulfil"],
                                  deliveries={"timeout_seconds": TIMEOUT})
        make_prepaid("CR000001", total_fee=990)
        proc = start_server(tmp_path, settings, port, env)
        try:
            replies = send_notifies([(port, notify_body("CR000001", 990, "4200" + "8" * 24))])
            assert b"SUCCESS" in replies[0][1]
            wait_until(lambda: os.path.exists(f"{record}.started"), timeout=10)
            kill(proc)  # SIGKILL mid-call: the lease (2 x 600 s) stays held
            (delivery,) = Delivery.select()
            assert delivery.state == PENDING and delivery.lease_owner is not None
            assert delivery.lease_until > utcnow() + datetime.timedelta(seconds=TIMEOUT)

            proc = start_server(tmp_path, settings, port, env)
            # The restarted process sees the dead pid and takes the delivery over now;
            # waiting out the lease would take 20 minutes.
            wait_until(lambda: record.exists(), timeout=30)
            wait_until(lambda: Delivery.get_by_id(delivery.id).state == DONE, timeout=10)
            (line,) = record.read_text().splitlines()
            assert line.split() == ["CR000001", delivery.id, str(proc.pid)]
        except AssertionError:
            print(server_log(tmp_path, port))
            raise
        finally:
            terminate(proc)
            database_proxy.obj.close()
            db.close()


# -- who is dead: never a live process --------------------------------------------------


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
