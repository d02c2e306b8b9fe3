"""POST /notify: WeChat's payment-result notify, read with a 64 KiB limit and answered in XML."""

import logging

import tornado.web

from tornpay.handlers.base import XMLHandler
from tornpay.orders.notify import handle_pay_notify
from tornpay.protocol.xmlcodec import MAX_XML_BYTES

logger = logging.getLogger(__name__)

# Bodies between the notify limit and this are read and thrown away so the
# sender gets a clean FAIL; past it Tornado drops the connection.
DISCARD_LIMIT = 1024 * 1024


@tornado.web.stream_request_body
class PayNotifyHandler(XMLHandler):
    """Receive a payment notify; the reply never waits on plugins."""

    def prepare(self):
        self._chunks = []
        self._size = 0
        self.request.connection.set_max_body_size(DISCARD_LIMIT)
        length = self.request.headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) > DISCARD_LIMIT:
            logger.warning("notify from %s refused: Content-Length %s", self.request.remote_ip,
                           length)
            self.reply(False, "body too large")

    def data_received(self, chunk):
        # Keep at most one byte past the limit: enough to know it was exceeded,
        # whether the body came whole or chunked.
        if self._size <= MAX_XML_BYTES:
            self._chunks.append(chunk[:MAX_XML_BYTES + 1 - self._size])
        self._size += len(chunk)

    async def post(self):
        result = await handle_pay_notify(self.ctx, b"".join(self._chunks),
                                    self.request.remote_ip or "")
        self.notify_outcome = result.outcome  # accepted vs duplicate, for /metrics
        self.reply(*result)


default_handlers = [
    (r"/notify", PayNotifyHandler, "tornpay-notify"),
]
