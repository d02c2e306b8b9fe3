"""The gateway interface between the order core and WeChat Pay, and its neutral shapes.

The core never speaks a wire format: it asks the gateway of an order's
generation (``Gateways.for_order``) and gets these shapes back, whatever the
API generation. Field names follow WeChat's v2 vocabulary because the core
grew up with it; the v3 gateway translates into them.

- prepay request: ``prepare_prepay(fields, sign_type) -> str`` stores the exact
  request (retries and prepay refreshes re-send it byte for byte) and
  ``send_prepay(text) -> dict`` answers ``prepay_id`` (JSAPI), ``code_url``
  (NATIVE) or ``mweb_url`` (H5). ``fields``: body, attach, out_trade_no,
  fee_type, total_fee (int fen), spbill_create_ip, time_start, time_expire
  (Beijing yyyyMMddHHmmss), notify_url, trade_type, openid.
- trade state (query, and a verified payment notify): a dict with
  out_trade_no, trade_state, total_fee, transaction_id, time_end, bank_type,
  cash_fee (plus appid, mch_id, result_code, fee_type for notifies).
- refunds: ``prepare_refund(params, sign_type) -> str`` / ``send_refund(text)``
  (answers refund_id); ``refund_query(no) -> RefundResult``.
- errors: ``protocol.errors`` types with v2 codes (ORDERNOTEXIST, ORDERPAID,
  ORDERCLOSED, SYSTEMERROR, NOTENOUGH ...), whatever the generation.
"""

from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Protocol


class NotifyRefused(Exception):
    """A notify that must not be trusted; ``reason`` is logged, ``reply`` goes to WeChat."""

    def __init__(self, reason: str, reply: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.reply = reply or reason


class GatewayUnavailable(Exception):
    """No gateway is configured for the generation an order needs."""


@dataclass
class RefundResult:
    """WeChat's word on one refund: status SUCCESS / PROCESSING / REFUNDCLOSE / CHANGE."""

    out_refund_no: str
    status: str
    refund_id: Optional[str] = None
    success_time: Optional[str] = None
    refund_fee: Optional[int] = None
    extra: Dict[str, Any] = field(default_factory=dict)


class Gateway(Protocol):
    """What the core asks of one API generation (v2 and v3 implement it)."""

    generation: str

    def prepare_prepay(self, fields: dict, sign_type: str) -> str: ...
    async def send_prepay(self, request_text: str) -> dict: ...
    # appid: the order's (a Mini Program's order is not the Official Account's).
    async def order_query(self, out_trade_no: str, sign_type: Optional[str] = None,
                          appid: Optional[str] = None) -> dict: ...
    async def close_order(self, out_trade_no: str, sign_type: Optional[str] = None,
                          appid: Optional[str] = None) -> None: ...
    def prepare_refund(self, params: dict, sign_type: str) -> str: ...
    async def send_refund(self, request_text: str) -> dict: ...
    async def refund_query(self, out_refund_no: str,
                           appid: Optional[str] = None) -> RefundResult: ...
    def pay_params(self, order: Any, timestamp: str, nonce: str) -> dict: ...
    def bill_source(self) -> Any: ...
