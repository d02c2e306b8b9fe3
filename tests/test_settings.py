"""Settings: schema defaults, env overrides, one clear line per bad key, masking, shipped file."""

import os
import subprocess
import sys

import pytest

from tornpay.settings import (SCHEMA, TOP_LEVEL, SettingsError, load_settings,
                              settings_from_dict)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CREDS = {
    "server": {"cookie_secret": "settings-test-cookie-secret-0123456789"},
    "wechat": {"appid": "wx1", "app_secret": "s3cr3t-app", "mch_id": "1",
               "api_key": "k" * 32},
}


def with_creds(**sections):
    data = {k: dict(v) for k, v in CREDS.items()}
    for section, values in sections.items():
        if isinstance(values, dict):
            data.setdefault(section, {}).update(values)
        else:
            data[section] = values
    return data


def test_defaults_fill_every_key():
    s = settings_from_dict(with_creds(), env={})
    assert s.server.port == 8888
    assert s.orders.expire_minutes == 30
    assert s.deliveries.max_attempts == 20
    assert s.plugins == ["tornpay.plugins.catalog", "tornpay.plugins.booking"]


def test_shipped_settings_file_loads_and_points_at_simulator():
    s = load_settings(os.path.join(ROOT, "settings.yaml"), env={})
    assert s.simulator.enabled is True
    assert s.database.url.startswith("sqlite:///")
    urls = s.effective_wechat_urls()
    assert urls["pay_api_base"] == "http://127.0.0.1:8888/_sim"
    assert urls["oauth_authorize_url"].endswith("/_sim/connect/oauth2/authorize")


def test_explicit_url_wins_over_simulator():
    s = settings_from_dict(with_creds(wechat={"pay_api_base": "http://127.0.0.1:9/x"}), env={})
    assert s.effective_wechat_urls()["pay_api_base"] == "http://127.0.0.1:9/x"


def test_env_override_is_typed():
    s = settings_from_dict(with_creds(), env={"TORNPAY_SERVER_PORT": "9000",
                                              "TORNPAY_WECHAT_API_KEY": "z" * 32})
    assert s.server.port == 9000
    assert s.wechat.api_key == "z" * 32


@pytest.mark.parametrize("data,env,needle", [
    ({"server": dict(CREDS["server"])}, {}, "wechat.appid is required"),
    (with_creds(server={"port": "eighty"}), {}, "server.port"),
    (with_creds(server={"port": 70000}), {}, "server.port"),
    (with_creds(server={"colour": "red"}), {}, "unknown setting server.colour"),
    (with_creds(extra={"a": 1}), {}, "unknown setting 'extra'"),
    (with_creds(wechat={"sign_type": "SHA1"}), {}, "wechat.sign_type"),
    (with_creds(wechat={"api_key": "short"}), {}, "wechat.api_key"),
    (with_creds(orders={"expire_minutes": 0}), {}, "orders.expire_minutes"),
    (with_creds(), {"TORNPAY_SERVER_PORT": "[1"}, "TORNPAY_SERVER_PORT"),
    (with_creds(), {"TORNPAY_DELIVERIES_MAX_ATTEMPTS": "many"}, "deliveries.max_attempts"),
    (with_creds(catalog={"products": {"p": {"body": "b", "total_fee": 1.5}}}), {},
     "catalog.products.p.total_fee"),
    (with_creds(server={"public_url": "ftp://x"}), {}, "server.public_url"),
])
def test_bad_settings_name_the_key(data, env, needle):
    with pytest.raises(SettingsError) as info:
        settings_from_dict(data, env=env)
    message = str(info.value)
    assert needle in message
    assert "\n" not in message


def test_secrets_are_masked_even_in_errors():
    s = settings_from_dict(with_creds(), env={})
    shown = repr(s.as_dict())
    assert "s3cr3t-app" not in shown and "k" * 32 not in shown
    with pytest.raises(SettingsError) as info:
        settings_from_dict(with_creds(wechat={"api_key": "tooshort-secret"}), env={})
    assert "tooshort-secret" not in str(info.value)


def test_every_setting_is_documented():
    for section, keys in SCHEMA.items():
        for key, spec in keys.items():
            assert spec.help, f"{section}.{key} has no help"
    assert all(spec.help for spec in TOP_LEVEL.values())


def test_bad_settings_file_stops_start_with_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("server:\n  port: not-a-port\n")
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "server.py"), "--settings",
                           str(bad)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "server.port" in lines[0]


def test_shipped_credentials_refused_without_simulator(tmp_path):
    from tornpay.context import check_startable

    s = load_settings(os.path.join(ROOT, "settings.yaml"),
                      env={"TORNPAY_SIMULATOR_ENABLED": "false"})
    with pytest.raises(SettingsError, match="shipped test values"):
        check_startable(s)


def test_shipped_settings_file_shows_every_key():
    # A merchant learns the settings from settings.yaml: each key is there, set or commented.
    with open(os.path.join(ROOT, "settings.yaml"), encoding="utf-8") as fh:
        text = fh.read()
    missing = [f"{section}.{key}" for section, keys in SCHEMA.items() for key in keys
               if f"{key}:" not in text]
    missing += [key for key in TOP_LEVEL if f"{key}:" not in text]
    assert not missing
