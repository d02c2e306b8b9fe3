"""Start-up checks of the API v3 settings (SPEC §10): one clear line per problem, no secrets."""

import os
import re
from dataclasses import dataclass
from typing import List, Optional, Tuple

from tornpay.protocol.v3.keys import (KeyFileError, load_certificate, load_private_key,
                                      load_public_key, same_public_key, same_serial, serial_hex)
from tornpay.protocol.v3.verify import PUB_KEY_PREFIX, WeChatPayKeys
# Re-exported: the cryptography-free part lives in v3shipped (a v2 process imports only that).
from tornpay.gateway.v3shipped import (SHIPPED_APIV3_KEY, SHIPPED_KEY_FILES,  # noqa: F401
                                       TESTCERT_DIR, resolve_path, v3_configured,
                                       v3_not_shipped)

SERIAL_RE = re.compile(r"[0-9A-Fa-f]{1,40}")


@dataclass
class V3Credentials:
    """Everything a v3 gateway needs, loaded and checked."""

    mchid: str
    serial_no: str
    private_key: object
    apiv3_key: str
    keys: WeChatPayKeys


def _load(loader, path: str, name: str, problems: List[str]):
    if not path:
        problems.append(f"setting wechat.{name}: required with api_version v3")
        return None
    try:
        return loader(resolve_path(path), f"setting wechat.{name}:")
    except KeyFileError as exc:
        problems.append(str(exc))
        return None


def _check_serial(w, key, problems: List[str]) -> None:
    serial = w.cert_serial_no
    if not SERIAL_RE.fullmatch(serial or ""):
        problems.append("setting wechat.cert_serial_no: must be the merchant API certificate's "
                        "serial in hex (openssl x509 -in apiclient_cert.pem -noout -serial)")
        return
    if not w.cert_file:
        return
    try:
        cert = load_certificate(resolve_path(w.cert_file), "setting wechat.cert_file:")
    except KeyFileError as exc:
        problems.append(str(exc))
        return
    if not same_serial(serial_hex(cert), serial):
        problems.append(f"setting wechat.cert_serial_no: {serial} does not match the serial "
                        f"{serial_hex(cert)} of wechat.cert_file")
    elif key is not None and not same_public_key(cert.public_key(), key.public_key()):
        problems.append("setting wechat.private_key_file: not the key of the certificate "
                        "in wechat.cert_file")


def _wechatpay_keys(w, problems: List[str]) -> WeChatPayKeys:
    path, key_id = w.wechatpay_public_key_file, w.wechatpay_public_key_id
    if not path and not key_id:
        return WeChatPayKeys()  # platform-certificate mode: fetched from /v3/certificates
    if not key_id.startswith(PUB_KEY_PREFIX) or len(key_id) <= len(PUB_KEY_PREFIX):
        problems.append("setting wechat.wechatpay_public_key_id: must be the id shown with the "
                        "public key, PUB_KEY_ID_... (or leave both public-key settings empty)")
    public = _load(load_public_key, path, "wechatpay_public_key_file", problems)
    return WeChatPayKeys(public_key=public, public_key_id=key_id)


def check_v3(settings) -> Tuple[List[str], Optional[V3Credentials]]:
    """Every v3 problem (empty when fine) and the loaded credentials when there is none."""
    w = settings.wechat
    problems: List[str] = []
    size = len((w.apiv3_key or "").encode("utf-8"))
    if size != 32:
        problems.append(f"setting wechat.apiv3_key: must be 32 bytes, got {size} "
                        "(商户平台 → 账户中心 → API安全; value hidden)")
    key = _load(load_private_key, w.private_key_file, "private_key_file", problems)
    _check_serial(w, key, problems)
    keys = _wechatpay_keys(w, problems)
    if not settings.simulator.enabled:
        problems += shipped_problems(w, key, keys)
    if problems:
        return problems, None
    return [], V3Credentials(w.mch_id, w.cert_serial_no.upper(), key, w.apiv3_key, keys)


def shipped_problems(w, key, keys: WeChatPayKeys) -> List[str]:
    """The shipped TEST-ONLY v3 credentials are refused for real WeChat (SPEC §3)."""
    found = []
    if w.apiv3_key == SHIPPED_APIV3_KEY:
        found.append("wechat.apiv3_key")
    shipped = [load_public_key(os.path.join(TESTCERT_DIR, f)) if "public" in f else
               load_private_key(os.path.join(TESTCERT_DIR, f)).public_key()
               for f in SHIPPED_KEY_FILES]
    if key is not None and same_public_key(key.public_key(), shipped[0]):
        found.append("wechat.private_key_file")
    if keys.public_key is not None and same_public_key(keys.public_key, shipped[1]):
        found.append("wechat.wechatpay_public_key_file")
    return [f"setting {name}: still the shipped TEST-ONLY value while simulator.enabled is "
            "false; set your own" for name in found]


def load_v3(settings) -> Optional[V3Credentials]:
    """Checked v3 credentials; problems stop the start with api_version v3, else only warn.

    With ``v2`` the v3 keys are still loaded when set, so v3 orders in flight
    can finish after a switch back (SPEC §10).
    """
    import logging

    from tornpay.settings import SettingsError
    if not v3_configured(settings):
        return None
    problems, creds = check_v3(settings)
    shipped = [p for p in problems if "shipped TEST-ONLY" in p]
    if shipped or (problems and settings.wechat.api_version == "v3"):
        # Shipped test keys never talk to the real WeChat, whatever the generation (SPEC §3).
        raise SettingsError("\n".join(shipped or problems))
    for problem in problems:
        logging.getLogger(__name__).warning("API v3 unavailable: %s", problem)
    return creds
