"""Official Account web authorization: the authorize page (pick a test user) and access_token."""

import logging
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import tornado.web
from tornado.escape import xhtml_escape

from tornpay.i18n import HTML_LANG
from tornpay.simulator.consent import PAGE_STYLE, consent_page
from tornpay.simulator.oauthtokens import TOKEN_TTL, AccessToken
from tornpay.simulator.phonepages import page_locale
from tornpay.simulator.state import SimulatorState
from tornpay.simulator.userinfo import SnsApiHandler

logger = logging.getLogger(__name__)

SCOPES = ("snsapi_base", "snsapi_userinfo")


def append_query(url: str, params: dict) -> str:
    """Add params to url's query with '?' or '&' as needed, keeping any fragment."""
    parts = urlsplit(url)
    extra = urlencode(params)
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


# Inline and small: the page runs in a phone's in-app browser and loads nothing else.
AUTHORIZE_STYLE = (
    PAGE_STYLE + "ul{list-style:none;padding:0}"
    "li{background:#fff;border-radius:8px;margin:8px 0;padding:12px 14px}"
    "li a{color:#07c160;font-weight:600;text-decoration:none;font-size:1.1em}"
    "li small{display:block;color:#888;overflow-wrap:anywhere}"
)


class AuthorizeHandler(tornado.web.RequestHandler):
    """GET shows the test users; GET with `sim_user` (or oauth_auto_user) redirects with a code."""

    def initialize(self, state: SimulatorState) -> None:
        self.state = state

    def get(self) -> None:
        appid = self.get_query_argument("appid", "")
        redirect_uri = self.get_query_argument("redirect_uri", "")
        scope = self.get_query_argument("scope", "")
        if not appid:
            return self._error(10012, "appid参数为空")
        if appid not in self.state.config.accounts:
            return self._error(40013, "invalid appid")
        if not redirect_uri:
            return self._error(10011, "redirect_uri参数为空")
        parts = urlsplit(redirect_uri)
        if parts.scheme not in ("http", "https"):
            return self._error(10003, "redirect_uri参数错误")
        if (parts.hostname or "").lower() not in self.state.config.authorization_domains():
            # Only the configured web-authorization domain, exactly (reference §13.1).
            return self._error(10003, "redirect_uri域名与后台配置不一致")
        if self.get_query_argument("response_type", "") != "code":
            return self._error(10003, "response_type参数错误")
        if not scope:
            return self._error(10010, "scope参数为空")
        if scope not in SCOPES:
            return self._error(10005, "scope参数错误或没有scope权限")
        auto = self.state.config.oauth_auto_user
        chosen = self.get_query_argument("sim_user", "") or auto
        if not chosen:
            return self._page(appid, scope)
        if self.state.config.user(chosen) is None:
            return self._error(40003, "invalid openid")
        # snsapi_base is silent; snsapi_userinfo asks first (oauth_auto_user agrees at once).
        consent = self.get_query_argument("sim_consent", "allow" if auto else "")
        if scope == "snsapi_userinfo" and consent not in ("allow", "deny"):
            self.set_header("Content-Type", "text/html; charset=utf-8")
            return self.finish(consent_page(self.request, appid, chosen))
        if scope == "snsapi_userinfo" and consent == "deny":
            # Refused: back to the merchant with state and no code (reference §13.2).
            return self._back(redirect_uri, {})
        code = self.state.issue_code(appid, chosen, scope)
        logger.info("simulator: OAuth code issued for appid %s", appid)
        self._back(redirect_uri, {"code": code})

    def _back(self, redirect_uri: str, params: dict) -> None:
        state_arg = self.get_query_argument("state", None)
        if state_arg is not None:
            params["state"] = state_arg
        self.redirect(append_query(redirect_uri, params))

    def _page(self, appid: str, scope: str) -> None:
        base = dict(parse_qsl(self.request.query, keep_blank_values=True))
        items = []
        for user in self.state.config.users:
            href = self.request.path + "?" + urlencode(dict(base, sim_user=user.openid))
            items.append(
                f'<li><a class="tornpay-sim-user" data-openid="{xhtml_escape(user.openid)}" '
                f'href="{xhtml_escape(href)}">{xhtml_escape(user.name)}</a> '
                f'<small>{xhtml_escape(user.openid)}</small></li>'
            )
        locale = page_locale(self.request)
        _ = locale.translate
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(
            f"<!doctype html><html lang='{HTML_LANG[locale.code]}'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            "<link rel='icon' href='data:,'>"
            f"<title>微信授权 (SIMULATOR)</title><style>{AUTHORIZE_STYLE}</style>"
            f"</head><body><div class='banner'>SIMULATOR &middot; {_('WeChat sign-in')}</div>"
            f"<main><h1>{_('Sign in with WeChat')}</h1><p>"
            + _("App %(appid)s asks for %(scope)s. Choose a test user:") % {
                "appid": f"<code>{xhtml_escape(appid)}</code>",
                "scope": f"<code>{xhtml_escape(scope)}</code>"} + "</p>"
            f"<ul>{''.join(items)}</ul></main></body></html>"
        )

    def _error(self, code: int, message: str) -> None:
        self.set_status(400)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(f"<!doctype html><html><body><div>SIMULATOR</div><h1>{code}</h1>"
                    f"<p class='error'>{xhtml_escape(message)}</p></body></html>")


class AccessTokenHandler(SnsApiHandler):
    """GET /sns/oauth2/access_token: code -> openid, with WeChat's errcodes (HTTP 200)."""

    def get(self) -> None:
        entry = self.consume_code("code")
        if entry is None:
            return
        token = AccessToken("SIMACCESS" + self.state.new_code(), entry.appid, entry.openid,
                            entry.scope, self.state.now())
        self.state.tokens.add(token)
        self._json({
            "access_token": token.token, "expires_in": TOKEN_TTL,
            "refresh_token": "SIMREFRESH" + self.state.new_code(), "openid": entry.openid,
            "scope": entry.scope,
        })
