"""Which trade type a browser gets (SPEC §9) and what each adds to the unified order."""

import json
import re
from typing import Iterable, Optional
from urllib.parse import urlsplit

JSAPI, NATIVE, MWEB = "JSAPI", "NATIVE", "MWEB"
TRADE_TYPES = (JSAPI, NATIVE, MWEB)

# WeChat's in-app browser says MicroMessenger (any case); phones say one of
# these (wechatpay-v2-native-h5 §1); everything else is treated as a desktop.
_WECHAT_UA = re.compile(r"micromessenger", re.I)
_MOBILE_UA = re.compile(r"android|iphone|ipod|ipad|mobile|harmonyos|windows phone", re.I)
# A code_url lives 2 hours at WeChat, however long the order itself lives (§2.2).
CODE_URL_LIFETIME_SECONDS = 2 * 3600


class TradeTypeRefused(Exception):
    """The asked-for trade type is unknown or not enabled by this merchant."""

    def __init__(self, trade_type: str):
        super().__init__(trade_type)
        self.trade_type = trade_type


def from_user_agent(user_agent: str) -> str:
    """JSAPI inside WeChat, MWEB in another phone browser, NATIVE on a desktop."""
    if _WECHAT_UA.search(user_agent or ""):
        return JSAPI
    if _MOBILE_UA.search(user_agent or ""):
        return MWEB
    return NATIVE


def choose(user_agent: str, override: Optional[str], enabled: Iterable[str]) -> str:
    """The trade type for a checkout; ``override`` (``?trade_type=``) must be enabled.

    Without an override a browser whose natural type is not enabled gets
    NATIVE when that is (a QR code works from any screen), else the first
    enabled type.
    """
    enabled = [t for t in enabled if t in TRADE_TYPES]
    if override:
        if override.upper() not in enabled:
            raise TradeTypeRefused(override)
        return override.upper()
    natural = from_user_agent(user_agent)
    if natural in enabled:
        return natural
    if not enabled:
        raise TradeTypeRefused(natural)
    return NATIVE if NATIVE in enabled else enabled[0]


def scene_info(settings) -> str:
    """MWEB ``scene_info``: one JSON string, signed as sent (ref P31), ``h5_info`` type Wap."""
    public = settings.server.public_url.rstrip("/")
    info = {"type": "Wap",
            "wap_url": settings.orders.h5_wap_url or public,
            "wap_name": settings.orders.h5_wap_name or urlsplit(public).hostname or "tornpay"}
    return json.dumps({"h5_info": info}, ensure_ascii=False, separators=(",", ":"))


def extra_fields(settings, trade_type: str, product_id: str, openid: str) -> dict:
    """The unified-order fields that differ by trade type (ref §4.1, addendum §2.1, §3.2)."""
    if trade_type == NATIVE:
        return {"trade_type": NATIVE, "product_id": product_id}
    if trade_type == MWEB:
        return {"trade_type": MWEB, "scene_info": scene_info(settings)}
    return {"trade_type": JSAPI, "openid": openid}

