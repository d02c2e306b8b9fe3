"""The snsapi_userinfo consent screen: allow (a code) or refuse (state only, no code)."""

from urllib.parse import parse_qsl, urlencode

from tornado.escape import xhtml_escape as esc

# Shared by the simulator's sign-in pages (they load nothing else).
PAGE_STYLE = (
    "body{margin:0;font:16px/1.5 -apple-system,'PingFang SC',Arial,sans-serif;background:#ededed}"
    ".banner{background:#c00;color:#fff;padding:6px 10px;font-weight:bold;text-align:center}"
    "main{max-width:480px;margin:0 auto;padding:16px}h1{font-size:1.3em}"
    "code{font-size:.85em;overflow-wrap:anywhere}"
)
CONSENT_STYLE = PAGE_STYLE + (
    "a.btn{display:block;text-align:center;padding:12px;margin:10px 0;border-radius:6px;"
    "text-decoration:none;font-size:17px}"
    "#tornpay-sim-allow{background:#07c160;color:#fff}#tornpay-sim-deny{background:#fff;color:#333}"
)


def consent_page(request, appid: str, openid: str) -> str:
    """The page WeChat shows before sharing nickname and avatar (reference §13.1)."""
    base = dict(parse_qsl(request.query, keep_blank_values=True), sim_user=openid)

    def link(choice: str) -> str:
        return esc(request.path + "?" + urlencode(dict(base, sim_consent=choice)))

    return (
        "<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<link rel='icon' href='data:,'>"
        f"<title>授权确认 · Allow access (SIMULATOR)</title><style>{CONSENT_STYLE}</style>"
        "</head><body><div class='banner'>SIMULATOR &middot; 模拟器</div><main>"
        "<h1>申请获取你的昵称、头像 · Requests your nickname and avatar</h1>"
        f"<p>公众号 <code>{esc(appid)}</code> 申请获得以下权限：获得你的公开信息（昵称、头像等）。"
        "<br>This Official Account asks for your public profile (nickname, avatar).</p>"
        f"<p>用户 User: <code>{esc(openid)}</code></p>"
        f"<a class='btn' id='tornpay-sim-allow' href='{link('allow')}'>允许 Allow</a>"
        f"<a class='btn' id='tornpay-sim-deny' href='{link('deny')}'>拒绝 Refuse</a>"
        "</main></body></html>"
    )
