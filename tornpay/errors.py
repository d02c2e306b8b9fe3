"""Typed errors of the programming interfaces: one stable ``code`` each, for Python and JSON."""

from typing import Optional


class TornpayError(Exception):
    """Base of every error the Python API raises; ``code`` is the JSON API's error code."""

    code = "error"
    status = 400  # the JSON API's HTTP status for it

    def __init__(self, message: str, out_trade_no: Optional[str] = None):
        super().__init__(message)
        self.message = message
        self.out_trade_no = out_trade_no


class OrderNotFound(TornpayError, LookupError):
    """No order (or refund) with that number."""

    code, status = "not_found", 404


class UnknownProduct(TornpayError, LookupError):
    """``resolve_product`` knows no such product: nothing was created."""

    code, status = "unknown_product", 404


class InvalidState(TornpayError):
    """The order's state (or age) does not allow this; nothing changed."""

    code, status = "invalid_state", 409


class InvalidRequest(TornpayError, ValueError):
    """A bad argument (amount, body, attach, payer); nothing changed."""

    code, status = "invalid_request", 400


class TradeTypeNotEnabled(TornpayError, ValueError):
    """The trade type is unknown, or not enabled in this merchant's settings."""

    code, status = "trade_type_not_enabled", 400


class TooManyOpenOrders(TornpayError):
    """The payer (or address) already has as many unpaid orders as the limits allow."""

    code, status = "too_many_open_orders", 429


class ProductLookupFailed(TornpayError):
    """A plugin's ``resolve_product`` failed (raised, timed out): try again later."""

    code, status = "product_lookup_failed", 503


class WeChatRefused(TornpayError):
    """WeChat refused the call or did not answer; ``wechat_code`` is its own code.

    ``retryable`` is true when trying again later may succeed (a timeout,
    SYSTEMERROR); the order, if one was made, is in ``out_trade_no``.
    """

    code, status = "wechat_error", 502

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
