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
