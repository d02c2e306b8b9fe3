"""Safe start (issue 14 items 1, 11): the simulator never meets real credentials; no weak config."""

import asyncio

import pytest
import yaml

import tornpay
from tests.conftest import V3_TEST_KEYS, base_settings_dict, merge
from tornpay.app import main, make_app
from tornpay.orders.admin import AdminContext
from tornpay.settings import SettingsError, settings_from_dict

REAL = {"api_key": "a1b2c3d4e5f60718293a4b5c6d7e8f90",  # what a merchant's file holds
        "app_secret": "3f9c1e7a5b2d4c6e8a0b1c2d3e4f5a6b",
        "mch_id": "1900012345"}
SHIPPED = {"api_key": "192006250b4c09247ec02edce69f6a2d",
           "app_secret": "tornpay-simulator-app-secret", "mch_id": "10000100"}


def merchant_dict(tmp_path, **sections):
    """A merchant's settings: real credentials, https, no simulator section at all."""
    data = base_settings_dict(tmp_path, 8899)
    data["wechat"].update(REAL)
    for key in V3_TEST_KEYS:  # the shipped TEST-ONLY v3 keys are not a merchant's
        del data["wechat"][key]
    data["server"]["public_url"] = "https://pay.example.com"
    del data["simulator"]
    return merge(data, sections)


def run_in_own_loop(coro):
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


async def build_and_stop(settings):
    """Stands in for serving: builds the app (where the start checks run), never listens."""
    app = make_app(settings, start=False)
    await app.settings["tornpay"].stop()


def run_main(tmp_path, data, capsys, monkeypatch):
    path = tmp_path / "settings.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    monkeypatch.setattr("tornpay.app.serve", build_and_stop)
    # asyncio.run would drop (unclosed) the loop an earlier gen_test left current.
    monkeypatch.setattr("tornpay.app.asyncio.run", run_in_own_loop)
    code = main(["--settings", str(path)])
    out, err = capsys.readouterr()
    return code, err.strip().splitlines(), out


@pytest.mark.parametrize("key", ["api_key", "app_secret", "mch_id"])
def test_simulator_with_any_real_credential_refuses_to_start(tmp_path, capsys, monkeypatch, key):
    data = base_settings_dict(tmp_path, 8899)  # the simulator on, shipped credentials ...
    data["wechat"][key] = REAL[key]            # ... but one real one
    code, lines, out = run_main(tmp_path, data, capsys, monkeypatch)
    assert code == 2 and len(lines) == 1 and out == ""
    assert lines[0].startswith("tornpay: setting simulator.enabled") and f"wechat.{key}" in lines[0]
    assert REAL["api_key"] not in lines[0] and REAL["app_secret"] not in lines[0]


def test_embedding_estate_refuses_simulator_with_real_credentials(tmp_path):
    data = base_settings_dict(tmp_path, 8899)
    data["wechat"]["app_secret"] = REAL["app_secret"]
    del data["server"]["prefix"]
    with pytest.raises(SettingsError, match=r"^setting simulator\.enabled"):
        tornpay.routes(data, prefix="/pay", env={})


def test_cli_refuses_what_the_server_refuses(tmp_path):
    data = base_settings_dict(tmp_path, 8899)
    data["wechat"]["api_key"] = REAL["api_key"]
    with pytest.raises(SettingsError, match="simulator.enabled"):
        AdminContext(settings_from_dict(data, env={}))


def test_shipped_credentials_without_simulator_still_refused(tmp_path, capsys, monkeypatch):
    data = merge(merchant_dict(tmp_path), {"wechat": SHIPPED})
    code, lines, _ = run_main(tmp_path, data, capsys, monkeypatch)
    assert code == 2 and len(lines) == 1 and "simulator.enabled is false" in lines[0]


@pytest.mark.parametrize("key", ["appid", "mch_id", "app_secret", "api_key"])
@pytest.mark.parametrize("value", ["", "   "])
def test_empty_credentials_refused(tmp_path, key, value):
    data = merchant_dict(tmp_path, wechat={key: value})
    with pytest.raises(SettingsError, match=rf"wechat\.{key}"):
        settings_from_dict(data, env={})


def test_debug_with_real_credentials_refused(tmp_path, capsys, monkeypatch):
    data = merchant_dict(tmp_path, server={"debug": True})
    code, lines, _ = run_main(tmp_path, data, capsys, monkeypatch)
    assert code == 2 and len(lines) == 1 and lines[0].startswith("tornpay: setting server.debug")


@pytest.mark.parametrize("secret", [
    "0123456789abcdef",                  # 16 characters: was accepted
    "s3cr3t-but-short-0123456789",       # 27
    "x" * 64,                            # one character repeated
    "changeme" * 4,                      # 7 different characters
    "ab" * 32,
], ids=["16", "27", "repeated", "changeme", "two_chars"])
def test_weak_cookie_secret_refused(tmp_path, secret):
    with pytest.raises(SettingsError, match="server.cookie_secret") as info:
        settings_from_dict(merchant_dict(tmp_path, server={"cookie_secret": secret}), env={})
    assert secret not in str(info.value)


def test_random_cookie_secret_accepted(tmp_path):
    import secrets

    for _ in range(200):  # token_hex(16): 32 characters, about 14 different ones
        secret = secrets.token_hex(16)
        settings = settings_from_dict(merchant_dict(tmp_path, server={"cookie_secret": secret}),
                                      env={})
        assert settings.server.cookie_secret == secret
