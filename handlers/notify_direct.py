"""POST /notify answered without a RequestHandler: the standalone server's hot path."""

import asyncio
import time
from typing import Optional

from tornado import httputil, iostream
from tornado.log import app_log
from tornado.routing import PathMatches, Router, Rule

from tornpay import webheaders
from tornpay.handlers.base import (JSON_CONTENT_TYPE, XML_CONTENT_TYPE, count_notify, v3_reply,
                                   xml_reply)
from tornpay.handlers.xmlbody import DISCARD_LIMIT, CappedBody, declared_over_discard_limit
from tornpay.orders.notify import handle_pay_notify, is_v3_body

# Why: a notify is most of what a busy shop's server answers, and a
# RequestHandler (its object, header dict, prepare/finish/flush, transforms)
# cost ~30 us of a notify's ~400 us of CPU (bench/README.md). This delegate
# gives the same answer as handlers/notify.py for the common case: a POST with
# the database up and no Content-Length over DISCARD_LIMIT. Anything else (a
# GET, a huge body, the database down) is left to PayNotifyHandler, which
# stays the only path when tornpay is embedded in an estate's application.
INTERNAL_ERROR = "internal error, retry"


class DirectNotifyMatches(PathMatches):
    """The notify path, for a request this module answers the same as the handler would."""

    def __init__(self, path_pattern: str, ctx):
        super().__init__(path_pattern)
        self.ctx = ctx

    def match(self, request):
        if (request.method != "POST" or not self.ctx.db_health.ok
                or declared_over_discard_limit(request.headers)):
            return None  # the handler answers (a huge body: refused with its warning line)
        return super().match(request)


class DirectNotifyRouter(Router):
    """A rule target: one :class:`NotifyDelegate` per matched request."""

    def __init__(self, ctx, application):
        self.ctx = ctx
        self.application = application

    def find_handler(self, request, **kwargs):
        return NotifyDelegate(self, request)


class AnsweredNotify:
    """What an Application's ``log_request``/``log_function`` reads of a finished handler."""

    __slots__ = ("request", "status", "logged_own_line")

    def __init__(self, request, status: int, logged_own_line: bool):
        self.request, self.status, self.logged_own_line = request, status, logged_own_line

    def get_status(self) -> int:
        return self.status

    def _request_summary(self) -> str:
        return _summary(self.request)


def _summary(request) -> str:
    return f"{request.method} {request.uri} ({request.remote_ip})"


class NotifyDelegate(httputil.HTTPMessageDelegate):
    """One POST /notify: the body kept to MAX_XML_BYTES + 1, handle_pay_notify, the reply."""

    def __init__(self, router: DirectNotifyRouter, request):
        self.router, self.request = router, request
        self.body = CappedBody()
        self.answering: Optional[asyncio.Future] = None  # the task answering it, kept alive

    def headers_received(self, start_line, headers):
        # As StreamedXMLHandler.prepare: bodies up to DISCARD_LIMIT are read
        # (and all but MAX_XML_BYTES + 1 of them thrown away) for a clean FAIL.
        self.request.connection.set_max_body_size(DISCARD_LIMIT)

    def data_received(self, chunk):
        self.body.add(chunk)

    def finish(self):
        self.answering = asyncio.ensure_future(self._answer(self.body.value()))

    def on_connection_close(self):
        # Closed before the body was whole: nothing runs and nothing is logged
        # (as with the handler), but the request leaves the in-flight count.
        self.router.application.leave_in_flight(self.request)

    async def _answer(self, body: bytes) -> None:
        ctx = self.router.ctx
        v3, status, own_line, outcome = is_v3_body(body), 200, False, None
        try:
            result = await handle_pay_notify(ctx, body, self.request.remote_ip or "",
                                             self.request.headers)
            ok, message, outcome = result[0], result[1], result.outcome
            own_line = result.paid is not None  # "order X: PAID via notify" is its line
        except Exception:
            app_log.error("Uncaught exception %s", _summary(self.request), exc_info=True)
            ok, message, status = False, INTERNAL_ERROR, 500
        count_notify(ctx, outcome, ok)
        try:
            status = self._send(ok, message, v3, status)
        finally:
            self.router.application.log_request(AnsweredNotify(self.request, status, own_line))

    def _send(self, ok: bool, message: str, v3: bool, status: int) -> int:
        headers = httputil.HTTPHeaders()
        headers["Date"] = httputil.format_timestamp(time.time())
        body: Optional[bytes]
        if v3:
            status, body = v3_reply(ok, message)
            if body is not None:
                headers["Content-Type"] = JSON_CONTENT_TYPE
        else:
            body = xml_reply(ok, message)
            headers["Content-Type"] = XML_CONTENT_TYPE
        if body is not None:
            headers["Content-Length"] = str(len(body))
        webheaders.apply(headers)
        connection = self.request.connection
        try:
            connection.write_headers(
                httputil.ResponseStartLine("", status, httputil.responses[status]), headers,
                body or None)
            connection.finish()
        except iostream.StreamClosedError:
            pass  # WeChat hung up; what was committed stays, and it sends again
        return status


def direct_notify_rule(path: str, ctx, application) -> Rule:
    """The rule to put before tornpay's routes in a standalone application."""
    return Rule(DirectNotifyMatches(path, ctx), DirectNotifyRouter(ctx, application))
