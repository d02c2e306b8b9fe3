"""WeChat Official Account web authorization: the authorize URL and the code -> openid exchange."""

import logging
import time
from urllib.parse import quote, urlencode

from tornado.httpclient import HTTPRequest

from .client import wechat_urls
from .errors import OAuthError, ProtocolError, TransportError
from .jsonobject import json_object
from tornpay.weblog import install_scrub_filter

logger = logging.getLogger(__name__)

# Tornado's curl client logs every URL at DEBUG, and the access log of an in-process
# simulator logs request URIs: both would show the app secret of the token URL.
# The one scrub filter (tornpay.weblog) hides it; installed here too, merging, so a
# client made outside a Context is covered as well.
_URL_LOGGERS = ("tornado.curl_httpclient", "tornado.access")


class SnsClient:
    """An appid and its AppSecret on WeChat's JSON ``sns`` API (OAuth, Mini Program login)."""

    def __init__(self, appid: str, app_secret: str, api_base: str, http_client,
                 timeout: float = 10):
        self.appid = appid
        self._app_secret = app_secret
        self.api_base = api_base.rstrip("/")
        self.http_client = http_client
        self.timeout = timeout
        install_scrub_filter([app_secret], loggers=_URL_LOGGERS)

    def __repr__(self) -> str:  # never show the secret
        return f"{type(self).__name__}(appid={self.appid!r}, api_base={self.api_base!r})"


class OAuthClient(SnsClient):
    """Builds authorize links and exchanges codes, on an injected (Curl)AsyncHTTPClient."""

    def __init__(
        self,
        appid: str,
        app_secret: str,
        authorize_url: str,
        api_base: str,
        http_client,
        timeout: float = 10,
    ):
        super().__init__(appid, app_secret, api_base, http_client, timeout)
        self.authorize_base = authorize_url

    @classmethod
    def from_settings(cls, settings, http_client):
        urls = wechat_urls(settings)
        return cls(
            appid=settings.wechat.appid,
            app_secret=settings.wechat.app_secret,
            authorize_url=urls["oauth_authorize_url"],
            api_base=urls["oauth_api_base"],
            http_client=http_client,
            timeout=settings.wechat.timeout,
        )

    def authorize_url(self, redirect_uri: str, state: str, scope: str = "snsapi_base") -> str:
        """The link to send the browser to; parameter order as WeChat validates it (§13.1)."""
        return (
            f"{self.authorize_base}?appid={quote(self.appid, safe='')}"
            f"&redirect_uri={quote(redirect_uri, safe='')}"
            f"&response_type=code&scope={quote(scope, safe='')}"
            f"&state={quote(state, safe='')}#wechat_redirect"
        )

    async def exchange_code(self, code: str) -> dict:
        """Exchange a single-use ``code`` for ``{openid, access_token, ...}``.

        Never retried here: a code works once, so a blind retry after a slow
        reply turns into 40163 (pitfall P11). The URL holds the app secret and
        is never logged.
        """
        query = urlencode(
            [
                ("appid", self.appid),
                ("secret", self._app_secret),
                ("code", code),
                ("grant_type", "authorization_code"),
            ]
        )
        data = await fetch_sns_json(self.http_client, f"{self.api_base}/sns/oauth2/access_token?"
                                    f"{query}", self.timeout, "OAuth token exchange")
        if not isinstance(data.get("openid"), str) or not data["openid"]:
            raise ProtocolError("OAuth reply has no openid")
        return data


async def fetch_sns_json(http_client, url: str, timeout: float, what: str) -> dict:
    """GET one of WeChat's JSON ``sns`` APIs once; the dict, or a typed error (errcode).

    The URL holds a secret and a single-use code: it is never logged, and
    errors name the exception type only (some clients put the URL in the text).
    """
    request = HTTPRequest(url, method="GET", request_timeout=timeout, connect_timeout=timeout,
                          follow_redirects=False)
    started = time.monotonic()
    try:
        response = await http_client.fetch(request, raise_error=False)
    except Exception as exc:
        raise TransportError(f"{what} failed: {type(exc).__name__}") from None
    elapsed = time.monotonic() - started
    if response.code == 599:
        raise TransportError(f"{what} failed: network error or timeout")
    if not 200 <= response.code < 300:
        raise TransportError(f"{what}: HTTP {response.code}", response.code)
    data = json_object(response.body or b"", f"{what} reply", ProtocolError)
    errcode = data.get("errcode")
    if errcode not in (None, 0):
        logger.warning("%s errcode=%s elapsed=%.3fs", what, errcode, elapsed)
        raise OAuthError(_as_int(errcode), str(data.get("errmsg", "")))
    logger.info("%s ok elapsed=%.3fs", what, elapsed)
    return data


def _as_int(value: object) -> int:
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return -1
