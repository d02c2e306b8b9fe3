"""The simulator's phone: /scan (a test user scans a NATIVE code) and checkmweb (H5 cashier)."""

import logging
import os
from urllib.parse import urlsplit

import tornado.web

from tornpay.i18n import HTML_LANG, choose, fen_to_yuan, get_locale
from tornpay.pagekit import PageLoader
from tornpay.simulator import h5native
from tornpay.simulator.h5native import PageRefusal
from tornpay.simulator.state import SimulatorError, SimulatorState

logger = logging.getLogger(__name__)

TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")


def page_locale(request):
    """The simulator page's language: Accept-Language, else Chinese (WeChat's own)."""
    return get_locale(choose(request.headers.get("Accept-Language", "")))


class PhonePage(tornado.web.RequestHandler):
    """A page of WeChat's app, in Chinese or English like the merchant's pages."""

    def initialize(self, state: SimulatorState) -> None:
        self.state = state

    def get_template_path(self):
        return TEMPLATES

    def create_template_loader(self, template_path):
        return PageLoader(template_path)  # the head it shares with tornpay's other pages

    def get_user_locale(self):
        return page_locale(self.request)

    def get_template_namespace(self):
        ns = super().get_template_namespace()
        ns.update(html_lang=HTML_LANG[self.locale.code], yuan=fen_to_yuan,
                  users=self.state.config.users)
        return ns

    def user(self) -> str:
        openid = self.get_argument("user", "")
        if self.state.config.user(openid) is None:
            openid = self.state.config.users[0].openid
        return openid

    def refuse(self, refusal: PageRefusal) -> None:
        # WeChat answers these with an ordinary 200 page showing the text (addendum §8.3).
        logger.info("simulator: %s refused: %s", self.request.path, refusal.text)
        self.render("sim_refusal.html", text=refusal.text, code=refusal.code)


class ScanHandler(PhonePage):
    """GET: paste or pick a code_url, then the cashier; POST action=pay|cancel."""

    def get(self) -> None:
        code_url = self.get_query_argument("code_url", "")
        if not code_url:
            self.render("sim_scan.html", codes=h5native.open_codes(self.state))
            return
        try:
            order = h5native.scan(self.state, code_url, self.user())
        except PageRefusal as refusal:
            return self.refuse(refusal)
        self.render("sim_cashier.html", order=order, action=self.request.path,
                    hidden={"code_url": code_url, "user": self.user()}, leave=None)

    def post(self) -> None:
        code_url = self.get_body_argument("code_url", "")
        try:
            order = h5native.scan(self.state, code_url, self.user())
            if self.get_body_argument("action", "") == "pay":
                order.openid = self.user()
                self.state.pay(order)
                return self.render("sim_done.html", paid=True, order=order)
        except PageRefusal as refusal:
            return self.refuse(refusal)
        except SimulatorError as exc:
            return self.refuse(PageRefusal(exc.err_code_des))
        self.render("sim_done.html", paid=False, order=order)


class CheckMwebHandler(PhonePage):
    """WeChat's H5 intermediate page: checks, then Pay or Cancel, then back to redirect_url."""

    def _order(self, args):
        domains = h5native.h5_domains_of(self.state.config, self.request.host_name)
        return h5native.check_mweb(
            self.state, domains, args("prepay_id", ""), args("package", ""),
            user_agent=self.request.headers.get("User-Agent", ""),
            referer=self.request.headers.get("Referer", ""),
            redirect_url=args("redirect_url", ""), raw_query=self.request.query,
            client_ip=self.request.remote_ip or "")

    def get(self) -> None:
        try:
            order = self._order(self.get_query_argument)
        except PageRefusal as refusal:
            return self.refuse(refusal)
        hidden = {name: self.get_query_argument(name, "")
                  for name in ("prepay_id", "package", "redirect_url")}
        hidden["back"] = self.back_url(hidden["redirect_url"])
        self.render("sim_cashier.html", order=order, action=self.request.path, hidden=hidden,
                    leave=hidden["back"])

    def post(self) -> None:
        args = self.get_body_argument
        back = args("redirect_url", "") or args("back", "")
        domains = h5native.h5_domains_of(self.state.config, self.request.host_name)
        if urlsplit(back).scheme not in ("http", "https") or \
                urlsplit(back).hostname not in domains:
            back = ""  # only ever back to a registered H5 domain, as checked on GET
        prepay_id = args("prepay_id", "")
        launch = h5native.book_of(self.state).mweb.get(prepay_id)
        order = self.state.orders.get(launch.key) if launch else None
        if order is None or launch.package != args("package", ""):
            return self.refuse(PageRefusal(*h5native.MWEB_EXPIRED))
        if args("action", "") == "pay":
            try:
                order.openid = self.user()
                self.state.pay(order)
            except SimulatorError as exc:
                return self.refuse(PageRefusal(exc.err_code_des))
        # WeChat sends the payer back after paying or cancelling alike.
        self.redirect(back or "/", status=302)

    def back_url(self, redirect_url: str) -> str:
        """The decoded redirect_url, else the page that launched the payment (its Referer)."""
        if redirect_url and urlsplit(redirect_url).scheme in ("http", "https"):
            return redirect_url
        return self.request.headers.get("Referer", "")
