"""Notify bodies read as a stream: at most 64 KiB + 1 byte kept, past 1 MiB the connection drops."""

import logging

import tornado.web

from tornpay.handlers.base import XMLHandler
from tornpay.protocol.xmlcodec import MAX_XML_BYTES

logger = logging.getLogger(__name__)

# Bodies between the notify limit and this are read and thrown away so the
# sender gets a clean FAIL; past it Tornado drops the connection.
DISCARD_LIMIT = 1024 * 1024


@tornado.web.stream_request_body
class StreamedXMLHandler(XMLHandler):
    """An XML notify endpoint that never buffers more than MAX_XML_BYTES + 1 of a body."""

    def prepare(self):
        self._chunks = []
        self._size = 0
        super().prepare()
        if self._finished:
            return
        self.request.connection.set_max_body_size(DISCARD_LIMIT)
        length = self.request.headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) > DISCARD_LIMIT:
            logger.warning("%s notify from %s refused: Content-Length %s", self.notify_kind,
                           self.request.remote_ip, int(length))
            self.reply(False, "body too large")

    def data_received(self, chunk):
        # Keep at most one byte past the limit: enough to know it was exceeded,
        # whether the body came whole or chunked.
        if self._size <= MAX_XML_BYTES:
            self._chunks.append(chunk[:MAX_XML_BYTES + 1 - self._size])
        self._size += len(chunk)

    @property
    def body(self) -> bytes:
        """What was kept of the body (longer than MAX_XML_BYTES means: too large)."""
        return b"".join(self._chunks)


default_handlers = []
