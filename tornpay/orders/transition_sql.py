"""The state machine's hot statements (transitions.py runs them), compiled once per database."""

from peewee import SQL, Case, fn

from tornpay.storage import fastsql
from tornpay.storage.fastsql import param
from tornpay.storage.models import Order
from tornpay.storage.models import OrderState as O  # noqa: E741 (the models' own name)

# Keyed by (the columns set, the states allowed): always the same conditional
# UPDATE ... WHERE out_trade_no = ? AND state IN (...), whatever it sets.
UPDATES = fastsql.Family("update_order", lambda key: Order.update(
    {getattr(Order, column): param(getattr(Order, column)) for column in key[0]}).where(
    (Order.out_trade_no == param(Order.out_trade_no, "_key")) & Order.state.in_(list(key[1]))))
_PAID_COLUMNS = (Order.transaction_id, Order.time_end, Order.bank_type, Order.cash_fee,
                 Order.paid_at, Order.updated_at)
# The pay move in one statement (was three): it also learns the payer's openid when
# the order had none (NATIVE, MWEB; SPEC §9) and returns close_reason, which
# survives the payment and tells us we had closed the order. Key: (a payer named,
# only if no other order holds the transaction_id, the states it pays from).
# That guard lets the notify path refuse a reused transaction_id without a
# savepoint: on PostgreSQL a failed statement aborts the whole transaction, and
# a savepoint costs two round trips.


def _pay_statement(key):
    with_openid, guarded, states = key
    payable = (Order.out_trade_no == param(Order.out_trade_no)) & Order.state.in_(list(states))
    if guarded:
        other = Order.alias("other")
        payable &= ~fn.EXISTS(other.select(SQL("1")).where(
            (other.transaction_id == param(Order.transaction_id))
            & (other.out_trade_no != param(Order.out_trade_no))))
    return Order.update(
        {**{column: param(column) for column in _PAID_COLUMNS}, Order.state: O.PAID,
         Order.last_error: None,
         **({Order.openid: Case(None, [(Order.openid == "", param(Order.openid))],
                                Order.openid)} if with_openid else {})}
    ).where(payable).returning(Order.close_reason)


PAY = fastsql.Family("pay_order", _pay_statement)


# Every NOT NULL column of a new order: peewee's per-call INSERT building was
# the largest single CPU cost of a checkout, so the statement is compiled once.
_NEW_ORDER_COLUMNS = (
    Order.out_trade_no, Order.product_id, Order.openid, Order.body, Order.attach,
    Order.total_fee, Order.fee_type, Order.sign_type, Order.state, Order.spbill_create_ip,
    Order.unified_request, Order.refunded_fee, Order.reserved_refund_fee, Order.check_attempts,
    Order.api_version, Order.created_at, Order.updated_at, Order.expire_at, Order.trade_type,
    Order.payer, Order.appid)
INSERT_ORDER = fastsql.Statement("insert_order", lambda: Order.insert(
    {column: param(column) for column in _NEW_ORDER_COLUMNS}))
