"""Page languages: Simplified Chinese and English from CSV files, chosen per request.

The translations are Tornado CSV files (``"English","中文"`` per line) in
``tornpay/locale/``. They are loaded into :class:`tornado.locale.CSVLocale`
objects of our own instead of through ``tornado.locale.load_translations``,
which would replace the translations of an estate embedding tornpay.
"""

import csv
import functools
import os
from typing import Dict, Optional

import tornado.locale

LOCALE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "locale")
SUPPORTED = ("zh_CN", "en_US")
HTML_LANG = {"zh_CN": "zh-CN", "en_US": "en"}


@functools.lru_cache(maxsize=None)
def get_locale(code: str) -> tornado.locale.Locale:
    """The Locale for ``code`` (one of SUPPORTED); English is the identity."""
    if code not in SUPPORTED:
        raise ValueError(f"unsupported locale {code!r}")
    return tornado.locale.CSVLocale(code, {"unknown": _read(code)})


def _read(code: str) -> Dict[str, str]:
    path = os.path.join(LOCALE_DIR, f"{code}.csv")
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8", newline="") as f:
        return {row[0]: row[1] for row in csv.reader(f) if len(row) >= 2 and row[0]}


def _match(tag: str) -> Optional[str]:
    tag = tag.strip().lower().replace("_", "-")
    if tag.startswith("zh"):
        return "zh_CN"
    if tag.startswith("en"):
        return "en_US"
    return None


def choose(accept_language: str, default: str = "zh_CN") -> str:
    """The locale code for an Accept-Language header, else ``default``."""
    ranked = []
    for i, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if tag.strip() and q > 0:
            ranked.append((-q, i, tag))
    for _, _, tag in sorted(ranked):
        code = _match(tag)
        if code:
            return code
    return default if default in SUPPORTED else "zh_CN"


def fen_to_yuan(fen: Optional[int]) -> str:
    """``1234`` -> ``"12.34"`` (negative amounts keep their sign)."""
    if fen is None:
        return "-"
    sign = "-" if fen < 0 else ""
    return "%s%d.%02d" % ((sign,) + divmod(abs(int(fen)), 100))
