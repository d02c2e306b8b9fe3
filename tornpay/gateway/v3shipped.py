"""Which API v3 settings are set and whether they are the shipped TEST-ONLY ones (no cryptography).

Kept apart from ``v3settings`` (which loads and checks the keys) so that a
v2-only process never imports ``cryptography``: settings checks and the
gateway router ask here first (about 9 MB of resident memory saved).
"""

import os
from typing import List

TESTCERT_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            "simulator", "testcerts")
SHIPPED_APIV3_KEY = "tornpay-simulator-apiv3-key-0032"
SHIPPED_KEY_FILES = ("TEST-ONLY-merchant-10000100-key.pem", "TEST-ONLY-wechatpay-public-key.pem")
# The directory holding the tornpay package: shipped settings name files relative to a checkout.
_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def resolve_path(path: str) -> str:
    """``path`` as given, else relative to the package's parent (installed demo, zipapp)."""
    if path and not os.path.isabs(path) and not os.path.exists(path):
        candidate = os.path.join(_PACKAGE_PARENT, path)
        if os.path.exists(candidate):
            return candidate
    return path


def v3_configured(settings) -> bool:
    """True when v3 is the generation or any of its keys is set (then they are loaded)."""
    w = settings.wechat
    return w.api_version == "v3" or bool(w.apiv3_key or w.private_key_file)


def v3_not_shipped(settings) -> List[str]:
    """The v3 credentials that are set and are not the shipped TEST-ONLY ones.

    For the rule "the simulator runs only with shipped credentials" (SPEC §3).
    """
    w = settings.wechat
    found = []
    if w.apiv3_key and w.apiv3_key != SHIPPED_APIV3_KEY:
        found.append("wechat.apiv3_key")
    for name, shipped_file in (("private_key_file", SHIPPED_KEY_FILES[0]),
                               ("wechatpay_public_key_file", SHIPPED_KEY_FILES[1])):
        path = getattr(w, name)
        if path and not _same_file_content(resolve_path(path),
                                           os.path.join(TESTCERT_DIR, shipped_file)):
            found.append(f"wechat.{name}")
    return found


def _same_file_content(a: str, b: str) -> bool:
    try:
        with open(a, "rb") as first, open(b, "rb") as second:
            return first.read() == second.read()
    except OSError:
        return False
