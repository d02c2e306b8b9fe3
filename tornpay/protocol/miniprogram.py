"""WeChat Mini Program sign-in: ``jscode2session`` turns a ``wx.login`` code into an openid."""

from typing import Optional
from urllib.parse import urlencode

from .client import wechat_urls
from .errors import ProtocolError
from .oauth import SnsClient, fetch_sns_json


class MiniProgramClient(SnsClient):
    """One Mini Program's ``jscode2session`` on an injected (Curl)AsyncHTTPClient."""

    @classmethod
    def from_settings(cls, settings, http_client) -> Optional["MiniProgramClient"]:
        """The client for ``wechat.miniprogram_appid``, or None when Mini Programs are off."""
        wechat = settings.wechat
        if not wechat.miniprogram_appid:
            return None
        return cls(wechat.miniprogram_appid, wechat.miniprogram_secret,
                   wechat_urls(settings)["oauth_api_base"], http_client, wechat.timeout)

    async def code_to_openid(self, code: str) -> str:
        """Exchange a single-use ``wx.login`` code for the payer's openid under this appid.

        The reply's ``session_key`` is dropped here, unread: tornpay needs only
        the openid, and a session key must never be stored or logged. Never
        retried (a code works once). Raises OAuthError with WeChat's errcode
        (40029 invalid code, 40163 already used, 45011 rate limit, ...).
        """
        query = urlencode([("appid", self.appid), ("secret", self._app_secret),
                           ("js_code", code), ("grant_type", "authorization_code")])
        data = await fetch_sns_json(self.http_client, f"{self.api_base}/sns/jscode2session?"
                                    f"{query}", self.timeout, "Mini Program jscode2session")
        openid = data.get("openid")
        data.clear()  # the session_key goes no further than this frame
        if not isinstance(openid, str) or not openid:
            raise ProtocolError("jscode2session reply has no openid")
        return openid
