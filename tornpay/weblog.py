"""Access logging and log scrubbing that never write OAuth codes, signatures, keys or cookies."""

import logging
import re
from typing import Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tornpay.logsafe import disarm_alert
from tornpay.sqllog import SQL_LOGGER, is_sql_record, scrub_sql

access_log = logging.getLogger("tornado.access")

SECRET = "[secret]"
# Query parameters whose values are credentials or one-time secrets (matched as
# substrings, case-insensitively: "paySign", "access_token", "app_secret" ...).
SCRUB_PARAM_KEYS = ("code", "sign", "sig", "key", "secret", "token", "state", "openid",
                    "password", "passwd", "ticket", "prepay", "package", "req_info", "session",
                    "cookie", "auth")
_SCRUB_RE = re.compile("|".join(SCRUB_PARAM_KEYS), re.IGNORECASE)
# A value that looks like a key whatever its parameter is called: 32+ characters
# of hex/base64 alphabet (the v2 API key, md5/HMAC signatures, access tokens).
# tornpay's own order numbers (30 characters, "TP" + digits + nonce) stay readable.
_KEYLIKE_RE = re.compile(r"^(?:[A-Fa-f0-9]{32,}|[A-Za-z0-9+/=_-]{33,})$")
# A URL or path with a query string inside free text (Tornado's own warnings).
_URI_IN_TEXT_RE = re.compile(r"(?:https?://[^\s?#\"'<>]*|/[^\s?#\"'<>]*)?\?[^\s\"'<>]+")


# A WeChat XML element inside free text (curl's DEBUG lines print request bodies):
# <sign>..</sign>, <openid><![CDATA[..]]></openid>, <prepay_id>..</prepay_id>.
_XML_ELEMENT_RE = re.compile(r"<([A-Za-z_]\w*)>(<!\[CDATA\[.*?\]\]>|[^<]*)</\1>", re.S)


def _scrub_element(match: "re.Match[str]") -> str:
    tag, value = match.group(1), match.group(2)
    inner = value[9:-3] if value.startswith("<![CDATA[") and value.endswith("]]>") else value
    if inner and _secret_param(tag, inner):
        return f"<{tag}>{SECRET}</{tag}>"
    return match.group(0)


def _secret_param(key: str, value: str) -> bool:
    return bool(_SCRUB_RE.search(key)) or bool(_KEYLIKE_RE.match(value))


def scrub_uri(uri: str) -> str:
    """Return ``uri`` with sensitive query values replaced by ``[secret]`` and no fragment."""
    parts = urlsplit(uri)
    if not parts.query and not parts.fragment:
        return uri
    pairs = [(k, SECRET if v and _secret_param(k, v) else v)
             for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return urlunsplit(parts._replace(query=urlencode(pairs, safe="[]/"), fragment=""))


def scrub_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Scrub every URI with a query and every XML element inside ``text``, and literal secrets."""
    if "?" in text:
        text = _URI_IN_TEXT_RE.sub(lambda m: scrub_uri(m.group(0)), text)
    if "</" in text:
        text = _XML_ELEMENT_RE.sub(_scrub_element, text)
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, SECRET)
    return text


class ScrubFilter(logging.Filter):
    """A logging filter (for a handler or a logger) that scrubs each record's message.

    Put it on a *handler* to cover every logger that propagates to it.
    ``secrets`` are literal values never to print (``settings.secret_values()``).
    """

    def __init__(self, secrets: Iterable[str] = ()):
        super().__init__()
        self.secrets: list = []
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Scrub these too (a second Context's secrets join the first one's)."""
        # Longest first, so a secret containing another is replaced whole.
        self.secrets = sorted({s for s in list(self.secrets) + list(secrets) if s and len(s) >= 6},
                              key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        # A record passes a logger's filter and then the handler's: scrubbed
        # once for the same secrets (a filter with other secrets scrubs again).
        done = getattr(record, "tornpay_scrubbed", None)
        if done is not None and (done is self.secrets or done == self.secrets):
            return True
        record.tornpay_scrubbed = self.secrets
        if is_sql_record(record):
            # peewee's (sql, params): URI scrubbing would garble the statement's "?".
            record.msg, record.args = scrub_sql(record.msg, self.secrets), None
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is the logging module's to report
            return True
        scrubbed = scrub_text(message, self.secrets)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        if record.exc_info and not record.exc_text:
            # An exception's text can quote a URL or a value too: format it
            # once here, scrubbed; formatters print exc_text when it is set.
            text = _EXC_FORMATTER.formatException(record.exc_info)
            record.exc_text = scrub_text(text, self.secrets)
        return True


_EXC_FORMATTER = logging.Formatter()


# Tornado's own loggers print request URIs ("400 GET /cb?code=... (ip): ...",
# "Uncaught exception GET /cb?code=...").
# At DEBUG the curl client logs every URL it fetches (the OAuth token call
# carries the AppSecret and the code in its query).
TORNADO_LOGGERS = ("tornado.access", "tornado.application", "tornado.general",
                   "tornado.curl_httpclient")
# At DEBUG peewee logs each statement with its parameters (the signed
# unified-order XML, openids, prepay ids): scrubbed on the logger itself.
SCRUBBED_LOGGERS = TORNADO_LOGGERS + (SQL_LOGGER,)


def install_scrub_filter(secrets: Iterable[str] = (), loggers: Iterable[str] = SCRUBBED_LOGGERS):
    """Put one :class:`ScrubFilter` on each of ``loggers``, MERGING ``secrets``; return it.

    Installing again never drops secrets an earlier Context registered.
    """
    secrets = list(secrets)
    for name in loggers:
        logger = logging.getLogger(name)
        for old in [f for f in logger.filters if isinstance(f, ScrubFilter)]:
            secrets += old.secrets
            logger.removeFilter(old)
    flt = ScrubFilter(secrets)
    for name in loggers:
        logging.getLogger(name).addFilter(flt)
    return flt


def log_request(handler) -> None:
    """Tornado ``log_function``: one line per request, scrubbed, level by status."""
    status = handler.get_status()
    if status < 400 and getattr(handler, "logged_own_line", False):
        return  # e.g. an accepted notify: "order X: PAID via notify" is its one line
    if status < 400:
        log = access_log.info
    elif status < 500:
        log = access_log.warning
    else:
        log = access_log.error
    request = handler.request
    # The path is the client's text: it may not spell ALERT (tornpay.logsafe).
    log("%d %s %s (%s) %.2fms", status, request.method, disarm_alert(scrub_uri(request.uri)),
        request.remote_ip, 1000.0 * request.request_time())
