"""notify_url rules: what WeChat refuses outright, and what it accepts but could never reach."""

import ipaddress
from typing import Optional
from urllib.parse import urlsplit

MAX_LENGTH = 256  # String(256), reference §4.1
# Names that only resolve inside the merchant's own network.
LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".lan", ".home.arpa")


def notify_url_refusal(url: str) -> Optional[str]:
    """WeChat's reason to refuse this notify_url (reference §4.1), or None."""
    if len(url) > MAX_LENGTH:
        return f"notify_url参数长度有误（最长{MAX_LENGTH}个字符）"
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return "notify_url参数格式错误（须为完整的URL）"
    if parts.scheme not in ("http", "https"):
        return "notify_url参数格式错误（须以http://或https://开头）"
    if not host:
        return "notify_url参数格式错误（须为完整的URL）"
    if parts.query or "?" in url:
        return "notify_url参数格式错误（不能携带参数）"
    return None


def notify_url_warning(url: str) -> Optional[str]:
    """Why WeChat's servers could not reach this (accepted) notify_url, or None."""
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    single_label = "." not in host and ":" not in host
    if host == "localhost" or host.endswith(LOCAL_SUFFIXES) or single_label:
        return f"notify_url host {host!r} is a local name: real WeChat could not reach it"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if address.is_loopback or address.is_private or address.is_link_local or \
            address.is_unspecified or address.is_reserved:
        return f"notify_url host {host} is not a public address: real WeChat could not reach it"
    return None
