"""Response headers on every answer: no framing (clickjacking), no server version banner."""

from typing import Any, Optional

import tornado.web
from tornado.httputil import HTTPHeaders

# No tornpay page (the pay page, the simulator's pages) is ever meant to be
# shown inside someone else's frame: a framed pay button is a clickjacking
# target. Both headers, because older in-app browsers only know the first.
FRAME_HEADERS = (("X-Frame-Options", "DENY"),
                 ("Content-Security-Policy", "frame-ancestors 'none'"))


def apply(headers: HTTPHeaders) -> None:
    """Forbid framing (unless a handler set its own policy) and drop the ``Server`` banner."""
    for name, value in FRAME_HEADERS:
        if name not in headers:
            headers[name] = value
    # "TornadoServer/6.x" tells an attacker which version's bugs to try.
    if "Server" in headers:
        del headers["Server"]


def apply_to(handler: tornado.web.RequestHandler) -> None:
    """The same, from a handler's ``set_default_headers`` (embedded: the estate's app runs it)."""
    for name, value in FRAME_HEADERS:
        handler.set_header(name, value)
    handler.clear_header("Server")


class SecurityHeaders(tornado.web.OutputTransform):
    """An Application transform: every response of the standalone server, 404s and static too."""

    def transform_first_chunk(self, status_code: int, headers: HTTPHeaders, chunk: bytes,
                              finishing: bool):
        apply(headers)
        return status_code, headers, chunk


def xsrf_cookie_kwargs(public_url: str) -> dict:
    """``_xsrf`` cookie flags: never sent cross-site, and only over TLS when served over https."""
    kwargs: dict = {"samesite": "Lax"}
    if public_url.startswith("https://"):
        kwargs["secure"] = True
    return kwargs


def app_settings(settings: Any, transforms: Optional[list] = None) -> dict:
    """Keyword arguments for the standalone ``tornado.web.Application``."""
    return {"transforms": list(transforms or []) + [SecurityHeaders],
            "xsrf_cookie_kwargs": xsrf_cookie_kwargs(settings.server.public_url)}
