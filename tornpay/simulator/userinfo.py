"""OAuth's JSON side: shared errcodes, /sns/userinfo and /sns/auth (reference §13.5–13.7)."""

import json

import tornado.web

from tornpay.simulator.state import SimulatorError, SimulatorState

ERRMSG = {
    40029: "invalid code", 40163: "code been used", 41008: "missing code",
    40013: "invalid appid", 40125: "invalid appsecret", 40002: "invalid grant_type",
    40001: "invalid credential, access_token is invalid or not latest",
    40003: "invalid openid", 41001: "access_token missing", 48001: "api unauthorized",
}


class SnsApiHandler(tornado.web.RequestHandler):
    """Shared token lookup and WeChat's JSON error shape (errors come with HTTP 200)."""

    def initialize(self, state: SimulatorState) -> None:
        self.state = state

    def token_entry(self):
        token = self.get_query_argument("access_token", "")
        if not token:
            return self._err(41001)
        entry = self.state.tokens.get(token, self.state.now())
        if entry is None:
            return self._err(40001)
        if self.get_query_argument("openid", "") != entry.openid:
            return self._err(40003)
        return entry

    def consume_code(self, name: str):
        """Check appid, secret, grant_type and the code in query arg ``name``; use the code.

        The code's entry, or None after answering WeChat's errcode.
        """
        arg = self.get_query_argument
        appid, code = arg("appid", ""), arg(name, "")
        accounts = self.state.config.accounts
        if appid not in accounts:
            return self._err(40013)
        if arg("secret", "") != accounts[appid]:
            return self._err(40125)
        if arg("grant_type", "") != "authorization_code":
            return self._err(40002)
        if not code:
            return self._err(41008)
        try:
            return self.state.use_code(code, appid)
        except SimulatorError as exc:
            return self._err(int(exc.err_code))

    def _err(self, errcode: int) -> None:
        # Real errmsgs carry a request id suffix; clients must match on errcode.
        self._json({"errcode": errcode, "errmsg": f"{ERRMSG[errcode]}, rid: {self.state.nonce()}"})
        return None

    def _json(self, data: dict) -> None:
        self.set_header("Content-Type", "application/json; encoding=utf-8")
        self.finish(json.dumps(data, ensure_ascii=False))


class UserInfoHandler(SnsApiHandler):
    """GET /sns/userinfo: the profile for a snsapi_userinfo token; 48001 for snsapi_base."""

    def get(self) -> None:
        entry = self.token_entry()
        if entry is None:
            return
        if "snsapi_userinfo" not in entry.scope.split(","):
            return self._err(48001)
        user = self.state.config.user(entry.openid)
        self._json({
            "openid": entry.openid, "nickname": user.name if user else "",
            # Newer WeChat versions return neutral values for these (reference §13.5).
            "sex": 0, "province": "", "city": "", "country": "",
            "headimgurl": "", "privilege": [],
        })


class AuthCheckHandler(SnsApiHandler):
    """GET /sns/auth: is this token valid for this openid."""

    def get(self) -> None:
        if self.token_entry() is not None:
            self._json({"errcode": 0, "errmsg": "ok"})
