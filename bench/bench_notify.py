"""Notify throughput: fixtures (orders, signed bodies, a recording plugin) and the checks.

The orders are written straight into the server's SQLite file before it
starts (PREPAID, the catalog's amount, MD5). Bodies are WeChat-style SUCCESS
notifies, correctly signed with the bench key; body ``2k`` pays order ``k``
for the first time and body ``2k+1`` repeats, byte for byte, the notify of
an earlier order (chosen at random, so some repeats race the first one).
"""

import http.client
import os
import random
import sqlite3
import time
from typing import Dict, List, Set

from bench_common import API_KEY, APPID, MCH_ID, OPENID, TOTAL_FEE, PRODUCT_ID

RECORDER = "bench_recorder"
RECORDER_DEF = "bench_recorder_def"  # the same as a plain def, as most merchants write it
RECORDER_DEF_SOURCE = '''"""Bench plugin: record every on_paid delivery id (plain def: runs in a worker thread)."""
import os

_PATH = os.environ["BENCH_RECORD"]


def on_paid(order):
    with open(_PATH, "a") as fh:
        fh.write(f"{order.delivery_id} {order.out_trade_no}\\n")
'''
RECORDER_SOURCE = '''"""Bench plugin: record every on_paid delivery id (async, so no worker thread)."""
import os

_PATH = os.environ["BENCH_RECORD"]


async def on_paid(order):
    with open(_PATH, "a") as fh:
        fh.write(f"{order.delivery_id} {order.out_trade_no}\\n")
'''


def out_trade_no(i: int) -> str:
    return f"BN{i:010d}"


def prepare(tmp: str, db_name: str, n_orders: int, seed: int = 9,
            db_url: str = "") -> Dict:
    """Create the DB with ``n_orders`` PREPAID orders, the bodies file and the plugin modules.

    ``db_url``: a PostgreSQL URL (a schema of its own) instead of SQLite ``tmp/db_name``.
    """
    import datetime

    from tornpay.protocol.ids import nonce_str
    from tornpay.protocol.sign import sign_params
    from tornpay.protocol.xmlcodec import encode_xml
    from tornpay.storage import db as storage
    from tornpay.storage.models import PREPAID, Order, utcnow

    database = storage.open_database(db_url or f"sqlite:///{tmp}/{db_name}")
    storage.bind(database)
    storage.create_tables()
    now = utcnow()
    expire = now + datetime.timedelta(minutes=30)
    rows = [{"out_trade_no": out_trade_no(i), "product_id": PRODUCT_ID, "openid": OPENID,
             "body": "Private coaching, 1 hour", "total_fee": TOTAL_FEE, "sign_type": "MD5",
             "state": PREPAID, "prepay_id": f"wx{i:030d}"[:32], "prepay_at": now,
             "created_at": now, "updated_at": now, "expire_at": expire}
            for i in range(n_orders)]
    with database.atomic():
        for start in range(0, len(rows), 500):
            Order.insert_many(rows[start:start + 500]).execute()
    database.close()

    notifies = []
    for i in range(n_orders):
        params = {"appid": APPID, "mch_id": MCH_ID, "nonce_str": nonce_str(),
                  "result_code": "SUCCESS", "return_code": "SUCCESS", "openid": OPENID,
                  "is_subscribe": "N", "trade_type": "JSAPI", "bank_type": "CMC",
                  "total_fee": TOTAL_FEE, "fee_type": "CNY", "cash_fee": TOTAL_FEE,
                  "transaction_id": f"42{i:026d}", "out_trade_no": out_trade_no(i),
                  "time_end": "20240101120000"}
        body = encode_xml(sign_params(params, API_KEY, "MD5"))
        assert b"\n" not in body
        notifies.append(body)
    rng = random.Random(seed)
    order_of = []  # order index of each body line
    for k in range(2 * n_orders):
        order_of.append(k // 2 if k % 2 == 0 else rng.randint(0, k // 2))
    tag = db_name.split(".")[0]
    bodies_path = os.path.join(tmp, f"notify-bodies-{tag}.txt")
    with open(bodies_path, "wb") as fh:
        fh.write(b"\n".join(notifies[i] for i in order_of) + b"\n")
    for module, source in ((RECORDER, RECORDER_SOURCE), (RECORDER_DEF, RECORDER_DEF_SOURCE)):
        with open(os.path.join(tmp, module + ".py"), "w") as fh:
            fh.write(source)
    record = os.path.join(tmp, f"on_paid-{tag}.txt")
    open(record, "w").close()
    return {"bodies": bodies_path, "order_of": order_of, "notifies": notifies,
            "record": record, "db": db_url or os.path.join(tmp, db_name),
            "n_orders": n_orders}


def sent_indices(fixture: Dict, sent: List[int]) -> List[int]:
    """Body lines the load generator took, thread ``t`` of ``n`` walking ``t, t+n, ...``."""
    n, total = len(sent), len(fixture["order_of"])
    return [(t + j * n) % total for t in range(n) for j in range(sent[t])]


def settle(fixture: Dict, url: str, sent: List[int], window: int) -> Set[int]:
    """Make "orders notified" exact; return the set of distinct orders notified.

    wrk stops with up to ``connections`` requests in flight whose fate it does
    not report (and its request() is called once, unsent, to verify the
    script). Those few bodies (each thread's first one and its last
    ``window``) are re-sent one by one after the clock stopped; re-sending is
    harmless, as duplicates change nothing.
    """
    n, total = len(sent), len(fixture["order_of"])
    resend = set()
    for t in range(n):
        for j in [0] + list(range(max(0, sent[t] - window - 1), sent[t])):
            resend.add((t + j * n) % total)
    host = url.split("//", 1)[1].split("/", 1)[0]
    path = "/" + url.split("//", 1)[1].split("/", 1)[1]
    conn = http.client.HTTPConnection(host, timeout=30)
    for index in sorted(resend):
        conn.request("POST", path, body=fixture["notifies"][fixture["order_of"][index]],
                     headers={"Content-Type": "text/xml"})
        reply = conn.getresponse().read()
        if b"SUCCESS" not in reply:
            raise RuntimeError(f"re-sent notify refused: {reply[:200]!r}")
    conn.close()
    return {fixture["order_of"][i] for i in sent_indices(fixture, sent)}


def _query(db_path: str, sql: str):
    if db_path.startswith("postgres"):
        import psycopg2

        conn = psycopg2.connect(db_path)
        try:
            cursor = conn.cursor()
            cursor.execute(sql)
            return cursor.fetchall()
        finally:
            conn.close()
    conn = sqlite3.connect(db_path, timeout=30)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def check(fixture: Dict, notified: Set[int], drain_timeout: float = 60.0) -> Dict:
    """Wait for the dispatcher to drain, then compare PAID, notified and on_paid deliveries."""
    deadline = time.monotonic() + drain_timeout
    started = time.monotonic()
    while True:
        pending = _query(fixture["db"], "SELECT COUNT(*) FROM tornpay_delivery "
                                        "WHERE state = 'pending'")[0][0]
        if pending == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    drain = time.monotonic() - started
    paid = {row[0] for row in _query(fixture["db"], "SELECT out_trade_no FROM tornpay_order "
                                                    "WHERE state = 'PAID'")}
    with open(fixture["record"]) as fh:
        lines = [line.split() for line in fh if line.strip()]
    delivery_ids = {parts[0] for parts in lines}
    delivered_orders = {parts[1] for parts in lines}
    expected = {out_trade_no(i) for i in notified}
    ok = (paid == expected == delivered_orders and len(delivery_ids) == len(expected)
          and pending == 0)
    return {"paid": len(paid), "notified": len(expected), "deliveries": len(delivery_ids),
            "delivery_calls": len(lines), "pending": pending, "drain_s": drain, "ok": ok}
