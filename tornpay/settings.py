"""Settings: a declared schema, YAML + ``TORNPAY_<SECTION>_<KEY>`` env overrides, masking."""

import os
import types
from typing import Any, Mapping, Optional

import yaml

# The schema lives in its own module; re-exported here, where callers look for it.
from tornpay.settings_schema import (REQUIRED, SCHEMA, SHIPPED_TEST_VALUES,  # noqa: F401
                                     SHIPPED_WECHAT_CREDENTIALS, TOP_LEVEL, Setting)


class SettingsError(Exception):
    """A settings problem, as one line that names the key."""


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

    def real_credentials(self) -> list:
        """Names of the WeChat credentials that are not the shipped test values."""
        from tornpay.gateway.v3shipped import v3_not_shipped  # the v3 keys join the rule

        # "" is no credential: an optional one left unset (miniprogram_secret).
        return [f"wechat.{k}" for k, v in SHIPPED_WECHAT_CREDENTIALS.items()
                if getattr(self.wechat, k) not in (v, "")] + v3_not_shipped(self)

    def public_url_for(self, path: str) -> str:
        """The public URL of one of tornpay's own routes (``path`` after ``server.prefix``)."""
        return self.server.public_url.rstrip("/") + self.server.prefix + path

    def result_url(self, out_trade_no: str) -> str:
        """``success_url`` for one order (``{prefix}`` is ``server.prefix``)."""
        return self.success_url.format(prefix=self.server.prefix, out_trade_no=out_trade_no)

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
                       source: str = "<dict>", credentials: bool = True) -> Settings:
    """Check ``data`` against the schema, apply env overrides, and return :class:`Settings`.

    ``credentials=False`` (database-only CLI verbs) lets required keys be missing (None).
    """
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
            elif spec.default is REQUIRED and not credentials:
                values[key] = None
                continue
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


def load_settings(path: Optional[str] = None, env: Optional[Mapping[str, str]] = None,
                  credentials: bool = True) -> Settings:
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
    return settings_from_dict(data, env=env, source=path, credentials=credentials)
