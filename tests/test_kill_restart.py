"""A server killed (SIGKILL) while a plugin's on_paid runs delivers it once, seconds after restart.

The hook timeout is 10 minutes, so the dead process's lease would last 20: the
restarted process takes the delivery over because the dead pid is gone
(tornpay/orders/registry.py), not because the lease expired.
"""

import datetime
import os

import pytest

from proc_helpers import (bind_db, database_url, free_port, kill, make_prepaid, notify_body,
                          recording_plugin, send_notifies, server_log, start_server, terminate,
                          wait_until, write_settings)
from tornpay.storage.db import database_proxy
from tornpay.storage.models import (DONE, PAID, PENDING, Delivery, Event, Notification, Order,
                                    utcnow)

pytestmark = pytest.mark.slow

TIMEOUT = 600  # deliveries.timeout_seconds: the lease is twice this

# First call: mark the start, then hang far longer than the test waits (the
# process is killed meanwhile). After the restart the mark exists: record.
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


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres",
                                                            marks=pytest.mark.postgres)])
def test_delivery_killed_mid_call_completes_after_restart(backend, tmp_path):
    record, env = recording_plugin(tmp_path, "slow_fulfil", PLUGIN)
    with database_url(backend, tmp_path) as url:
        db = bind_db(url)
        port = free_port()
        settings = write_settings(tmp_path, "s", port, url, plugins=["slow_fulfil"],
                                  deliveries={"timeout_seconds": TIMEOUT})
        make_prepaid("KR000001", total_fee=990)
        proc = start_server(tmp_path, settings, port, env)
        try:
            replies = send_notifies([(port, notify_body("KR000001", 990, "4200" + "7" * 24))])
            assert replies[0][0] == 200 and b"SUCCESS" in replies[0][1]
            wait_until(lambda: os.path.exists(f"{record}.started"), timeout=10)
            kill(proc)  # SIGKILL: no shutdown code runs, the lease stays held
            (delivery,) = Delivery.select()
            assert delivery.state == PENDING and delivery.lease_owner is not None
            assert delivery.lease_until > utcnow() + datetime.timedelta(seconds=TIMEOUT)
            started = (tmp_path / "record.txt.started").read_text().split()
            assert started == [delivery.id]

            proc = start_server(tmp_path, settings, port, env)
            # Redelivered within seconds of the restart, not after the 20-minute lease.
            wait_until(lambda: record.exists(), timeout=30)
            wait_until(lambda: Delivery.get_by_id(delivery.id).state == DONE, timeout=10)
            (line,) = record.read_text().splitlines()
            assert line.split()[:2] == ["KR000001", delivery.id]
            assert int(line.split()[2]) == proc.pid
            # A late duplicate notify after the restart changes nothing.
            replies = send_notifies([(port, notify_body("KR000001", 990, "4200" + "7" * 24))])
            assert b"SUCCESS" in replies[0][1]
            assert Order.get_by_id("KR000001").state == PAID
            assert Event.select().count() == 1 and Delivery.select().count() == 1
            assert Notification.select().where(Notification.outcome == "accepted").count() == 1
        except AssertionError:
            print(server_log(tmp_path, port))
            raise
        finally:
            terminate(proc)
            database_proxy.obj.close()
            db.close()
