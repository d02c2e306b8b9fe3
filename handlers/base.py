"""Base handlers: HTML pages with tornpay's own templates and cookies; the XML notify base."""

import http.client
import json
import logging
import os

import tornado.web

from tornpay import webheaders
from tornpay.i18n import HTML_LANG, choose, get_locale
from tornpay.pagekit import PageLoader
from tornpay.protocol.xmlcodec import encode_xml
from tornpay.orders.pages import database_busy

logger = logging.getLogger(__name__)

TEMPLATE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "templates")


def _template_dir():
    # Installed, templates live in the tornpay.templates package; in a source
    # checkout (editable install) that is the top-level templates/ folder.
    try:
        import tornpay.templates as pkg

        return os.path.dirname(os.path.abspath(pkg.__file__))
    except ImportError:  # pragma: no cover
        return os.path.abspath(TEMPLATE_DIR)


# The signed cookie naming the payer (set after OAuth, read by every owner check).
OPENID_COOKIE = "tornpay_openid"
DB_DOWN_TITLE = "暂时无法服务 / Temporarily unavailable"
DB_DOWN_MESSAGE = ("系统暂时无法保存数据，请稍后再试。 / We cannot save anything right now. "
                   "Please try again in a few minutes.")
# The signed cookie owning NATIVE and MWEB orders, which have no openid (SPEC §9).
PAYER_COOKIE = "tornpay_payer"


class PageError(tornado.web.HTTPError):
    """An error shown to a person: status plus a message safe to display."""

    def __init__(self, status_code: int, message: str, title: str = "", **params):
        super().__init__(status_code, reason=None)
        self.message = message  # English; translated (then %-filled with params) when shown
        self.title = title or http.client.responses.get(status_code, "Error")
        self.params = params


class BaseHandler(tornado.web.RequestHandler):
    """Render tornpay pages with our own templates and cookie secret (estates keep theirs)."""

    def initialize(self, ctx):
        self.ctx = ctx

    def prepare(self):
        # No page can do its work while the database cannot be written (docs/security.md).
        if not self.ctx.db_health.ok:
            raise PageError(503, DB_DOWN_MESSAGE, title=DB_DOWN_TITLE)

    def set_default_headers(self):
        # Also when embedded, where the estate's Application has no tornpay transform.
        webheaders.apply_to(self)

    def get_template_path(self):
        return _template_dir()

    def create_template_loader(self, template_path):
        return PageLoader(template_path)  # shared fragments; never the estate's loader settings

    def get_user_locale(self):
        # Accept-Language first (WeChat's browser sends zh-CN), then server.default_locale.
        return get_locale(choose(self.request.headers.get("Accept-Language", ""),
                                 self.ctx.settings.server.default_locale))

    def get_template_namespace(self):
        ns = super().get_template_namespace()
        ns.update(
            simulator=self.ctx.simulator is not None,
            prefix=self.ctx.prefix,
            tp_static=self.tp_static_url,
            html_lang=HTML_LANG[self.locale.code],
        )
        return ns

    def tp_static_url(self, name):
        return f"{self.ctx.prefix}/static/{name}"

    # Signed cookies with tornpay's own secret, so an embedding estate's
    # cookie_secret is neither required nor overwritten.
    def set_tp_cookie(self, name, value, max_age_days=30):
        signed = tornado.web.create_signed_value(
            self.ctx.settings.server.cookie_secret, name, value)
        self.set_cookie(name, signed, expires_days=max_age_days, httponly=True,
                        samesite="Lax", secure=self.request.protocol == "https",
                        path="/")

    def get_tp_cookie(self, name, max_age_days=31):
        raw = self.get_cookie(name)
        if not raw:
            return None
        value = tornado.web.decode_signed_value(
            self.ctx.settings.server.cookie_secret, name, raw, max_age_days=max_age_days)
        return value.decode("utf-8") if value else None

    def client_ip(self):
        """The payer's address: X-Real-IP is honoured only through HTTPServer(xheaders=True)."""
        return self.request.remote_ip or "127.0.0.1"

    def log_exception(self, typ, value, tb):
        if database_busy(value):  # expected under a held lock: one line, no traceback
            logger.warning("%s %s: database busy (%s); answered 503", self.request.method,
                           self.request.path, value)
            return
        super().log_exception(typ, value, tb)

    def write_error(self, status_code, **kwargs):
        # Synchronous on purpose (a failed template must not recurse into async code).
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, PageError):
            title, message, params = exc.title, exc.message, exc.params
        elif database_busy(exc):  # the database was not free in time: nothing was written
            self.set_status(503)
            status_code, title, params = 503, "Busy", {}
            message = "The service is busy; please try again in a moment."
        else:
            title = http.client.responses.get(status_code, "Error")
            message = "Something went wrong. Please try again." if status_code >= 500 else title
            params = {}
        try:
            title = self.locale.translate(title)
            message = self.locale.translate(message) % params if params else \
                self.locale.translate(message)
            self.render("error.html", status_code=status_code, title=title, message=message)
        except Exception:  # never let the error page itself fail with a traceback
            logger.exception("error page failed")
            self.finish(f"{status_code} {title}")


_REPLIES: dict = {}  # (ok, return_msg) -> the encoded reply


class XMLHandler(tornado.web.RequestHandler):
    """Speak WeChat's notify XML in every answer, errors included (never an HTML 500)."""

    def initialize(self, ctx):
        self.ctx = ctx

    def set_default_headers(self):
        webheaders.apply_to(self)

    def check_xsrf_cookie(self):
        # WeChat's servers cannot carry an XSRF token; authenticity comes from
        # the signature (or the req_info encryption) checked by the handler.
        pass

    notify_kind = "pay"  # the label of this handler's notifies in /metrics
    notify_outcome = None  # set by a handler that knows more than SUCCESS/FAIL

    v3 = False  # a JSON (API v3) notify: answered 204, or 4xx/5xx {"code": "FAIL", ...}

    def prepare(self):
        # A notify we cannot record is answered FAIL, so WeChat sends it again later.
        if not self.ctx.db_health.ok:
            self.notify_outcome = "error"
            self.reply(False, "temporary failure, retry")

    def reply(self, ok: bool, message: str = "OK"):
        count_notify(self.ctx, self.notify_outcome, ok, self.notify_kind)
        if self.v3:
            reply_v3(self, ok, message)
            return
        self.set_header("Content-Type", XML_CONTENT_TYPE)
        self.finish(xml_reply(ok, message))

    def write_error(self, status_code, **kwargs):
        self.set_status(200 if status_code < 500 else status_code)
        self.reply(False, "request refused" if status_code < 500 else "internal error, retry")


def count_notify(ctx, outcome, ok: bool, kind: str = "pay") -> None:
    """One notify in /metrics: its outcome if known, else accepted or refused by its reply."""
    if ctx.metrics is not None:
        ctx.metrics.notify(outcome or ("accepted" if ok else "refused"), kind=kind)


XML_CONTENT_TYPE = "text/xml; charset=utf-8"
JSON_CONTENT_TYPE = "application/json; charset=utf-8"


def xml_reply(ok: bool, message: str) -> bytes:
    """The v2 reply document: ``<xml><return_code>SUCCESS|FAIL</return_code>...``."""
    body = _REPLIES.get((ok, message))
    if body is None:
        body = encode_xml({"return_code": "SUCCESS" if ok else "FAIL", "return_msg": message})
        if len(_REPLIES) < 64:  # the fixed replies; a refusal's text may vary
            _REPLIES[(ok, message)] = body
    return body


def v3_reply(ok: bool, message: str):
    """SPEC §10: ``(204, None)`` on success; a refusal 400 (a temporary failure 500) with JSON."""
    if ok:
        return 204, None
    temporary = "retry" in message or "internal" in message
    return (500 if temporary else 400), json.dumps({"code": "FAIL", "message": message}).encode()


def reply_v3(handler, ok: bool, message: str) -> None:
    """A v3 notify's answer from a handler (see :func:`v3_reply`)."""
    status, body = v3_reply(ok, message)
    handler.set_status(status)
    if body is None:
        handler.finish()
        return
    handler.set_header("Content-Type", JSON_CONTENT_TYPE)
    handler.finish(body)
