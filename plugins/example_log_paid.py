"""Example plugin: log every paid order. Copy this file to start your own plugin."""

# To use it, add its dotted name to settings.yaml:
#
#     plugins:
#       - tornpay.plugins.catalog
#       - tornpay.plugins.example_log_paid
#
# A plugin is just a module with functions named after hooks (see
# docs/plugins.md). No decorator and no import of tornpay is needed.

import logging

logger = logging.getLogger(__name__)


def on_paid(order):
    """Called once the order is PAID (retried until it returns, so keep it idempotent)."""
    # `order` is a frozen snapshot, not a database row: read it, never save it.
    # `order.delivery_id` is the same on every retry of this call: a plugin
    # that writes somewhere can store it and skip work it already did.
    logger.info("paid: order %s, product %s, %d fen, transaction %s (delivery %s)",
                order.out_trade_no, order.product_id, order.total_fee, order.transaction_id,
                order.delivery_id)
    # Raising here would mean "try again later"; returning means "done".
