"""Settings: a declared schema, YAML + ``TORNPAY_<SECTION>_<KEY>`` env overrides, masking."""

import os
import types
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

import yaml

REQUIRED = object()  # marker: a credential with no default


class SettingsError(Exception):
    """A settings problem, as one line that names the key."""


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


def _port(v):
    return None if 0 <= v <= 65535 else "must be 0..65535"


SCHEMA: Mapping[str, Mapping[str, Setting]] = {
    "server": {
        "address": Setting("127.0.0.1", str, "interface to listen on"),
        "port": Setting(8888, int, "TCP port to listen on", check=_port),
        "public_url": Setting("http://127.0.0.1:8888", str,
                              "public base URL: redirect_uri and notify_url are built on it",
                              check=_url),
        "prefix": Setting("/wxpay", str, "URL prefix of every tornpay route", check=_path_prefix),
        "cookie_secret": Setting(REQUIRED, str, "signs the OAuth state and the openid cookie",
                                 secret=True, check=lambda v: None if len(v) >= 16
                                 else "must be at least 16 characters"),
        "xheaders": Setting(True, bool, "trust X-Real-IP / X-Forwarded-For from nginx"),
        "shop_page": Setting(True, bool, "serve the demo shop page at /"),
        "debug": Setting(False, bool,
                         "Tornado debug mode (tracebacks in pages): never in production"),
        "log_level": Setting("INFO", str, "logging level",
                             check=_one_of("DEBUG", "INFO", "WARNING", "ERROR")),
        "log_format": Setting("text", str, "log line format: text (key=value) or json",
                              check=_one_of("text", "json")),
    },
    "wechat": {
        "appid": Setting(REQUIRED, str, "Official Account appid"),
        "app_secret": Setting(REQUIRED, str, "Official Account AppSecret (OAuth)", secret=True),
        "mch_id": Setting(REQUIRED, str, "merchant id"),
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
    },
    "database": {
        "url": Setting("sqlite:///tornpay.db", str,
                       "peewee db_url: sqlite:///FILE or postgresql://..."),
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
    },
    "deliveries": {
        "timeout_seconds": Setting(30.0, float, "one hook call", check=_min(0.01)),
        "first_retry_seconds": Setting(5.0, float, "first retry delay, then doubling",
                                       check=_min(0)),
        "max_retry_seconds": Setting(3600.0, float, "longest retry delay", check=_min(0)),
        "max_attempts": Setting(20, int, "then the delivery is parked as failed", check=_min(1)),
        "poll_interval_seconds": Setting(1.0, float, "how often the dispatcher looks for due work",
                                         check=_min(0.01)),
    },
    "simulator": {
        "enabled": Setting(True, bool, "mount the embedded WeChat simulator under /_sim"),
        "pay_directories": Setting([], list, "registered JSAPI directories; empty = pay page dir"),
        "notify_time_scale": Setting(1.0, float, "multiplies WeChat's notify retry schedule",
                                     check=_min(0)),
        "close_min_age_seconds": Setting(300.0, float, "simulated closeorder age rule",
                                         check=_min(0)),
    },
    "catalog": {
        "products": Setting({}, dict, "products of the bundled catalog plugin"),
    },
}

# Top-level keys that are not sections.
TOP_LEVEL: Mapping[str, Setting] = {
    "plugins": Setting(["tornpay.plugins.catalog", "tornpay.plugins.booking"], list,
                       "plugin modules (dotted names), loaded in order"),
    "success_url": Setting("/wxpay/orders/{out_trade_no}/result", str,
                           "where the pay page goes once the order is PAID"),
}

# The values shipped in settings.yaml: fine for the simulator, refused for real WeChat.
SHIPPED_TEST_VALUES = {
    ("wechat", "api_key"): "192006250b4c09247ec02edce69f6a2d",
    ("wechat", "app_secret"): "tornpay-simulator-app-secret",
    ("server", "cookie_secret"): "tornpay-demo-cookie-secret-change-me",
}
MASK = "********"


def _coerce(name: str, spec: Setting, value: Any) -> Any:
    if spec.type is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if spec.type is int and isinstance(value, bool):
        raise SettingsError(f"setting {name}: expected an integer, got {value!r}")
    if spec.type is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)  # e.g. mch_id: 10000100 written without quotes
    if not isinstance(value, spec.type):
        shown = MASK if spec.secret else repr(value)
        raise SettingsError(
            f"setting {name}: expected {spec.type.__name__}, got {type(value).__name__} {shown}")
    if spec.check is not None:
        problem = spec.check(value)
        if problem:
            shown = MASK if spec.secret else repr(value)
            raise SettingsError(f"setting {name}: {problem} (got {shown})")
    return value


def _env_value(raw: str, name: str) -> Any:
    try:
        return yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError:
        raise SettingsError(f"setting {name}: environment value is not a YAML scalar") from None


class Section(types.SimpleNamespace):
    """Attribute access to one settings section."""


class Settings(types.SimpleNamespace):
    """Loaded, checked settings: ``settings.server.port``, ``settings.plugins`` ..."""

    source: str = "<dict>"
    _explicit_urls: frozenset = frozenset()

    def as_dict(self, masked: bool = True) -> dict:
        """Return the settings as plain data, secrets replaced by a mask unless told otherwise."""
        out: dict = {}
        for section, keys in SCHEMA.items():
            sec = getattr(self, section)
            out[section] = {
                k: (MASK if (spec.secret and masked and getattr(sec, k)) else getattr(sec, k))
                for k, spec in keys.items()
            }
        for key in TOP_LEVEL:
            out[key] = getattr(self, key)
        return out

    def secret_values(self) -> list:
        """Every non-empty secret value, for scrubbing logs and tests."""
        return [getattr(getattr(self, s), k) for s, keys in SCHEMA.items()
                for k, spec in keys.items() if spec.secret and getattr(getattr(self, s), k)]

    def uses_shipped_credentials(self) -> bool:
        return any(getattr(getattr(self, s), k) == v for (s, k), v in SHIPPED_TEST_VALUES.items())

    def local_base_url(self) -> str:
        """Where this process listens, for server-to-server calls to the mounted simulator."""
        host = self.server.address
        if host in ("", "0.0.0.0", "::"):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.server.port}"

    def effective_wechat_urls(self) -> dict:
        """The three WeChat base URLs, pointed at the mounted simulator unless set explicitly."""
        w = self.wechat
        urls = {"pay_api_base": w.pay_api_base, "oauth_authorize_url": w.oauth_authorize_url,
                "oauth_api_base": w.oauth_api_base}
        if self.simulator.enabled:
            local = self.local_base_url() + "/_sim"
            public = self.server.public_url.rstrip("/") + "/_sim"
            sim = {"pay_api_base": local, "oauth_api_base": local,
                   "oauth_authorize_url": public + "/connect/oauth2/authorize"}
            for k in urls:
                if k not in self._explicit_urls:
                    urls[k] = sim[k]
        return urls


def settings_from_dict(data: Optional[Mapping[str, Any]], env: Optional[Mapping[str, str]] = None,
                       source: str = "<dict>") -> Settings:
    """Check ``data`` against the schema, apply env overrides, and return :class:`Settings`."""
    data = dict(data or {})
    env = os.environ if env is None else env
    for key in data:
        if key not in SCHEMA and key not in TOP_LEVEL:
            raise SettingsError(f"unknown setting {key!r} in {source}")
    result: dict = {}
    for section, keys in SCHEMA.items():
        given = data.get(section) or {}
        if not isinstance(given, Mapping):
            raise SettingsError(f"setting {section}: must be a mapping of keys")
        for key in given:
            if key not in keys:
                raise SettingsError(f"unknown setting {section}.{key} in {source}")
        values = {}
        for key, spec in keys.items():
            name = f"{section}.{key}"
            env_name = f"TORNPAY_{section.upper()}_{key.upper()}"
            if env_name in env:
                value = _env_value(env[env_name], env_name)
            elif key in given and given[key] is not None:
                value = given[key]
            elif spec.default is REQUIRED:
                raise SettingsError(f"setting {name} is required (or set {env_name})")
            else:
                value = spec.default
            values[key] = _coerce(name, spec, value)
        result[section] = Section(**values)
    for key, spec in TOP_LEVEL.items():
        env_name = f"TORNPAY_{key.upper()}"
        if env_name in env:
            value = _env_value(env[env_name], env_name)
        else:
            value = data.get(key, spec.default)
            if value is None:
                value = spec.default
        result[key] = _coerce(key, spec, value)
    _check_catalog(result["catalog"].products)
    settings = Settings(**result)
    settings.source = source
    # A WeChat URL written in the file or the environment is used as is, even
    # with the simulator on; unset ones point at the mounted simulator.
    wechat_given = data.get("wechat") or {}
    settings._explicit_urls = frozenset(
        k for k in ("pay_api_base", "oauth_authorize_url", "oauth_api_base")
        if k in wechat_given or f"TORNPAY_WECHAT_{k.upper()}" in env)
    return settings


def _check_catalog(products: Mapping[str, Any]) -> None:
    for pid, product in products.items():
        name = f"catalog.products.{pid}"
        if not isinstance(product, Mapping):
            raise SettingsError(f"setting {name}: must be a mapping with body and total_fee")
        fee = product.get("total_fee")
        if not isinstance(fee, int) or isinstance(fee, bool) or fee <= 0:
            raise SettingsError(f"setting {name}.total_fee: must be a positive integer (fen)")
        if not isinstance(product.get("body"), str) or not product["body"]:
            raise SettingsError(f"setting {name}.body: must be a non-empty string")


def load_settings(path: Optional[str] = None, env: Optional[Mapping[str, str]] = None) -> Settings:
    """Load ``path`` (default ``settings.yaml``) with env overrides; raise SettingsError."""
    path = path or "settings.yaml"
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except FileNotFoundError:
        raise SettingsError(f"settings file {path} not found") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise SettingsError(f"settings file {path} is not valid YAML{where}") from None
    if data is not None and not isinstance(data, Mapping):
        raise SettingsError(f"settings file {path} must be a mapping of sections")
    return settings_from_dict(data, env=env, source=path)
