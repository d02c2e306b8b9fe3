"""Where a day's bill comes from: a small interface, and v2 ``downloadbill`` behind it.

The v3 source (``GET /v3/bill/tradebill`` then the unsigned ``download_url``,
checked against ``hash_value``) is ``tornpay.gateway.v3.V3TradeBill``;
``bill_source`` asks the gateway of ``wechat.api_version``.
"""

import datetime
import logging
from typing import Any, Protocol

from tornado.httpclient import HTTPRequest

from tornpay.interfaces import CoreContext
from tornpay.protocol.xmlcodec import XMLError, decode_xml

logger = logging.getLogger(__name__)

PATH = "/pay/downloadbill"


class BillUnavailable(Exception):
    """WeChat has no bill to give now; ``retry`` says whether asking later can help."""

    def __init__(self, message: str, retry: bool):
        super().__init__(message)
        self.retry = retry


class NoBill(BillUnavailable):
    """``No Bill Exist``: nothing was billed that day."""

    def __init__(self, message: str = "No Bill Exist"):
        super().__init__(message, retry=False)


class BillSource(Protocol):
    """Fetches the raw bill of one Beijing day (bytes as WeChat sent them)."""

    name: str

    async def fetch(self, day: datetime.date) -> bytes:
        """The bill's bytes; raises NoBill, or BillUnavailable(retry=...)."""


class V2DownloadBill:
    """``POST /pay/downloadbill`` (bill_type ALL, gzip), signed with the v2 key."""

    name = "v2"

    def __init__(self, pay_client: Any):
        self.client = pay_client

    async def fetch(self, day: datetime.date) -> bytes:
        try:
            return await self._fetch(day, "GZIP")
        except BillUnavailable as exc:
            # CompressGZip Error: WeChat could not compress it; ask for plain text.
            if "gzip" not in str(exc).lower():
                raise
            logger.warning("downloadbill %s: %s; asking without gzip", day.isoformat(), exc)
            return await self._fetch(day, None)

    async def _fetch(self, day: datetime.date, tar_type) -> bytes:
        body, _ = self.client.build_request(PATH, {"bill_date": day.strftime("%Y%m%d"),
                                                   "bill_type": "ALL", "tar_type": tar_type})
        request = HTTPRequest(self.client.base_url + PATH, method="POST", body=body,
                              headers={"Content-Type": "text/xml; charset=utf-8"},
                              request_timeout=max(self.client.timeout, 30.0),
                              connect_timeout=self.client.timeout, follow_redirects=False)
        response = await self.client.http_client.fetch(request, raise_error=False)
        if response.code == 599 or not 200 <= response.code < 300:
            raise BillUnavailable(f"downloadbill: HTTP {response.code} {response.error or ''}"
                                  .strip(), retry=True)
        data = response.body or b""
        # Success is a table (plain or gzip), failure XML (reference §10.3): decide by content.
        if data.lstrip()[:5] == b"<xml>":
            raise _error(data)
        logger.info("downloadbill %s: %d bytes", day.isoformat(), len(data))
        return data


def _error(data: bytes) -> BillUnavailable:
    try:
        fields = decode_xml(data)
    except XMLError as exc:
        return BillUnavailable(f"downloadbill: unreadable error reply ({exc})", retry=True)
    msg = fields.get("return_msg") or fields.get("err_code_des") or "no return_msg"
    # The docs print "NO Bill Exist", the service sends "No Bill Exist" (addendum §5.6).
    if msg.strip().lower() == "no bill exist":
        return NoBill(msg)
    retry = msg.strip().lower() in ("bill creating", "system error", "systemerror") \
        or "gzip" in msg.lower()
    return BillUnavailable(f"downloadbill: {msg}", retry=retry)


def bill_source(ctx: CoreContext) -> BillSource:
    """The bill source of the settings' API generation (its gateway's)."""
    return ctx.gateways.current.bill_source()
