"""NATIVE code_urls and MWEB mweb_urls as WeChat issues and checks them (addendum §2, §3, §8)."""

import json
from dataclasses import dataclass
from typing import Dict, Optional, Tuple
from urllib.parse import urlsplit

from tornpay.simulator.records import Order
from tornpay.simulator.state import SimulatorError, SimulatorState

CODE_URL_TTL = 2 * 3600  # a NATIVE code_url lives 2 hours (addendum §2.2)
MWEB_URL_TTL = 5 * 60  # an mweb_url lives 5 minutes (addendum §3.3)
CODE_URL_PREFIX = "weixin://wxpay/bizpayurl?pr="
CHECKMWEB_PATH = "/cgi-bin/mmpayweb-bin/checkmweb"
_PR_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

# What WeChat shows the payer (addendum §2.3, §3.5), with the page codes of the FAQ copies.
EXPIRED_CODE = "二维码已过期，请重新生成"
OTHER_SCANNER = "商家订单信息有误，请重新下单支付"
MWEB_EXPIRED = ("支付请求已失效，请重新发起支付", 268498468)
MWEB_IN_WECHAT = ("请在微信外打开订单，进行支付", None)
MWEB_NO_REFERER = ("商家参数格式有误，请联系商家解决", 268443815)
MWEB_BAD_DOMAIN = ("商家存在未配置的参数，请联系商家解决", 268443816)
MWEB_BAD_IP = ("网络环境未能通过安全验证，请稍后再试", 268498465)
MWEB_SIGN_IOS = ("签名验证失败", None)
MWEB_SIGN_ANDROID = ("系统繁忙，请稍后再试", None)


class PageRefusal(Exception):
    """WeChat shows this text (and page code) instead of a cashier."""

    def __init__(self, text: str, code: Optional[int] = None):
        super().__init__(text)
        self.text = text
        self.code = code


@dataclass
class Launch:
    """One issued code_url or mweb_url: which order, when, and who opened it first."""

    key: Tuple[str, str]
    issued_at: float
    user: str = ""
    ip: str = ""
    package: str = ""


class H5NativeBook:
    """The simulator's NATIVE tokens and MWEB launches (one per SimulatorState)."""

    def __init__(self) -> None:
        self.codes: Dict[str, Launch] = {}
        self.mweb: Dict[str, Launch] = {}  # by prepay_id


def book_of(state: SimulatorState) -> H5NativeBook:
    """The book kept beside the state (made on first use; reset with it in tests)."""
    if state.h5native is None:
        state.h5native = H5NativeBook()
    return state.h5native


def check_request(params: Dict[str, str]) -> None:
    """NATIVE needs product_id; MWEB a JSON scene_info with h5_info.type (addendum §8.1)."""
    if params["trade_type"] == "NATIVE":
        if not params.get("product_id"):
            raise SimulatorError("LACK_PARAMS", "缺少参数product_id")
        return
    try:
        info = json.loads(params.get("scene_info") or "")
        kind = info["h5_info"]["type"]
    except (ValueError, TypeError, KeyError):
        raise SimulatorError("INVALID_REQUEST", "scene_info参数格式错误") from None
    if kind not in ("Wap", "IOS", "Android"):
        raise SimulatorError("INVALID_REQUEST", "scene_info参数格式错误")


def reply_fields(state: SimulatorState, order: Order, params: Dict[str, str],
                 base_url: str) -> Dict[str, str]:
    """``code_url`` (same one on re-entry while alive) or a fresh ``mweb_url``."""
    book = book_of(state)
    key = (order.mch_id, order.out_trade_no)
    now = state.now()
    if order.trade_type == "NATIVE":
        for token, launch in book.codes.items():
            if launch.key == key and now - launch.issued_at < CODE_URL_TTL:
                return {"code_url": CODE_URL_PREFIX + token}
        token = "".join(state.rng.choice(_PR_ALPHABET) for _ in range(9))
        book.codes[token] = Launch(key, now)
        return {"code_url": CODE_URL_PREFIX + token}
    if order.trade_type == "MWEB":
        package = "".join(state.rng.choice("0123456789") for _ in range(10))
        book.mweb[order.prepay_id] = Launch(key, now, ip=params["spbill_create_ip"],
                                            package=package)
        return {"mweb_url": f"{base_url}{CHECKMWEB_PATH}?prepay_id={order.prepay_id}"
                            f"&package={package}"}
    return {}


def scan(state: SimulatorState, code_url: str, openid: str) -> Order:
    """A test user scans ``code_url``: its order, or the refusal WeChat's app shows."""
    code_url = code_url.strip()
    token = code_url[len(CODE_URL_PREFIX):] if code_url.startswith(CODE_URL_PREFIX) else ""
    launch = book_of(state).codes.get(token)
    order = state.orders.get(launch.key) if launch else None
    now = state.now()
    if order is None or now - launch.issued_at >= CODE_URL_TTL or (
            order.time_expire is not None and now > order.time_expire):
        raise PageRefusal(EXPIRED_CODE)
    refuse_finished(order)
    if launch.user and launch.user != openid:
        raise PageRefusal(OTHER_SCANNER)
    launch.user = openid
    return order


def refuse_finished(order: Order) -> None:
    if order.trade_state in ("SUCCESS", "REFUND"):
        raise PageRefusal("该订单已支付")
    if order.trade_state != "NOTPAY":
        raise PageRefusal("该订单已关闭")


def open_codes(state: SimulatorState):
    """(code_url, order) of every live, unpaid NATIVE code, newest first (the scan page's list)."""
    now = state.now()
    found = []
    for token, launch in book_of(state).codes.items():
        order = state.orders.get(launch.key)
        if order is not None and order.trade_state == "NOTPAY" and \
                now - launch.issued_at < CODE_URL_TTL:
            found.append((launch.issued_at, CODE_URL_PREFIX + token, order))
    return [(url, order) for _, url, order in sorted(found, key=lambda f: -f[0])]


def check_mweb(state: SimulatorState, h5_domains, prepay_id: str, package: str, *,
               user_agent: str, referer: str, redirect_url: str, raw_query: str,
               client_ip: str) -> Order:
    """checkmweb's checks in the order of addendum §8.3; PageRefusal carries WeChat's text."""
    launch = book_of(state).mweb.get(prepay_id)
    order = state.orders.get(launch.key) if launch else None
    if order is None or launch.package != package or order.prepay_id != prepay_id:
        raise PageRefusal(*MWEB_EXPIRED)
    if "micromessenger" in user_agent.lower():
        raise PageRefusal(*MWEB_IN_WECHAT)
    if state.now() - launch.issued_at >= MWEB_URL_TTL:
        raise PageRefusal(*MWEB_EXPIRED)
    if not referer:
        raise PageRefusal(*MWEB_NO_REFERER)
    if urlsplit(referer).hostname not in h5_domains:
        raise PageRefusal(*MWEB_BAD_DOMAIN)
    if redirect_url:
        parts = urlsplit(redirect_url)
        if parts.scheme not in ("http", "https") or not parts.hostname or "&amp;" in raw_query:
            android = "android" in user_agent.lower()
            raise PageRefusal(*(MWEB_SIGN_ANDROID if android else MWEB_SIGN_IOS))
        if parts.hostname not in h5_domains:
            raise PageRefusal(*MWEB_BAD_DOMAIN)
    if client_ip != launch.ip:
        raise PageRefusal(*MWEB_BAD_IP)
    refuse_finished(order)
    return order


def h5_domains_of(config, default_host: str):
    """The registered H5 domains: the config's, else the host the merchant's pages live on."""
    return list(getattr(config, "h5_domains", None) or []) or [default_host]
