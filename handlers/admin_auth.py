"""Console sign-in and sign-out: lockout after repeated failures, a signed expiring session."""

import logging

from tornpay.console import lockout, sessions
from tornpay.console.audit import FAILED, OK, REFUSED
from tornpay.console.passwords import authenticate
from tornpay.handlers.admin_base import ConsoleHandler, admin_enabled

logger = logging.getLogger(__name__)


class LoginHandler(ConsoleHandler):
    """GET the form; POST name and password: 303 to the console, or the form with an error."""

    public = True

    def get(self):
        if self.current_user:
            self.redirect(f"{self.admin_url}/", status=303)
            return
        self.render("admin/login.html", error=None, name="")

    async def post(self):
        name = self.get_body_argument("name", "").strip()[:64]
        password = self.get_body_argument("password", "")
        ip = self.client_ip()
        db = self.ctx  # every database step on the database threads (SPEC §12)
        if await db.db_read(lockout.locked_until, name, ip) is not None:
            # Refused without checking the password, so guessing on stops nothing.
            logger.warning("console: sign-in for %s from %s refused: locked", name, ip)
            await self.audit("login", REFUSED, detail="locked", operator=name or "-")
            self.set_status(429)
            self.render("admin/login.html", name=name,
                        error=self._("Too many failed sign-ins. Try again in 15 minutes."))
            return
        operator = await authenticate(name, password, db.dbx) if name and password else None
        if operator is None:
            await db.db_write(lockout.record_failure, name, ip)
            await self.audit("login", FAILED, detail="wrong name or password",
                             operator=name or "-")
            self.set_status(401)
            self.render("admin/login.html", name=name,
                        error=self._("Wrong name or password."))
            return
        await db.db_write(lockout.clear, name)
        self.set_cookie(sessions.COOKIE, sessions.make_value(
            self.ctx.settings.server.cookie_secret, operator,
            self.ctx.settings.admin.session_minutes),
            httponly=True, samesite="Strict", secure=self.request.protocol == "https",
            path=self.admin_url + "/", expires_days=None)
        await self.audit("login", OK, operator=operator.name)
        self.redirect(f"{self.admin_url}/", status=303)


class RootHandler(ConsoleHandler):
    """``{prefix}/admin`` without the slash: to the console (whose cookie path has one)."""

    public = True

    def get(self):
        self.redirect(f"{self.admin_url}/", status=303)


class LogoutHandler(ConsoleHandler):
    """POST: end the session in this browser (the cookie is cleared)."""

    async def post(self):
        await self.audit("logout", OK)
        self.clear_cookie(sessions.COOKIE, path=self.admin_url + "/")
        self.redirect(f"{self.admin_url}/login", status=303)


enabled = admin_enabled
default_handlers = [
    (r"/admin", RootHandler, "tornpay-admin-root"),
    (r"/admin/login", LoginHandler, "tornpay-admin-login"),
    (r"/admin/logout", LogoutHandler, "tornpay-admin-logout"),
]
