"""Parse a downloadbill body by header name: back-ticks, yuan to fen, Beijing times, both layouts.

Reference §10.2 and addendum §5: a success body is a text table (UTF-8, maybe
with a BOM, CRLF or LF, maybe gzip), every data field prefixed with a
back-tick; a header row, data rows, then a summary header and a summary row.
Older merchants get a legacy header set, so columns are found by name.
"""

import datetime
import gzip
import zlib
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Dict, List, Optional

from tornpay.protocol import wechat_time
from tornpay.protocol.wechat_time import BEIJING  # noqa: F401  (bills.scheduler imports it here)

MAX_BILL_BYTES = 64 * 1024 * 1024  # after gunzip: a bill bomb must not eat the memory

# Column names in the current layout, then the legacy ones (reference §10.2).
ORDER_FEE = ("订单金额", "总金额")
SETTLEMENT_FEE = ("应结订单金额", "总金额")
REFUND_FEE = ("申请退款金额", "退款金额")
SUMMARY_COUNT = "总交易单数"
SUMMARY_ORDERS = ("订单总金额", "总交易额")
SUMMARY_REFUNDS = ("申请退款总金额", "总退款金额")


class BillFormatError(ValueError):
    """The body is not a bill we can read (or its summary disagrees with its rows)."""


@dataclass
class BillPayment:
    """A payment row (交易状态 SUCCESS): the order as WeChat billed it."""

    out_trade_no: str
    transaction_id: str
    total_fee: int  # fen, 订单金额 (legacy 总金额)
    trade_time: datetime.datetime  # naive UTC
    trade_type: str
    appid: str


@dataclass
class BillRefund:
    """A refund row: initiated on the bill's day, status as of when the bill was made."""

    out_trade_no: str
    out_refund_no: str
    refund_id: str
    refund_fee: int  # fen, 申请退款金额 (legacy 退款金额)
    status: str
    trade_time: datetime.datetime


@dataclass
class Bill:
    """A parsed bill: its payments, refunds, the raw summary and the layout name."""

    payments: List[BillPayment] = field(default_factory=list)
    refunds: List[BillRefund] = field(default_factory=list)
    summary: Dict[str, str] = field(default_factory=dict)
    layout: str = "current"


def yuan_to_fen(text: str) -> int:
    """``"99.00"`` -> 9900; Decimal, never float (pitfall P35)."""
    try:
        return int((Decimal(text.strip() or "0") * 100).to_integral_value())
    except InvalidOperation:
        raise BillFormatError(f"not an amount in yuan: {text!r}") from None


def beijing_to_utc(text: str) -> datetime.datetime:
    moment = wechat_time.beijing_to_utc(text)
    if moment is None:
        raise BillFormatError(f"not a bill time: {text!r}")
    return moment


def decode_body(body: bytes) -> str:
    """The bill's text: gunzipped when it starts with gzip's magic, decoded as utf-8-sig."""
    if body[:2] == b"\x1f\x8b":
        try:
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            body = inflater.decompress(body, MAX_BILL_BYTES)
        except (zlib.error, OSError, EOFError, gzip.BadGzipFile) as exc:
            raise BillFormatError(f"bad gzip: {exc}") from None
        if inflater.unconsumed_tail:
            raise BillFormatError(f"bill larger than {MAX_BILL_BYTES} bytes")
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BillFormatError("bill is not UTF-8") from None


def _split(line: str) -> List[str]:
    # Split on ",`" so a comma inside a product name survives (pitfall P40).
    return line[1:].split(",`") if line.startswith("`") else line.split(",")


def _pick(row: Dict[str, str], names) -> str:
    for name in names:
        if name in row:
            return row[name]
    raise BillFormatError(f"bill has none of the columns {', '.join(names)}")


def parse_rows(text: str):
    """``(header, rows as dicts, summary dict)`` of a bill's text."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or lines[0].lstrip().startswith("<"):
        raise BillFormatError("not a bill table (an XML error reply?)")
    try:
        i = next(k for k, line in enumerate(lines) if line.startswith(SUMMARY_COUNT))
    except StopIteration:
        raise BillFormatError("bill has no summary") from None
    header = lines[0].split(",")
    rows = []
    for line in lines[1:i]:
        values = _split(line)
        if len(values) != len(header):
            raise BillFormatError(f"row has {len(values)} fields, header {len(header)}")
        rows.append(dict(zip(header, values)))
    if i + 1 >= len(lines):
        raise BillFormatError("bill summary has no values")
    summary = dict(zip(lines[i].split(","), _split(lines[i + 1])))
    return header, rows, summary


def _is_refund(row: Dict[str, str]) -> bool:
    return row.get("微信退款单号", "0") not in ("", "0") or row.get("交易状态") == "REFUND"


def parse_bill(body: bytes) -> Bill:
    """Parse a bill body (bytes as fetched) and check its summary against its rows."""
    header, rows, summary = parse_rows(decode_body(body))
    bill = Bill(summary=summary, layout="current" if "订单金额" in header else "legacy")
    for row in rows:
        time = beijing_to_utc(row.get("退款申请时间") or row["交易时间"])
        if _is_refund(row):
            bill.refunds.append(BillRefund(row["商户订单号"], row.get("商户退款单号", ""),
                                           row.get("微信退款单号", ""),
                                           yuan_to_fen(_pick(row, REFUND_FEE)),
                                           row.get("退款状态", ""), time))
        else:
            bill.payments.append(BillPayment(row["商户订单号"], row["微信订单号"],
                                             yuan_to_fen(_pick(row, ORDER_FEE)), time,
                                             row.get("交易类型", ""), row.get("公众账号ID", "")))
    check_summary(bill, rows)
    return bill


def check_summary(bill: Bill, rows: List[Dict[str, str]]) -> None:
    """The summary must add up (addendum §5.4): else the parser or the layout is wrong."""
    s = bill.summary
    try:
        count = int(s[SUMMARY_COUNT])
    except (KeyError, ValueError):
        raise BillFormatError("bill summary has no 总交易单数") from None
    if count != len(rows):
        raise BillFormatError(f"summary counts {count} rows, the bill has {len(rows)}")
    pays = sum(p.total_fee for p in bill.payments)
    if yuan_to_fen(_pick(s, SUMMARY_ORDERS)) != pays:
        raise BillFormatError(f"summary order total differs from the rows' {pays} fen")
    refund_total: Optional[str] = next((s[n] for n in SUMMARY_REFUNDS if n in s), None)
    refunds = sum(yuan_to_fen(_pick(r, REFUND_FEE)) for r in rows if _is_refund(r))
    if refund_total is not None and yuan_to_fen(refund_total) != refunds:
        raise BillFormatError(f"summary refund total differs from the rows' {refunds} fen")
