"""The base of every console page: a session or nothing, XSRF on every POST, the language."""

import datetime
import logging
from typing import Optional
from urllib.parse import quote

import tornado.web

from tornpay.console import sessions
from tornpay.console.audit import audit
from tornpay.handlers.base import BaseHandler
from tornpay.orders.pages import database_busy
from tornpay.i18n import HTML_LANG, choose, fen_to_yuan, get_locale
from tornpay.protocol.wechat_time import BEIJING

logger = logging.getLogger(__name__)


def admin_enabled(ctx) -> bool:
    """Console routes are mounted only when ``admin.enabled`` is true."""
    return bool(ctx.settings.admin.enabled)


class ConsoleHandler(BaseHandler):
    """A console page; every method but the login page's needs a valid session."""

    public = False  # the login page sets this

    @property
    def admin_url(self) -> str:
        return self.ctx.prefix + "/admin"

    def get_user_locale(self):
        return get_locale(choose(self.request.headers.get("Accept-Language", ""),
                                 self.ctx.settings.server.default_locale))

    def get_current_user(self):
        # Set by prepare() from a database reader thread (SPEC §12): never read on the loop.
        return None

    @property
    def operator(self) -> str:
        return self.current_user.name if self.current_user else "-"

    async def prepare(self):
        # Never cached: a shared proxy or the back button must not show another
        # operator's data; never framed (clickjacking on the refund button).
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Frame-Options", "DENY")
        self.set_header("Referrer-Policy", "same-origin")
        if self.request.method == "POST" and not self.application.settings.get("xsrf_cookies"):
            self.check_xsrf_cookie()  # an embedding estate may run without xsrf_cookies
        raw = self.get_cookie(sessions.COOKIE)
        if raw:  # the operator it names still exists with the same password
            self.current_user = await self.ctx.db_read(
                sessions.read_value, self.ctx.settings.server.cookie_secret, raw)
        if self.public or self.current_user:
            return
        if self.request.method in ("GET", "HEAD"):
            self.redirect(f"{self.admin_url}/login", status=303)
        else:
            raise tornado.web.HTTPError(403)

    def get_template_namespace(self):
        ns = super().get_template_namespace()
        ns.update(admin=self.admin_url, operator=self.operator, yuan=fen_to_yuan,
                  html_lang=HTML_LANG[self.locale.code], quote=lambda s: quote(str(s), safe=""),
                  bj=self.beijing)
        return ns

    @staticmethod
    def beijing(when) -> str:
        """A naive-UTC datetime as Beijing time, the merchant's clock."""
        if when is None:
            return "-"
        return (when.replace(tzinfo=datetime.timezone.utc).astimezone(BEIJING)
                .strftime("%Y-%m-%d %H:%M:%S"))

    async def audit(self, action: str, outcome: str, out_trade_no: Optional[str] = None,
                    detail: str = "", operator: Optional[str] = None) -> None:
        """One audit row, written on the database writer thread (SPEC §12)."""
        who = operator or self.operator
        try:
            await self.ctx.db_write(audit, who, action, outcome, out_trade_no=out_trade_no,
                                    detail=detail, remote_ip=self.client_ip())
        except Exception as exc:  # the action already happened: its page must still say so
            logger.error("ALERT audit not stored (%s): operator=%s action=%s order=%s "
                         "outcome=%s ip=%s %s", exc, who, action, out_trade_no or "-",
                         outcome, self.client_ip(), detail)

    def write_error(self, status_code, **kwargs):
        exc = kwargs.get("exc_info", (None, None, None))[1]
        title = {403: "Forbidden", 404: "Not found"}.get(status_code, "Error")
        message = title
        if database_busy(exc):  # not free within database.wait_timeout: nothing was written
            status_code, title = 503, "Busy"
            message = "The service is busy; please try again in a moment."
            self.set_status(503)
        try:
            self.render("admin/message.html", title=self._(title), message=self._(message),
                        back=None, status=status_code)
        except Exception:
            logger.exception("console error page failed")
            self.finish(f"{status_code}")

    def _(self, text: str) -> str:
        return self.locale.translate(text)
