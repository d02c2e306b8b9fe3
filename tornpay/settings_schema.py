"""The settings schema: every key with its default, type, one-line help and range check."""

import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

REQUIRED = object()  # marker: a credential with no default


@dataclass(frozen=True)
class Setting:
    """One key: default, type, one-line help, secret flag and an optional range check."""

    default: Any
    type: type
    help: str
    secret: bool = False
    check: Optional[Callable[[Any], Optional[str]]] = None


def _min(n):
    return lambda v: None if v >= n else f"must be >= {n}"


def _one_of(*choices):
    return lambda v: None if v in choices else f"must be one of {', '.join(choices)}"


def _url(v):
    return None if v.startswith(("http://", "https://")) else "must start with http:// or https://"


def _path_prefix(v):
    if v == "" or (v.startswith("/") and not v.endswith("/")):
        return None
    return "must be empty or start with '/' and not end with '/'"


def _trade_types(v):
    ok = v and all(t in ("JSAPI", "NATIVE", "MWEB") for t in v)
    return None if ok else "must be a non-empty list of JSAPI, NATIVE, MWEB"


def _bare_hosts(v):
    ok = all(isinstance(d, str) and d and not any(c in d for c in "/:@ ") for d in v)
    return None if ok else "must be bare host names (no scheme, port or path)"


def _fetch_at(v):
    # WeChat makes the bill of day D from 09:00 on D+1; fetch after 10:00 (reference §10).
    if re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", v) and v >= "10:00":
        return None
    return "must be HH:MM (Beijing time) between 10:00 and 23:59"


def _port(v):
    return None if 0 <= v <= 65535 else "must be 0..65535"


def _non_empty(v):
    return None if v.strip() else "must not be empty"


# Why 32 and 8: 32 random hex characters carry 128 bits; a value with fewer
# than 8 different characters ("x" * 32, "changeme" * 4) is a placeholder
# someone forgot, not a secret (secrets.token_hex(16) has about 14).
COOKIE_SECRET_MIN_CHARS, COOKIE_SECRET_MIN_DISTINCT = 32, 8


def _strong_secret(v):
    if len(v) < COOKIE_SECRET_MIN_CHARS:
        return f"must be at least {COOKIE_SECRET_MIN_CHARS} characters"
    if len(set(v)) < COOKIE_SECRET_MIN_DISTINCT:
        return (f"must use at least {COOKIE_SECRET_MIN_DISTINCT} different characters (a "
                f"random value, e.g. python -c 'import secrets; print(secrets.token_hex(32))')")
    return None


def _success_url(v):
    import string

    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(v) if f is not None}
    except ValueError as exc:
        return f"is not a valid template ({exc})"
    unknown = fields - {"prefix", "out_trade_no"}
    return f"may only use {{prefix}} and {{out_trade_no}}, not {{{sorted(unknown)[0]}}}" \
        if unknown else None


SCHEMA: Mapping[str, Mapping[str, Setting]] = {
    "server": {
        "address": Setting("127.0.0.1", str, "interface to listen on"),
        "port": Setting(8888, int, "TCP port to listen on", check=_port),
        "public_url": Setting("http://127.0.0.1:8888", str,
                              "public base URL: redirect_uri and notify_url are built on it",
                              check=_url),
        "prefix": Setting("/wxpay", str, "URL prefix of every tornpay route", check=_path_prefix),
        "cookie_secret": Setting(REQUIRED, str, "signs the OAuth state and the openid cookie",
                                 secret=True, check=_strong_secret),
        "xheaders": Setting(True, bool, "trust X-Real-IP / X-Forwarded-For from nginx"),
        "shop_page": Setting(True, bool, "serve the demo shop page at /"),
        "debug": Setting(False, bool,
                         "Tornado debug mode (tracebacks in pages): never in production"),
        "log_level": Setting("INFO", str, "logging level",
                             check=_one_of("DEBUG", "INFO", "WARNING", "ERROR")),
        "log_format": Setting("text", str, "log line format: text (key=value) or json",
                              check=_one_of("text", "json")),
        "default_locale": Setting("zh_CN", str,
                                  "page language when Accept-Language names none we have",
                                  check=_one_of("zh_CN", "en_US")),
        "max_body_bytes": Setting(65536, int, "largest request body read (413/400 and close "
                                  "above it; /notify has its own 64 KiB rule)", check=_min(1024)),
        "max_header_bytes": Setting(16384, int, "largest request line + headers",
                                    check=_min(1024)),
        "header_timeout_seconds": Setting(30.0, float, "a connection must send a complete "
                                          "request head within this (idle keep-alive included)",
                                          check=_min(0.1)),
        "body_timeout_seconds": Setting(30.0, float, "a request body must arrive within this",
                                        check=_min(0.1)),
        "max_connections": Setting(1000, int, "connections served at once; more are closed at "
                                   "once (lowered to fit the open-files limit)", check=_min(1)),
    },
    "wechat": {
        "appid": Setting(REQUIRED, str, "Official Account appid", check=_non_empty),
        "app_secret": Setting(REQUIRED, str, "Official Account AppSecret (OAuth)", secret=True,
                              check=_non_empty),
        "mch_id": Setting(REQUIRED, str, "merchant id", check=_non_empty),
        "api_key": Setting(REQUIRED, str, "API v2 key used to sign (32 characters)", secret=True,
                           check=lambda v: None if len(v) == 32 else "must be 32 characters"),
        "sign_type": Setting("MD5", str, "signature type of new orders",
                             check=_one_of("MD5", "HMAC-SHA256")),
        "pay_api_base": Setting("https://api.mch.weixin.qq.com", str, "WeChat Pay API base URL",
                                check=_url),
        "oauth_authorize_url": Setting("https://open.weixin.qq.com/connect/oauth2/authorize", str,
                                       "OAuth authorize page URL", check=_url),
        "oauth_api_base": Setting("https://api.weixin.qq.com", str, "OAuth API base URL",
                                  check=_url),
        "cert_file": Setting("", str, "client certificate (PEM) for refunds"),
        "key_file": Setting("", str, "client certificate key (PEM) for refunds", secret=True),
        "timeout": Setting(10.0, float, "seconds per upstream call", check=_min(0.1)),
        "max_concurrent_calls": Setting(384, int, "WeChat calls in flight at once; more wait "
                                        "their turn (checkouts/s x WeChat latency)",
                                        check=_min(1)),
        # API v3 (SPEC §10); checked together at start by tornpay.gateway.v3settings.
        "api_version": Setting("v2", str, "WeChat Pay API generation of new orders",
                               check=_one_of("v2", "v3")),
        "apiv3_key": Setting("", str, "APIv3 key: decrypts v3 notifies and certificates",
                             secret=True),
        "private_key_file": Setting("", str, "merchant API private key (PEM) signing v3 calls"),
        "cert_serial_no": Setting("", str, "serial of the merchant API certificate (v3)"),
        "wechatpay_public_key_file": Setting("", str,
                                             "WeChat Pay public key (PEM): public-key mode"),
        "wechatpay_public_key_id": Setting("", str, "its id PUB_KEY_ID_...; both empty: "
                                                    "platform-certificate mode"),
        "miniprogram_appid": Setting("", str, "Mini Program appid for Mini Program payments "
                                     "(jscode2session and unified order); empty = off"),
        "miniprogram_secret": Setting("", str, "Mini Program AppSecret (jscode2session)",
                                      secret=True),
    },
    "database": {
        "url": Setting("sqlite:///tornpay.db", str,
                       "peewee db_url: sqlite:///FILE or postgresql://..."),
        "check_interval_seconds": Setting(5.0, float, "how often the server checks that the "
                                          "database can still be written", check=_min(0.05)),
        "wait_timeout": Setting(3.0, float, "longest wait for the database before a notify "
                                "answers FAIL and a page asks to try again (seconds)",
                                check=_min(0.05)),
        "pool_size": Setting(16, int, "PostgreSQL: writer connections (SQLite has one writer)",
                             check=_min(1)),
    },
    "orders": {
        "expire_minutes": Setting(30, int, "time_expire sent with the unified order",
                                  check=_min(1)),
        "reconcile_after_seconds": Setting(60, float, "query a pending order not notified by then",
                                           check=_min(0)),
        "reconcile_interval_seconds": Setting(10.0, float, "how often the reconciler wakes",
                                              check=_min(0.01)),
        "min_close_age_seconds": Setting(300, float, "WeChat refuses closeorder on younger orders",
                                         check=_min(0)),
        "unified_order_attempts": Setting(3, int,
                                          "tries of one unified order on timeout/SYSTEMERROR",
                                          check=_min(1)),
        "max_open_per_payer": Setting(5, int, "unpaid, unexpired orders one payer may have "
                                      "(0: no limit); more get a 429 page", check=_min(0)),
        "max_open_per_ip": Setting(50, int, "unpaid, unexpired orders from one client address "
                                   "(0: no limit); more get a 429 page", check=_min(0)),
        "refused_notify_rows": Setting(10000, int, "refused notifies kept in the database "
                                       "(older ones are deleted)", check=_min(10)),
        "refused_notify_window_seconds": Setting(60.0, float, "repeats of one refusal (sender, "
                                                 "reason) within this are counted, not logged "
                                                 "one by one", check=_min(0)),
        "reuse_open_order": Setting(True, bool, "a payer's still-open order for the same "
                                    "product is offered again instead of a new one"),
        "trade_types": Setting(["JSAPI", "NATIVE", "MWEB"], list,
                               "trade types this merchant may use (SPEC §9)",
                               check=_trade_types),
        "h5_wap_url": Setting("", str, "MWEB scene_info.h5_info.wap_url; empty = public_url"),
        "h5_wap_name": Setting("", str,
                               "MWEB scene_info.h5_info.wap_name; empty = public_url's host"),
    },
    "deliveries": {
        "timeout_seconds": Setting(30.0, float, "one hook call", check=_min(0.01)),
        "first_retry_seconds": Setting(5.0, float, "first retry delay, then doubling",
                                       check=_min(0)),
        "max_retry_seconds": Setting(3600.0, float, "longest retry delay", check=_min(0)),
        "max_attempts": Setting(20, int, "then the delivery is parked as failed", check=_min(1)),
        "poll_interval_seconds": Setting(1.0, float, "how often the dispatcher looks for due work",
                                         check=_min(0.01)),
        "heartbeat_seconds": Setting(5.0, float, "how often a serving process records that it "
                                     "is alive (12 missed beats: dead)", check=_min(0.01)),
        "forget_plugin_after_hours": Setting(168.0, float, "a plugin no process has loaded for "
                                             "this long gets no more deliveries; its pending "
                                             "ones are parked as failed", check=_min(0.01)),
    },
    "simulator": {
        "enabled": Setting(False, bool, "mount the embedded WeChat simulator under /_sim "
                           "(the shipped settings.yaml turns it on)"),
        "pay_directories": Setting([], list, "registered JSAPI directories; empty = pay page dir"),
        "notify_time_scale": Setting(1.0, float, "multiplies WeChat's notify retry schedule",
                                     check=_min(0)),
        "close_min_age_seconds": Setting(300.0, float, "simulated closeorder age rule",
                                         check=_min(0)),
        "require_client_cert": Setting(True, bool,
                                       "refunds need a matching wechat.cert_file/key_file"),
        "oauth_domains": Setting([], list,
                                 "OAuth web-authorization domains; empty = public_url's host",
                                 check=_bare_hosts),
        "public_url": Setting("", str, "simulator's public base URL; empty = public_url + /_sim",
                              check=lambda v: _url(v) if v else None),
        "allow_real_credentials": Setting(
            False, bool, "TESTS ONLY, NEVER IN PRODUCTION: start the simulator although the "
            "WeChat credentials are not the shipped test values (anyone can mark orders paid)"),
        "h5_domains": Setting([], list, "registered H5 (MWEB) domains; empty = public_url's host",
                             check=_bare_hosts),
    },
    "catalog": {
        "products": Setting({}, dict, "products of the bundled catalog plugin"),
    },
    "admin": {
        "enabled": Setting(False, bool, "serve the operator console at {prefix}/admin/"),
        "session_minutes": Setting(60, int, "a console session ends this long after sign-in",
                                   check=lambda v: None if 1 <= v <= 1440
                                   else "must be 1..1440 (at most a day)"),
    },
    "bills": {
        "enabled": Setting(False, bool, "fetch and reconcile WeChat's daily bill"),
        "fetch_at": Setting("10:30", str, "Beijing time (HH:MM, 10:00 or later) to fetch the "
                            "bill of the day before", check=_fetch_at),
    },
}

# Top-level keys that are not sections.
TOP_LEVEL: Mapping[str, Setting] = {
    "plugins": Setting(["tornpay.plugins.catalog", "tornpay.plugins.booking"], list,
                       "plugin modules (dotted names), loaded in order"),
    "success_url": Setting("{prefix}/orders/{out_trade_no}/result", str,
                           "where the pay page goes once the order is PAID ({prefix} is "
                           "server.prefix)", check=_success_url),
    "entry_point_plugins": Setting(["*"], list,
                                   "installed entry-point plugins to load: ['*'] all, [] none, "
                                   "or their names"),
}

# The values shipped in settings.yaml: fine for the simulator, refused for real WeChat.
SHIPPED_TEST_VALUES = {
    ("wechat", "api_key"): "192006250b4c09247ec02edce69f6a2d",
    ("wechat", "app_secret"): "tornpay-simulator-app-secret",
    ("server", "cookie_secret"): "tornpay-demo-cookie-secret-change-me",
}
# The WeChat credentials shipped in settings.yaml: with the simulator on, every one
# of them must still be this (SPEC §3: the simulator and real money never meet).
SHIPPED_WECHAT_CREDENTIALS = {
    "api_key": SHIPPED_TEST_VALUES[("wechat", "api_key")],
    "app_secret": SHIPPED_TEST_VALUES[("wechat", "app_secret")],
    "mch_id": "10000100",
    # Empty (no Mini Program) or this test value: the simulator's Mini Program secret.
    "miniprogram_secret": "tornpay-simulator-miniprogram-secret",
}
