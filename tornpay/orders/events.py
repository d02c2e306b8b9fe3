"""Read-only views of an order and a refund, the only objects plugins receive."""

import datetime
from dataclasses import dataclass
from typing import Any, Mapping, Optional


@dataclass(frozen=True)
class OrderView:
    """Snapshot of one order as a plugin sees it (never a live database row)."""

    out_trade_no: str
    product_id: str
    openid: str
    total_fee: int  # fen
    state: str
    transaction_id: Optional[str]
    attach: str
    created_at: datetime.datetime  # naive UTC
    paid_at: Optional[datetime.datetime]  # naive UTC
    # Stable id of one durable delivery (same on every retry), None otherwise.
    delivery_id: Optional[str] = None
    trade_type: str = "JSAPI"  # JSAPI, NATIVE or MWEB (SPEC §9)

    @classmethod
    def from_row(cls, order: Any, delivery_id: Optional[str] = None) -> "OrderView":
        """Copy the plugin-visible columns of an ``Order`` row."""
        return cls(
            out_trade_no=order.out_trade_no,
            product_id=order.product_id,
            openid=order.openid,
            total_fee=order.total_fee,
            state=order.state,
            transaction_id=order.transaction_id,
            attach=order.attach or "",
            created_at=order.created_at,
            paid_at=order.paid_at,
            delivery_id=delivery_id,
            trade_type=getattr(order, "trade_type", None) or "JSAPI",
        )


@dataclass(frozen=True)
class RefundView:
    """One successful refund as a plugin sees it."""

    out_refund_no: str
    refund_fee: int  # fen
    refund_id: Optional[str]

    @classmethod
    def from_payload(cls, data: Mapping[str, Any]) -> "RefundView":
        """Rebuild from the JSON an ``on_refund`` outbox event carries."""
        return cls(
            out_refund_no=str(data["out_refund_no"]),
            refund_fee=int(data["refund_fee"]),
            refund_id=data.get("refund_id"),
        )

    def as_payload(self) -> dict:
        return {"out_refund_no": self.out_refund_no, "refund_fee": self.refund_fee,
                "refund_id": self.refund_id}


PRODUCT_KEYS = frozenset({"body", "total_fee", "attach"})


def product_from_answer(answer: Any) -> dict:
    """Check a ``resolve_product`` answer; return ``{body, total_fee, attach}`` or raise ValueError.

    The price a payer is charged comes from here alone, so the shape is strict:
    ``total_fee`` a positive int of fen (never a float or a string), ``body``
    at most WeChat's 128 bytes, ``attach`` at most 127.
    """
    if not isinstance(answer, dict):
        raise ValueError(f"must return a dict or None, not {type(answer).__name__}")
    unknown = set(answer) - PRODUCT_KEYS
    if unknown:
        raise ValueError(f"returned unknown keys {', '.join(sorted(unknown))}")
    body, fee, attach = answer.get("body"), answer.get("total_fee"), answer.get("attach", "")
    if not isinstance(body, str) or not body or len(body.encode("utf-8")) > 128:
        raise ValueError("body must be a non-empty str of at most 128 bytes")
    if not isinstance(fee, int) or isinstance(fee, bool) or fee <= 0:
        raise ValueError("total_fee must be a positive int (fen)")
    if attach is None:
        attach = ""
    if not isinstance(attach, str) or len(attach.encode("utf-8")) > 127:
        raise ValueError("attach must be a str of at most 127 bytes")
    return {"body": body, "total_fee": fee, "attach": attach}
