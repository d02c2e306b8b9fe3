"""Bundled plugin: the coaching school's bookings, reserved, confirmed, released, refunded."""

# The seed's coaching school sells hours of private coaching. A booking row is
# reserved when the order is created, confirmed when it is paid, released when
# the order ends unpaid and refunded when the whole price came back. Every
# hook is idempotent: tornpay retries a hook that raised, and a crash can
# repeat one that ran but was not yet marked done.
#
# The hooks are plain functions: their work is a few statements on tornpay's
# own database, and database work never runs on the IOLoop (SPEC §12), where a
# write lock held elsewhere would stall every request. tornpay runs plain
# hooks in its bounded hook thread pool, each thread with its own connection.

import logging
from typing import Optional

import peewee

from tornpay.storage.db import database_proxy
from tornpay.storage.models import utcnow

logger = logging.getLogger(__name__)

RESERVED, CONFIRMED, RELEASED, REFUNDED = "reserved", "confirmed", "released", "refunded"


class Booking(peewee.Model):
    """One coaching booking, one per order."""

    out_trade_no = peewee.CharField(max_length=32, primary_key=True)
    product_id = peewee.CharField(max_length=64)
    openid = peewee.CharField(max_length=128, index=True)
    state = peewee.CharField(max_length=16, default=RESERVED)
    refunded_fee = peewee.IntegerField(default=0)
    refund_nos = peewee.TextField(default="")  # out_refund_no values already counted
    last_delivery_id = peewee.CharField(max_length=128, null=True)
    created_at = peewee.DateTimeField(default=utcnow)
    updated_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        database = database_proxy
        table_name = "tornpay_booking"


# tornpay creates these tables at start.
tornpay_models = [Booking]


def _ensure(order, state: str) -> None:
    Booking.insert(out_trade_no=order.out_trade_no, product_id=order.product_id,
                   openid=order.openid, state=state).on_conflict_ignore().execute()


def _move(order, to: str, from_states) -> int:
    return (Booking.update(state=to, updated_at=utcnow(), last_delivery_id=order.delivery_id)
            .where((Booking.out_trade_no == order.out_trade_no)
                   & Booking.state.in_(list(from_states)))
            .execute())


def on_order_created(order):
    """Hold the slot while the payer is on the pay page."""
    with database_proxy.atomic():
        _ensure(order, RESERVED)


def on_paid(order):
    """Confirm the booking (even one released by a local close: the payment wins)."""
    with database_proxy.atomic():
        _ensure(order, CONFIRMED)  # on_order_created may have failed: it is not retried
        if _move(order, CONFIRMED, (RESERVED, RELEASED)):
            logger.info("booking %s confirmed", order.out_trade_no)


def on_cancel(order, reason):
    """Release a booking that was only reserved; a confirmed one stays confirmed."""
    with database_proxy.atomic():
        _ensure(order, RELEASED)
        if _move(order, RELEASED, (RESERVED,)):
            logger.info("booking %s released (%s)", order.out_trade_no, reason)


def on_refund(order, refund):
    """Count each refund once; release the booking when the whole price came back."""
    with database_proxy.atomic():
        _ensure(order, CONFIRMED)
        booking = Booking.get_by_id(order.out_trade_no)
        seen = set(filter(None, booking.refund_nos.split(",")))
        if refund.out_refund_no in seen:
            return  # a repeated delivery: already counted
        seen.add(refund.out_refund_no)
        booking.refunded_fee += refund.refund_fee
        booking.refund_nos = ",".join(sorted(seen))
        if booking.refunded_fee >= order.total_fee:
            booking.state = REFUNDED
        booking.last_delivery_id = order.delivery_id
        booking.updated_at = utcnow()
        booking.save()
    logger.info("booking %s: refund %s of %d fen (%s)", order.out_trade_no,
                refund.out_refund_no, refund.refund_fee, booking.state)


def booking_status(out_trade_no: str) -> Optional[str]:
    """The booking's state for the result page, or None when there is none."""
    booking = Booking.get_or_none(Booking.out_trade_no == out_trade_no)
    return booking.state if booking is not None else None


tornpay_result_note = booking_status  # shown on the result page (tornpay.orders.pages)
