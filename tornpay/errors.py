"""Typed errors of the programming interfaces: one stable ``code`` each, for Python and JSON."""

from typing import Any, Optional


class TornpayError(Exception):
    """Base of every error the Python API raises; ``code`` is the JSON API's error code."""

    code = "error"
    status = 400  # the JSON API's HTTP status for it

    def __init_subclass__(cls, code: str = "", status: int = 0, **kwargs: Any):
        # Each error names its code and status in its class line (``code=..., status=...``).
        super().__init_subclass__(**kwargs)
        if code:
            cls.code = code
        if status:
            cls.status = status

    def __init__(self, message: str, out_trade_no: Optional[str] = None):
        super().__init__(message)
        self.message = message
        self.out_trade_no = out_trade_no


class OrderNotFound(TornpayError, LookupError, code="not_found", status=404):
    """No order (or refund) with that number."""


class UnknownProduct(TornpayError, LookupError, code="unknown_product", status=404):
    """``resolve_product`` knows no such product: nothing was created."""


class InvalidState(TornpayError, code="invalid_state", status=409):
    """The order's state (or age) does not allow this; nothing changed."""


class InvalidRequest(TornpayError, ValueError, code="invalid_request", status=400):
    """A bad argument (amount, body, attach, payer); nothing changed."""


class TradeTypeNotEnabled(TornpayError, ValueError, code="trade_type_not_enabled", status=400):
    """The trade type is unknown, or not enabled in this merchant's settings."""


class TooManyOpenOrders(TornpayError, code="too_many_open_orders", status=429):
    """The payer (or address) already has as many unpaid orders as the limits allow."""


class ProductLookupFailed(TornpayError, code="product_lookup_failed", status=503):
    """A plugin's ``resolve_product`` failed (raised, timed out): try again later."""


class WeChatRefused(TornpayError, code="wechat_error", status=502):
    """WeChat refused the call or did not answer; ``wechat_code`` is its own code.

    ``retryable`` is true when trying again later may succeed (a timeout,
    SYSTEMERROR); the order, if one was made, is in ``out_trade_no``.
    """

    def __init__(self, message: str, wechat_code: str, retryable: bool = False,
                 out_trade_no: Optional[str] = None):
        super().__init__(message, out_trade_no)
        self.wechat_code = wechat_code
        self.retryable = retryable


def wechat_refusal(exc: BaseException, out_trade_no: Optional[str] = None,
                   message: str = "") -> WeChatRefused:
    """A :class:`WeChatRefused` for a protocol-layer exception (err_code, errcode, type)."""
    code = (getattr(exc, "err_code", None) or getattr(exc, "errcode", None)
            or type(exc).__name__)
    return WeChatRefused(message or f"WeChat refused the call ({code}): {exc}", str(code),
                         bool(getattr(exc, "retryable", False)), out_trade_no)
