"""Helpers for the JSON API tests: a cookie browser with the XSRF header, and the error shape."""

import json

from flow_helpers import Browser

MINI_APPID = "wx4f4bc4dec97d474b"
MINI_SECRET = "tornpay-simulator-miniprogram-secret"  # the simulator refuses real ones
MINI_OVERRIDES = {"wechat": {"miniprogram_appid": MINI_APPID,
                             "miniprogram_secret": MINI_SECRET}}


class ApiBrowser(Browser):
    """A browser front end: cookies, and the X-XSRFToken header from GET /api/session."""

    prefix = "/wxpay"

    async def session(self) -> dict:
        response = await self.get(self.prefix + "/api/session")
        assert response.code == 200, response.body
        return json.loads(response.body)

    async def api(self, method: str, path: str, data=None, xsrf: bool = True, headers=None):
        headers = dict(headers or {})
        if xsrf and "_xsrf" in self.cookies:
            headers["X-XSRFToken"] = self.cookies["_xsrf"]
        body = None if method == "GET" else json.dumps(data if data is not None else {})
        if body is not None:
            headers["Content-Type"] = "application/json"
        response = await self.fetch(self.prefix + "/api" + path, method=method, body=body,
                                    headers=headers)
        return response.code, json.loads(response.body)


def error_code(answer: dict) -> str:
    return answer["error"]["code"]
