"""Access logging that never writes OAuth codes, signatures, keys or cookies."""

import logging
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

access_log = logging.getLogger("tornado.access")

# Query parameters whose values are credentials or one-time secrets.
SCRUB_PARAM_KEYS = ("code", "sign", "paysign", "key", "secret", "token", "state", "openid")
_SCRUB_RE = re.compile("|".join(SCRUB_PARAM_KEYS), re.IGNORECASE)


def scrub_uri(uri: str) -> str:
    """Return ``uri`` with sensitive query values replaced by ``[secret]``."""
    parts = urlsplit(uri)
    if not parts.query:
        return uri
    pairs = [(k, "[secret]" if _SCRUB_RE.search(k) else v)
             for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return urlunsplit(parts._replace(query=urlencode(pairs, safe="[]")))


def log_request(handler) -> None:
    """Tornado ``log_function``: one line per request, scrubbed, level by status."""
    status = handler.get_status()
    if status < 400:
        log = access_log.info
    elif status < 500:
        log = access_log.warning
    else:
        log = access_log.error
    request = handler.request
    log("%d %s %s (%s) %.2fms", status, request.method, scrub_uri(request.uri),
        request.remote_ip, 1000.0 * request.request_time())
