"""Notify bodies read as a stream: at most 64 KiB + 1 byte kept, past 1 MiB the connection drops."""

import logging

import tornado.web

from tornpay.handlers.base import XMLHandler
from tornpay.protocol.xmlcodec import MAX_XML_BYTES

logger = logging.getLogger(__name__)

# Bodies between the notify limit and this are read and thrown away so the
# sender gets a clean FAIL; past it Tornado drops the connection.
DISCARD_LIMIT = 1024 * 1024


def declared_over_discard_limit(headers) -> bool:
    """True when the request declares a Content-Length over DISCARD_LIMIT."""
    length = headers.get("Content-Length")
    return length is not None and length.isdigit() and int(length) > DISCARD_LIMIT


class CappedBody:
    """A notify body as it streams in, kept to MAX_XML_BYTES + 1 bytes."""

    __slots__ = ("chunks", "size")

    def __init__(self):
        self.chunks: list = []
        self.size = 0

    def add(self, chunk: bytes) -> None:
        # Keep at most one byte past the limit: enough to know it was exceeded,
        # whether the body came whole or chunked.
        if self.size <= MAX_XML_BYTES:
            self.chunks.append(chunk[:MAX_XML_BYTES + 1 - self.size])
        self.size += len(chunk)

    def value(self) -> bytes:
        """What was kept (longer than MAX_XML_BYTES means: too large)."""
        return b"".join(self.chunks)


@tornado.web.stream_request_body
class StreamedXMLHandler(XMLHandler):
    """An XML notify endpoint that never buffers more than MAX_XML_BYTES + 1 of a body."""

    def prepare(self):
        self._body = CappedBody()
        super().prepare()
        if self._finished:
            return
        self.request.connection.set_max_body_size(DISCARD_LIMIT)
        if declared_over_discard_limit(self.request.headers):
            logger.warning("%s notify from %s refused: Content-Length %s", self.notify_kind,
                           self.request.remote_ip, int(self.request.headers["Content-Length"]))
            self.reply(False, "body too large")

    def data_received(self, chunk):
        self._body.add(chunk)

    @property
    def body(self) -> bytes:
        """What was kept of the body (longer than MAX_XML_BYTES means: too large)."""
        return self._body.value()


default_handlers = []
