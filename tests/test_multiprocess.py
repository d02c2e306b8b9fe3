"""Two server processes on one database: a storm of duplicate notifies pays and fulfils once."""

import collections
import random

import pytest

from proc_helpers import (bind_db, database_url, free_port, make_prepaid, notify_body,
                          recording_plugin, send_notifies, server_log, start_server, terminate,
                          wait_until, write_settings)
from tornpay.storage.db import database_proxy
from tornpay.storage.models import DONE, PAID, Delivery, Event, Notification, Order

pytestmark = pytest.mark.slow

ORDERS, REPEATS = 200, 4

# Written into tmp_path and loaded by both servers (``plugins: [mp_recorder]``):
# one line per on_paid call, appended atomically (O_APPEND, one short write).
RECORDER = '''
import os

def on_paid(order):
    line = f"{order.out_trade_no} {order.delivery_id} {os.getpid()}\\n"
    fd = os.open(os.environ["TP_RECORD"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
'''


def recorded(path):
    try:
        with open(path) as f:
            return [line.split() for line in f if line.strip()]
    except FileNotFoundError:
        return []


@pytest.mark.parametrize("backend", [
    pytest.param("postgres", marks=pytest.mark.postgres),
    "sqlite",  # two processes on one WAL file
])
def test_notify_storm_on_two_processes_pays_and_delivers_once(backend, tmp_path):
    record, env = recording_plugin(tmp_path, "mp_recorder", RECORDER)
    with database_url(backend, tmp_path) as url:
        db = bind_db(url)
        procs = []
        try:
            ports = [free_port(), free_port()]
            for i, port in enumerate(ports):
                settings = write_settings(tmp_path, f"s{i}", port, url, plugins=["mp_recorder"])
                procs.append(start_server(tmp_path, settings, port, env))
            numbers = [f"MP{n:06d}" for n in range(ORDERS)]
            with db.atomic():
                for n, no in enumerate(numbers):
                    make_prepaid(no, total_fee=100 + n)
            jobs = [(ports[(n + k) % 2], notify_body(no, 100 + n, f"42000{n:023d}"))
                    for n, no in enumerate(numbers) for k in range(REPEATS)]
            random.Random(8).shuffle(jobs)
            replies = send_notifies(jobs)
            bad = [r for r in replies if r[0] != 200 or b"FAIL" in r[1]]
            assert not bad, (bad[:3], server_log(tmp_path, ports[0]))

            assert Order.select().where(Order.state == PAID).count() == ORDERS
            accepted = collections.Counter(
                n.out_trade_no for n in Notification.select().where(
                    Notification.outcome == "accepted"))
            assert sorted(accepted) == numbers and set(accepted.values()) == {1}
            assert Notification.select().count() == ORDERS * REPEATS
            assert Event.select().count() == ORDERS

            wait_until(lambda: len(recorded(record)) >= ORDERS, timeout=30)
            wait_until(lambda: Delivery.select().where(Delivery.state == DONE).count()
                       == ORDERS, timeout=10)
            lines = recorded(record)
            assert len(lines) == ORDERS, "an on_paid was delivered twice"
            assert sorted(no for no, _, _ in lines) == numbers
            assert len({delivery for _, delivery, _ in lines}) == ORDERS
            assert {d.attempts for d in Delivery.select()} == {1}
            # Both processes did real work (the storm was split between them).
            assert len({pid for _, _, pid in lines}) == 2 or backend == "sqlite"
        finally:
            for proc in procs:
                terminate(proc)
            database_proxy.obj.close()
