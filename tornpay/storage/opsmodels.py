"""Tables of the operator console (operators, sign-in failures, audit) and the daily bill."""

import peewee

from tornpay.storage.models import BaseModel, utcnow


class Operator(BaseModel):
    """A named console user; only a scrypt hash of the password is kept."""

    name = peewee.CharField(max_length=64, primary_key=True)
    password_hash = peewee.CharField(max_length=255)
    created_at = peewee.DateTimeField(default=utcnow)
    updated_at = peewee.DateTimeField(default=utcnow)


class LoginFailure(BaseModel):
    """One failed sign-in, counted per name and per IP for the lockout (pruned after a day)."""

    id = peewee.AutoField()
    name = peewee.CharField(max_length=64, index=True)
    remote_ip = peewee.CharField(max_length=64, index=True)
    at = peewee.DateTimeField(default=utcnow, index=True)


class AuditEntry(BaseModel):
    """One console action: who, what, which order, the outcome, when, from where."""

    id = peewee.AutoField()
    at = peewee.DateTimeField(default=utcnow, index=True)
    operator = peewee.CharField(max_length=64)
    action = peewee.CharField(max_length=32)
    out_trade_no = peewee.CharField(max_length=64, null=True, index=True)
    outcome = peewee.CharField(max_length=16)  # ok, refused, failed
    detail = peewee.CharField(max_length=500, default="")
    remote_ip = peewee.CharField(max_length=64, default="")

    class Meta:
        table_name = "tornpay_audit"


class BillRun(BaseModel):
    """The daily bill of one Beijing day: its raw bytes, fetch attempts and reconciliation."""

    id = peewee.AutoField()
    bill_date = peewee.CharField(max_length=10)  # YYYY-MM-DD, Beijing
    source = peewee.CharField(max_length=8, default="v2")  # v2 downloadbill, v3 tradebill
    # pending (not fetched yet), fetched, no_bill, reconciled, failed
    state = peewee.CharField(max_length=16, default="pending")
    raw = peewee.BlobField(null=True)  # WeChat keeps bills 3 months: we keep the bytes
    attempts = peewee.IntegerField(default=0)
    last_error = peewee.TextField(null=True)
    next_try_at = peewee.DateTimeField(null=True)
    lease_until = peewee.DateTimeField(null=True)
    fetched_at = peewee.DateTimeField(null=True)
    reconciled_at = peewee.DateTimeField(null=True)
    payments = peewee.IntegerField(default=0)  # rows in the bill
    refunds = peewee.IntegerField(default=0)
    differences = peewee.IntegerField(default=0)
    unsettled = peewee.IntegerField(default=0)
    created_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("bill_date", "source"), True),)


class BillDifference(BaseModel):
    """One way the bill and our records disagree, and whether it was settled."""

    id = peewee.AutoField()
    run = peewee.ForeignKeyField(BillRun, backref="found", on_delete="CASCADE")
    kind = peewee.CharField(max_length=32)
    out_trade_no = peewee.CharField(max_length=64, null=True, index=True)
    out_refund_no = peewee.CharField(max_length=64, null=True)
    bill_fee = peewee.IntegerField(null=True)  # fen, as the bill says
    our_fee = peewee.IntegerField(null=True)  # fen, as we say
    settled = peewee.BooleanField(default=False)
    detail = peewee.CharField(max_length=500, default="")
    created_at = peewee.DateTimeField(default=utcnow)


OPS_MODELS = (Operator, LoginFailure, AuditEntry, BillRun, BillDifference)
