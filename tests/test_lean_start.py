"""Start-up: a v2 server without the console loads no v3, cryptography or console; GC tuned."""

import json
import subprocess
import sys

from proc_helpers import API_KEY, ROOT

# Builds the whole application (routes, gateway, workers) the way `tornpay serve`
# does, in a fresh interpreter, and prints which of the optional parts it imported.
PROBE = r"""
import json, sys
from tornpay.settings import settings_from_dict
from tornpay.app import make_app
settings = settings_from_dict(json.loads(sys.argv[1]))
make_app(settings, start=False)
watched = ("cryptography", "tornpay.console.passwords", "tornpay.console.sessions",
           "tornpay.handlers.admin_auth", "tornpay.handlers.admin_orders",
           "tornpay.gateway.v3", "tornpay.gateway.v3settings", "tornpay.protocol.v3.keys")
print(json.dumps(sorted(name for name in watched if name in sys.modules)))
"""

OPTIONAL = ["cryptography", "tornpay.console.passwords", "tornpay.console.sessions",
            "tornpay.handlers.admin_auth", "tornpay.handlers.admin_orders",
            "tornpay.gateway.v3", "tornpay.gateway.v3settings", "tornpay.protocol.v3.keys"]


def imported_parts(tmp_path, **sections):
    settings = {
        "server": {"cookie_secret": "lean-start-cookie-secret-0123456789", "port": 1},
        "wechat": {"appid": "wx2421b1c4370ec43b", "mch_id": "10000100", "api_key": API_KEY,
                   "app_secret": "lean-start-app-secret", "pay_api_base": "http://127.0.0.1:9",
                   "oauth_api_base": "http://127.0.0.1:9",
                   "oauth_authorize_url": "http://127.0.0.1:9/authorize"},
        "database": {"url": f"sqlite:///{tmp_path}/lean.db"},
        "simulator": {"enabled": False},
        "plugins": ["tornpay.plugins.catalog"],
        "catalog": {"products": {"p": {"body": "P", "total_fee": 1}}},
    }
    for section, values in sections.items():
        settings[section] = {**settings.get(section, {}), **values}
    out = subprocess.run([sys.executable, "-c", PROBE, json.dumps(settings)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_v2_server_without_the_console_imports_none_of_the_optional_parts(tmp_path):
    assert imported_parts(tmp_path) == []


def test_the_console_and_v3_are_loaded_when_switched_on(tmp_path):
    from conftest import V3_TEST_KEYS

    loaded = imported_parts(tmp_path, admin={"enabled": True},
                            simulator={"enabled": True, "allow_real_credentials": True},
                            wechat=V3_TEST_KEYS)
    assert loaded == sorted(OPTIONAL)


def test_an_unknown_operator_costs_a_full_scrypt_check_against_no_password():
    from tornpay.console import passwords

    # The dummy hash is a well-formed scrypt hash at the real cost (so an unknown
    # name takes as long as a wrong password), and nothing matches it.
    scheme, n, r, p, _salt, _digest = passwords._DUMMY.split("$")
    assert (scheme, int(n), int(r), int(p)) == ("scrypt", passwords.N, passwords.R, passwords.P)
    assert not passwords.verify_password("", passwords._DUMMY)
    assert not passwords.verify_password("any password at all", passwords._DUMMY)


def test_the_standalone_server_freezes_start_up_objects_and_collects_less_often():
    import gc

    from tornpay.app import GC_YOUNG_THRESHOLD, tune_gc

    before = gc.get_threshold()
    try:
        tune_gc()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, before[1], before[2])
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
