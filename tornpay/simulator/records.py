"""The simulator's order and refund records, and WeChat's time formats."""

import datetime
from dataclasses import dataclass, field
from typing import Dict, List, Optional

BEIJING = datetime.timezone(datetime.timedelta(hours=8))
PREPAY_TTL = 2 * 3600  # a prepay_id lives 2 hours
CODE_TTL = 5 * 60  # an OAuth code lives 5 minutes
REFUND_WINDOW = 365 * 86400  # refunds only within a year of payment
MAX_REFUNDS = 50


def compact_time(ts: float) -> str:
    """yyyyMMddHHmmss in Beijing time (time_end, time_expire)."""
    return datetime.datetime.fromtimestamp(ts, BEIJING).strftime("%Y%m%d%H%M%S")


def dashed_time(ts: float) -> str:
    """yyyy-MM-dd HH:mm:ss in Beijing time (refund success times)."""
    return datetime.datetime.fromtimestamp(ts, BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def parse_compact_time(text: str) -> Optional[float]:
    """Epoch seconds of a Beijing yyyyMMddHHmmss, or None when malformed."""
    if len(text) != 14 or not text.isdigit():
        return None
    try:
        moment = datetime.datetime.strptime(text, "%Y%m%d%H%M%S")
    except ValueError:
        return None
    return moment.replace(tzinfo=BEIJING).timestamp()


@dataclass
class Attempt:
    """One notify delivery attempt as the merchant saw it."""

    n: int
    at: float
    status: Optional[int] = None
    ok: bool = False
    reply: str = ""
    error: str = ""
    duplicate: bool = False
    dropped: bool = False

    def to_dict(self) -> dict:
        return {
            "n": self.n, "at": self.at, "at_beijing": dashed_time(self.at),
            "status": self.status, "ok": self.ok, "reply": self.reply, "error": self.error,
            "duplicate": self.duplicate, "dropped": self.dropped,
        }


@dataclass
class Order:
    """A unified order as WeChat holds it (trade_state drives everything)."""

    mch_id: str
    appid: str
    out_trade_no: str
    request: Dict[str, str]  # business fields of the first call, for re-entry comparison
    sign_type: str
    created_at: float
    total_fee: int
    openid: str
    notify_url: str
    body: str
    attach: str = ""
    device_info: str = ""
    fee_type: str = "CNY"
    trade_type: str = "JSAPI"
    time_expire: Optional[float] = None
    trade_state: str = "NOTPAY"
    prepay_id: str = ""
    prepay_expires_at: float = 0.0
    transaction_id: str = ""
    time_end: str = ""
    paid_at: Optional[float] = None
    bank_type: str = "OTHERS"
    is_subscribe: str = "N"
    refunds: List[str] = field(default_factory=list)  # out_refund_no, in order
    notifies: List[Attempt] = field(default_factory=list)
    notify_status: str = ""  # "", pending, delivered, gave_up, dropped
    notify_url_warning: str = ""  # why real WeChat could not reach notify_url
    coupon_fee: int = 0  # set by the notify_coupon fault: a non-recharge coupon paid this part
    api: str = "v2"  # the API generation that made the order: its notify speaks it

    def to_dict(self) -> dict:
        return {
            "mch_id": self.mch_id, "appid": self.appid, "out_trade_no": self.out_trade_no,
            "notify_url_warning": self.notify_url_warning,
            "trade_state": self.trade_state, "total_fee": self.total_fee, "openid": self.openid,
            "body": self.body, "attach": self.attach, "sign_type": self.sign_type,
            "notify_url": self.notify_url, "prepay_id": self.prepay_id,
            "prepay_expires_at": self.prepay_expires_at, "created_at": self.created_at,
            "transaction_id": self.transaction_id, "time_end": self.time_end,
            "time_expire": self.time_expire, "refunds": list(self.refunds),
            "notify_status": self.notify_status, "api": self.api,
            "notifies": [a.to_dict() for a in self.notifies],
        }


@dataclass
class Refund:
    """One refund of an order: PROCESSING, then SUCCESS / CHANGE / REFUNDCLOSE."""

    mch_id: str
    appid: str
    out_trade_no: str
    transaction_id: str
    out_refund_no: str
    refund_id: str
    refund_fee: int
    total_fee: int
    created_at: float
    sign_type: str
    notify_url: str = ""
    status: str = "PROCESSING"
    success_at: Optional[float] = None
    refund_account: str = "REFUND_SOURCE_UNSETTLED_FUNDS"
    recv_accout: str = "支付用户的零钱"
    notifies: List[Attempt] = field(default_factory=list)
    notify_status: str = ""
    api: str = "v2"

    def to_dict(self) -> dict:
        return {
            "mch_id": self.mch_id, "out_trade_no": self.out_trade_no, "api": self.api,
            "transaction_id": self.transaction_id, "out_refund_no": self.out_refund_no,
            "refund_id": self.refund_id, "refund_fee": self.refund_fee,
            "total_fee": self.total_fee, "status": self.status, "created_at": self.created_at,
            "success_time": dashed_time(self.success_at) if self.success_at else "",
            "notify_url": self.notify_url, "notify_status": self.notify_status,
            "notifies": [a.to_dict() for a in self.notifies],
        }
