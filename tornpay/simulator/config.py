"""Simulator configuration: merchants, Official Accounts, test users, timing and switches."""

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import urlsplit

# WeChat's payment/refund notify retry gaps in seconds (reference §11.5): 16 deliveries, 24h4m.
NOTIFY_SCHEDULE: Tuple[float, ...] = (
    15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600,
)


@dataclass
class MerchantConfig:
    """One merchant account: its v2 API key and the appids bound to it."""

    api_key: str
    appids: List[str] = field(default_factory=list)


@dataclass
class TestUser:
    """A WeChat user the OAuth page offers (openid under every configured appid)."""

    openid: str
    name: str
    is_subscribe: str = "N"


# The first is the reference document's sample openid so its vectors work as is.
DEFAULT_USERS: Tuple[TestUser, ...] = (
    TestUser("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "Alice (test user)"),
    TestUser("oUpF8uN95-Ptaags6E_roPHg7AG0", "Bob (test user)", "Y"),
    TestUser("oUpF8uKtgdlYLszMjFH2Yf8DKWcw", "Chen (test user)"),
)


@dataclass
class SimulatorConfig:
    """Everything the simulator needs; build it directly in tests or from app settings."""

    merchants: Dict[str, MerchantConfig]
    accounts: Dict[str, str]  # appid -> AppSecret
    users: List[TestUser] = field(default_factory=lambda: list(DEFAULT_USERS))
    pay_directories: List[str] = field(default_factory=list)
    time_scale: float = 1.0  # multiplies notify retry gaps and the refund delay
    close_min_age_seconds: float = 300.0
    include_sign_type_in_notify: bool = False
    http_client: Any = None  # AsyncHTTPClient(force_instance=True); made lazily when None
    seed: Optional[int] = None  # seeds nonces/ids/probability faults for reproducible runs
    refund_delay_seconds: Optional[float] = 10.0  # None: refunds finish only via control API
    notify_timeout: float = 5.0  # WeChat's reply deadline per delivery
    notify_schedule: Tuple[float, ...] = NOTIFY_SCHEDULE
    # Refunds demand the merchant's client certificate, as WeChat's mutual TLS does: the
    # files the merchant's client presents (wechat.cert_file/key_file) must match (clientcert).
    require_client_cert: bool = True
    client_cert_file: str = ""
    client_key_file: str = ""
    strict_openid: bool = False  # unifiedorder refuses openids that are not test users
    min_time_expire_seconds: float = 60.0  # time_expire must be at least this far ahead
    over_refund_err_code: str = "ERROR"  # what an over-refund answers (real WeChat: ERROR)
    oauth_auto_user: Optional[str] = None  # authorize page redirects at once as this openid
    # Web-authorization domains (bare hosts); empty = the hosts of pay_directories.
    oauth_domains: List[str] = field(default_factory=list)
    # The simulator's own public base URL (bridge script, cashier); "" = where the script
    # was loaded from. Never the request's Host header.
    public_url: str = ""
    h5_domains: List[str] = field(default_factory=list)  # MWEB Referer hosts; empty: own host
    # API v3 keys (tornpay.simulator.v3.keys.V3SimKeys); None = the shipped TEST-ONLY ones.
    v3: Any = None

    @classmethod
    def single(cls, appid: str, app_secret: str, mch_id: str, api_key: str,
               **kwargs) -> "SimulatorConfig":
        """One merchant with one Official Account, the usual setup."""
        return cls(
            merchants={mch_id: MerchantConfig(api_key=api_key, appids=[appid])},
            accounts={appid: app_secret},
            **kwargs,
        )

    @classmethod
    def from_settings(cls, settings, **kwargs) -> "SimulatorConfig":
        """Build from tornpay settings (wechat credentials and the simulator section)."""
        wechat, sim, server = settings.wechat, settings.simulator, settings.server
        dirs = list(getattr(sim, "pay_directories", None) or [])
        if not dirs:
            dirs = [server.public_url.rstrip("/") + server.prefix.rstrip("/") + "/pay/"]
        for name, key in (("time_scale", "notify_time_scale"),
                          ("close_min_age_seconds", "close_min_age_seconds"),
                          ("require_client_cert", "require_client_cert")):
            if hasattr(sim, key):
                kwargs.setdefault(name, getattr(sim, key))
        kwargs.setdefault("client_cert_file", getattr(wechat, "cert_file", "") or "")
        kwargs.setdefault("client_key_file", getattr(wechat, "key_file", "") or "")
        kwargs.setdefault("oauth_domains", list(getattr(sim, "oauth_domains", None) or [])
                          or [urlsplit(server.public_url).hostname or ""])
        kwargs.setdefault("public_url", public_base_url(settings))
        h5 = list(getattr(settings.simulator, "h5_domains", None) or [])
        if not h5:  # the merchant's pages live on public_url's host (SPEC §9)
            h5 = [urlsplit(settings.server.public_url).hostname or ""]
        kwargs.setdefault("h5_domains", h5)
        if "v3" not in kwargs:
            from tornpay.simulator.v3.keys import keys_from_settings
            kwargs["v3"] = keys_from_settings(settings)
        config = cls.single(
            wechat.appid, wechat.app_secret, wechat.mch_id, wechat.api_key,
            pay_directories=dirs, **kwargs,
        )
        mini = getattr(wechat, "miniprogram_appid", "")
        if mini:  # the merchant's Mini Program, bound to the same mch_id
            config.accounts[mini] = wechat.miniprogram_secret
            config.merchants[wechat.mch_id].appids.append(mini)
        return config

    def authorization_domains(self) -> List[str]:
        """oauth_domains, or the hosts of the pay directories when none are set."""
        if self.oauth_domains:
            return [d.lower() for d in self.oauth_domains]
        return [(urlsplit(d).hostname or "").lower() for d in self.pay_directories]

    def merchant(self, mch_id: str) -> Optional[MerchantConfig]:
        return self.merchants.get(mch_id)

    def user(self, openid: str) -> Optional[TestUser]:
        for user in self.users:
            if user.openid == openid:
                return user
        return None


def public_base_url(settings) -> str:
    """The simulator's public base: simulator.public_url, else server.public_url + /_sim."""
    configured = getattr(settings.simulator, "public_url", "") or ""
    if configured:
        return configured.rstrip("/")
    return settings.server.public_url.rstrip("/") + "/_sim"
