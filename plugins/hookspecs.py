"""The five tornpay plugin hooks (SPEC §6): their names, arguments and contracts."""

import pluggy

hookspec = pluggy.HookspecMarker("tornpay")


@hookspec(firstresult=True)
def resolve_product(product_id, openid):
    """Say what ``product_id`` is and what it costs, before an order is created.

    Plugins are asked in registration order; the first answer that is not
    ``None`` wins and the later plugins are not asked.

    :param product_id: the id from the checkout URL (untrusted text from the browser).
    :param openid: the payer's openid in the merchant's Official Account.
    :return: ``None`` ("not mine") or a dict ``{"body": str, "total_fee": int,
        "attach": str}``: ``body`` non-empty (at most 128 bytes), ``total_fee``
        a positive int in fen (分), ``attach`` optional (at most 127 bytes,
        echoed by WeChat). Any other key or type fails the checkout.
    :sync/async: either; a plain function runs in a worker thread.
    :raises: anything: the checkout fails with an error page and no order is made.
    """


@hookspec
def on_order_created(order):
    """Learn that an order exists and WeChat accepted its unified order.

    Called once per order, right after the prepay id was stored, before the
    payer sees the pay page. Not durable: it is not retried.

    :param order: a read-only :class:`tornpay.orders.events.OrderView`
        (state ``PREPAID``; ``delivery_id`` is ``None``).
    :return: ignored.
    :sync/async: either; a plain function runs in a worker thread.
    :raises: logged and otherwise ignored; the payer's checkout goes on.
    """


@hookspec
def on_paid(order):
    """Fulfil a paid order. Durable: delivered at least once, until it returns.

    Called after the order became ``PAID`` (by a verified notify, an
    ``orderquery`` or the CLI) and the change was committed.

    :param order: a read-only :class:`tornpay.orders.events.OrderView` whose
        ``delivery_id`` is the same on every retry of this delivery: store it
        to skip work already done before a crash.
    :return: ignored; returning means "done", and it is never called again.
    :sync/async: either; a plain function runs in a worker thread. Each call
        is limited to ``deliveries.timeout_seconds``.
    :raises: anything (or a timeout) means "retry later", with exponential
        backoff up to ``deliveries.max_attempts``; other plugins are not held up.
    """


@hookspec
def on_cancel(order, reason):
    """Release what an order held: it ended unpaid. Durable, like :func:`on_paid`.

    :param order: a read-only :class:`tornpay.orders.events.OrderView` with a
        stable ``delivery_id``.
    :param reason: ``"expired"``, ``"closed"``, ``"user_cancelled"`` or ``"payerror"``.
    :return: ignored; returning means "done".
    :sync/async: either; a plain function runs in a worker thread.
    :raises: anything (or a timeout) means "retry later", with backoff.
    """


@hookspec
def on_refund(order, refund):
    """Undo fulfilment for money given back. Durable, like :func:`on_paid`.

    Called once per refund that WeChat reported SUCCESS (partial or full).

    :param order: a read-only :class:`tornpay.orders.events.OrderView` with a
        stable ``delivery_id``; ``state`` is ``PARTIAL_REFUNDED`` or ``REFUNDED``.
    :param refund: a read-only :class:`tornpay.orders.events.RefundView` with
        ``out_refund_no``, ``refund_fee`` (fen) and ``refund_id``.
    :return: ignored; returning means "done".
    :sync/async: either; a plain function runs in a worker thread.
    :raises: anything (or a timeout) means "retry later", with backoff.
    """


# The hook names in the order of the table in SPEC §6.
HOOK_NAMES = ("resolve_product", "on_order_created", "on_paid", "on_cancel", "on_refund")
# Hooks whose calls are written to the outbox and retried until they return.
DURABLE_HOOKS = ("on_paid", "on_cancel", "on_refund")
