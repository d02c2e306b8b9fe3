"""The bundled plugins: booking (through real transitions and deliveries), catalog, example."""

import logging

import pytest

from helpers_orders import make_db, make_order, make_settings, paid_fields
from tornpay.hooks import HookManager
from tornpay.orders import transitions as t
from tornpay.orders.dispatcher import Dispatcher
from tornpay.orders.events import OrderView, RefundView
from tornpay.plugins import booking, example_log_paid
from tornpay.storage.models import CREATED, PAID, Order

PRODUCTS = {"coach-101": {"body": "Private coaching, 1 hour", "total_fee": 100}}


@pytest.fixture
def hooks(tmp_path):
    settings = make_settings(plugins=["tornpay.plugins.catalog", "tornpay.plugins.booking"],
                             catalog={"products": PRODUCTS})
    manager = HookManager(settings)
    manager.load_settings_plugins()
    manager.check()
    make_db(tmp_path, manager.models())
    yield manager
    manager.close()


async def deliver(hooks):
    return await Dispatcher(hooks, hooks.settings, owner_id="t").run_once()


async def created(hooks, no="T1"):
    make_order(no, state=CREATED)
    t.mark_prepaid(no, "wx1", "<xml/>")
    await hooks.notify_order_created(OrderView.from_row(Order.get_by_id(no)))


def test_booking_lists_its_model():
    assert booking.Booking in booking.tornpay_models


@pytest.mark.gen_test
async def test_catalog_resolves_products(hooks):
    assert await hooks.resolve_product("coach-101", "o") == {
        "body": "Private coaching, 1 hour", "total_fee": 100, "attach": ""}
    assert await hooks.resolve_product("nope", "o") is None


@pytest.mark.gen_test
async def test_reserved_then_confirmed(hooks):
    await created(hooks)
    assert booking.booking_status("T1") == booking.RESERVED
    t.mark_paid("T1", hooks=hooks, **paid_fields())
    assert await deliver(hooks) == 1
    assert booking.booking_status("T1") == booking.CONFIRMED
    assert booking.Booking.get_by_id("T1").last_delivery_id.endswith(":tornpay.plugins.booking")


@pytest.mark.gen_test
async def test_released_on_cancel(hooks):
    await created(hooks)
    t.mark_closed("T1", "expired", hooks=hooks)
    await deliver(hooks)
    assert booking.booking_status("T1") == booking.RELEASED


@pytest.mark.gen_test
async def test_late_payment_after_close_confirms(hooks):
    await created(hooks)
    t.mark_closed("T1", "expired", hooks=hooks)
    t.mark_paid("T1", hooks=hooks, **paid_fields())
    await deliver(hooks)
    await deliver(hooks)
    assert booking.booking_status("T1") == booking.CONFIRMED


@pytest.mark.gen_test
async def test_hooks_are_idempotent(hooks):
    make_order(state=PAID)
    view = OrderView.from_row(Order.get_by_id("T1"), delivery_id="e1:booking")
    for _ in range(2):
        booking.on_order_created(view)
        booking.on_paid(view)
    booking.on_cancel(view, "expired")  # a confirmed booking is not released
    assert booking.booking_status("T1") == booking.CONFIRMED
    assert booking.Booking.select().count() == 1


@pytest.mark.gen_test
async def test_paid_without_reservation_still_confirms(hooks):
    make_order(state=PAID)
    booking.on_paid(OrderView.from_row(Order.get_by_id("T1"), delivery_id="e:b"))
    assert booking.booking_status("T1") == booking.CONFIRMED


@pytest.mark.gen_test
async def test_refunds_counted_once_and_full_refund_releases(hooks):
    make_order(state=PAID, total_fee=100)
    view = OrderView.from_row(Order.get_by_id("T1"), delivery_id="e:b")
    booking.on_paid(view)
    booking.on_refund(view, RefundView("R1", 40, "1"))
    booking.on_refund(view, RefundView("R1", 40, "1"))  # repeated delivery
    row = booking.Booking.get_by_id("T1")
    assert (row.state, row.refunded_fee) == (booking.CONFIRMED, 40)
    booking.on_refund(view, RefundView("R2", 60, "2"))
    assert booking.booking_status("T1") == booking.REFUNDED


def test_booking_status_unknown(hooks):
    assert booking.booking_status("nothing") is None


def test_example_log_paid_plugin(caplog, hooks):
    manager = HookManager(make_settings(plugins=["tornpay.plugins.example_log_paid"]))
    manager.load_settings_plugins()
    manager.check()
    assert manager.plugin_names("on_paid") == ["tornpay.plugins.example_log_paid"]
    make_order(state=PAID)
    with caplog.at_level(logging.INFO):
        example_log_paid.on_paid(OrderView.from_row(Order.get_by_id("T1"), delivery_id="e:x"))
    assert "paid: order T1" in caplog.text
