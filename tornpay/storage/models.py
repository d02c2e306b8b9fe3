"""tornpay's tables: orders, notifies, outbox (events, deliveries, attempts), refunds, processes."""

import datetime

import peewee

from tornpay.storage.db import database_proxy


class OrderState:
    """The values of ``Order.state`` (SPEC §4); only orders/transitions.py moves between them."""

    CREATED = "CREATED"
    PREPAID = "PREPAID"
    PAID = "PAID"
    PARTIAL_REFUNDED = "PARTIAL_REFUNDED"
    REFUNDED = "REFUNDED"
    CLOSED = "CLOSED"
    PAYERROR = "PAYERROR"


class RefundState:
    """The values of ``Refund.state``; only orders/transitions.py moves between them."""

    REQUESTED = "REQUESTED"  # stored before calling WeChat
    PROCESSING = "PROCESSING"  # accepted by WeChat
    SUCCESS = "SUCCESS"
    CHANGE = "CHANGE"
    REFUNDCLOSE = "REFUNDCLOSE"
    FAILED = "FAILED"  # WeChat refused the request


# The short names the code base has always used.
CREATED, PREPAID, PAID = OrderState.CREATED, OrderState.PREPAID, OrderState.PAID
PARTIAL_REFUNDED, REFUNDED = OrderState.PARTIAL_REFUNDED, OrderState.REFUNDED
CLOSED, PAYERROR = OrderState.CLOSED, OrderState.PAYERROR
ORDER_STATES = (CREATED, PREPAID, PAID, PARTIAL_REFUNDED, REFUNDED, CLOSED, PAYERROR)

# Delivery states.
PENDING = "pending"
DONE = "done"
FAILED = "failed"


def utcnow() -> datetime.datetime:
    """Naive UTC now: one convention for every timestamp column, on every database."""
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def default_table_name(model: type) -> str:
    """``tornpay_`` and the model's name in snake case: Order is ``tornpay_order``."""
    return "tornpay_" + peewee.make_snake_case(model.__name__)


class BaseModel(peewee.Model):
    """A tornpay table, named by :func:`default_table_name` unless its Meta says otherwise."""

    class Meta:
        database = database_proxy
        table_function = default_table_name


class Order(BaseModel):
    """One payment attempt for one product by one payer."""

    out_trade_no = peewee.CharField(max_length=32, primary_key=True)
    product_id = peewee.CharField(max_length=64, index=True)
    trade_type = peewee.CharField(max_length=16, default="JSAPI")  # JSAPI, NATIVE, MWEB
    openid = peewee.CharField(max_length=128, index=True)
    body = peewee.CharField(max_length=128)
    attach = peewee.CharField(max_length=128, default="")
    total_fee = peewee.IntegerField()  # fen, from resolve_product, never the browser
    fee_type = peewee.CharField(max_length=8, default="CNY")
    sign_type = peewee.CharField(max_length=16, default="MD5")  # RSA for a v3 order
    # The WeChat Pay API generation the order was made in; it is finished in it (SPEC §10).
    api_version = peewee.CharField(max_length=4, default="v2")
    state = peewee.CharField(max_length=20, default=CREATED, index=True)
    spbill_create_ip = peewee.CharField(max_length=64, default="")
    # The exact signed unified-order request, kept so a retry or a prepay_id
    # refresh re-sends identical parameters (reference §4.4, P16).
    unified_request = peewee.TextField(default="")
    prepay_id = peewee.CharField(max_length=64, null=True)
    prepay_at = peewee.DateTimeField(null=True)
    transaction_id = peewee.CharField(max_length=32, null=True, unique=True)
    time_end = peewee.CharField(max_length=14, null=True)
    bank_type = peewee.CharField(max_length=32, null=True)
    cash_fee = peewee.IntegerField(null=True)
    refunded_fee = peewee.IntegerField(default=0)  # refunds WeChat reported SUCCESS
    reserved_refund_fee = peewee.IntegerField(default=0)  # refunds asked for, not yet failed
    close_reason = peewee.CharField(max_length=32, null=True)
    last_error = peewee.TextField(null=True)  # why a half-made order stopped
    created_at = peewee.DateTimeField(default=utcnow, index=True)
    updated_at = peewee.DateTimeField(default=utcnow)
    expire_at = peewee.DateTimeField()
    paid_at = peewee.DateTimeField(null=True)
    # Reconciler bookkeeping: next query time and a lease so two processes
    # never query the same order at once.
    next_check_at = peewee.DateTimeField(null=True, index=True)
    check_attempts = peewee.IntegerField(default=0)
    lease_owner = peewee.CharField(max_length=64, null=True)
    lease_until = peewee.DateTimeField(null=True)
    # Set while an order is CLOSED here (payer cancelled it young) but still
    # open at WeChat, which refuses closeorder before min_close_age_seconds:
    # the reconciler closes it there from this time on, then clears it.
    # (Indexed: storage.db builds indexes after the migration steps have run.)
    close_at_wechat_after = peewee.DateTimeField(null=True, index=True)
    # SPEC §9 (migration 7; trade_type came with migration 6): who owns the
    # order (the openid for JSAPI, the signed payer cookie's id for NATIVE and
    # MWEB) and the NATIVE QR code's text, valid 2 hours from prepay_at.
    payer = peewee.CharField(max_length=128, default="", index=True)
    code_url = peewee.CharField(max_length=256, null=True)
    # The appid the order was made with (migration 10): the Official Account's,
    # or the Mini Program's; its notify must carry the same one. "" on rows
    # older than the column means the Official Account's.
    appid = peewee.CharField(max_length=32, default="")

    class Meta:
        # The per-address open-order limit (orders/limits.py, migration 4).
        indexes = ((("spbill_create_ip", "state"), False),)


class Notification(BaseModel):
    """One POST received on /notify or /refund-notify, and what we answered."""

    id = peewee.AutoField()
    kind = peewee.CharField(max_length=16)  # "pay" or "refund"
    out_trade_no = peewee.CharField(max_length=64, null=True, index=True)
    received_at = peewee.DateTimeField(default=utcnow)
    remote_ip = peewee.CharField(max_length=64, default="")
    outcome = peewee.CharField(max_length=16)  # accepted, duplicate, refused
    reason = peewee.CharField(max_length=255, default="")


class Event(BaseModel):
    """Outbox row: a durable hook event written in the transaction that caused it."""

    id = peewee.CharField(max_length=32, primary_key=True)  # outbox.new_event_id()
    hook = peewee.CharField(max_length=32)  # on_paid, on_cancel, on_refund
    out_trade_no = peewee.CharField(max_length=32, index=True)
    payload = peewee.TextField(default="{}")  # JSON: reason, refund
    created_at = peewee.DateTimeField(default=utcnow)


class Delivery(BaseModel):
    """One event for one plugin; retried with backoff until it returns or is exhausted."""

    id = peewee.CharField(max_length=128, primary_key=True)  # f"{event_id}:{plugin}"
    event = peewee.ForeignKeyField(Event, backref="deliveries", on_delete="CASCADE")
    plugin = peewee.CharField(max_length=128)
    state = peewee.CharField(max_length=16, default=PENDING, index=True)
    attempts = peewee.IntegerField(default=0)
    next_attempt_at = peewee.DateTimeField(default=utcnow, index=True)
    last_error = peewee.TextField(null=True)
    lease_owner = peewee.CharField(max_length=64, null=True)
    lease_until = peewee.DateTimeField(null=True)
    created_at = peewee.DateTimeField(default=utcnow)
    done_at = peewee.DateTimeField(null=True)


class Refund(BaseModel):
    """One refund request (full or partial) of a paid order."""

    out_refund_no = peewee.CharField(max_length=64, primary_key=True)
    order = peewee.ForeignKeyField(Order, backref="refunds", column_name="out_trade_no")
    refund_fee = peewee.IntegerField()
    reason = peewee.CharField(max_length=80, default="")
    state = peewee.CharField(max_length=16, default=RefundState.REQUESTED, index=True)
    refund_id = peewee.CharField(max_length=32, null=True)
    request = peewee.TextField(default="")  # the signed request, re-sent verbatim on retry
    last_error = peewee.TextField(null=True)
    created_at = peewee.DateTimeField(default=utcnow)
    success_time = peewee.CharField(max_length=20, null=True)
    updated_at = peewee.DateTimeField(default=utcnow)


class ProcessRow(BaseModel):
    """A serving tornpay process (server or estate): where it runs and when it last beat."""

    owner_id = peewee.CharField(max_length=64, primary_key=True)  # the lease owner it uses
    machine = peewee.CharField(max_length=128)  # host + boot + pid namespace: pids comparable
    pid = peewee.IntegerField()
    started_at = peewee.DateTimeField(default=utcnow)
    heartbeat_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        table_name = "tornpay_process"


class KnownPlugin(BaseModel):
    """A plugin some serving process has loaded: the outbox writes it a Delivery per event."""

    name = peewee.CharField(max_length=128, primary_key=True)
    on_paid = peewee.BooleanField(default=False)
    on_cancel = peewee.BooleanField(default=False)
    on_refund = peewee.BooleanField(default=False)
    seen_by = peewee.CharField(max_length=64)  # owner_id of the process that last loaded it
    seen_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        table_name = "tornpay_plugin"


class DeliveryAttempt(BaseModel):
    """One call of a delivery's hook: when, how it ended, and the error (kept across retries)."""

    id = peewee.AutoField()
    delivery = peewee.ForeignKeyField(Delivery, backref="attempt_rows", on_delete="CASCADE",
                                      column_name="delivery_id", index=True)
    started_at = peewee.DateTimeField(default=utcnow)
    finished_at = peewee.DateTimeField(default=utcnow)
    outcome = peewee.CharField(max_length=16)  # done, error, timeout
    error = peewee.TextField(null=True)
    owner = peewee.CharField(max_length=64, null=True)  # the process that made the call


ALL_MODELS = (Order, Notification, Event, Delivery, Refund, DeliveryAttempt, ProcessRow,
              KnownPlugin)

# The console's and the daily bill's tables live in their own module.
from tornpay.storage.opsmodels import OPS_MODELS  # noqa: E402  (needs BaseModel above)

ALL_MODELS = ALL_MODELS + OPS_MODELS
