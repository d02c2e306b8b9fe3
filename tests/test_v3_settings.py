"""API v3 settings: one clear start-up line per problem, secrets hidden, shipped keys refused."""

import os

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tornpay.gateway.v3settings import TESTCERT_DIR, check_v3
from tornpay.settings import load_settings, settings_from_dict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
T = TESTCERT_DIR
V3 = {
    "api_version": "v3", "apiv3_key": "tornpay-simulator-apiv3-key-0032",
    "private_key_file": os.path.join(T, "TEST-ONLY-merchant-10000100-key.pem"),
    "cert_file": os.path.join(T, "TEST-ONLY-merchant-10000100-cert.pem"),
    "cert_serial_no": "7E57000000000000000000000000000010000100",
    "wechatpay_public_key_file": os.path.join(T, "TEST-ONLY-wechatpay-public-key.pem"),
    "wechatpay_public_key_id": "PUB_KEY_ID_0110000100202601010000000001",
}


def settings(simulator=True, **wechat):
    return settings_from_dict({
        "server": {"cookie_secret": "v3-settings-test-cookie-secret-0123456789"},
        "wechat": dict({"appid": "wx1", "app_secret": "s3cr3t-app", "mch_id": "10000100",
                        "api_key": "k" * 32}, **dict(V3, **wechat)),
        "simulator": {"enabled": simulator},
    }, env={})


def write_key(tmp_path, bits):
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    path = tmp_path / f"k{bits}.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return str(path)


def test_shipped_settings_run_v3_with_one_switch():
    s = load_settings(os.path.join(ROOT, "settings.yaml"),
                      env={"TORNPAY_WECHAT_API_VERSION": "v3"})
    problems, creds = check_v3(s)
    assert problems == [] and creds.keys.public_key_id.startswith("PUB_KEY_ID_")
    assert load_settings(os.path.join(ROOT, "settings.yaml"), env={}).wechat.api_version == "v2"


def test_certificate_mode_when_both_public_key_settings_are_empty():
    problems, creds = check_v3(settings(wechatpay_public_key_file="",
                                        wechatpay_public_key_id=""))
    assert problems == [] and creds.keys.certificate_mode


@pytest.mark.parametrize("change,needle", [
    ({"apiv3_key": "short-secret-value"}, "wechat.apiv3_key: must be 32 bytes, got 18"),
    ({"private_key_file": "/nonexistent/key.pem"}, "wechat.private_key_file: /nonexistent/"
                                                   "key.pem: cannot be read"),
    ({"private_key_file": os.path.join(T, "TEST-ONLY-ca.pem")}, "not an unencrypted PEM"),
    ({"cert_serial_no": "7E57000000000000000000000000000010000101"}, "does not match the serial"),
    ({"cert_serial_no": "zz"}, "wechat.cert_serial_no: must be"),
    ({"wechatpay_public_key_id": "12345"}, "wechatpay_public_key_id: must be"),
    ({"wechatpay_public_key_file": ""}, "wechatpay_public_key_file: required"),
])
def test_each_problem_is_one_clear_line(change, needle):
    problems, creds = check_v3(settings(**change))
    assert creds is None and len(problems) == 1 and needle in problems[0], problems
    assert "short-secret-value" not in problems[0]


def test_wrong_key_size_and_key_not_of_certificate(tmp_path):
    problems, _ = check_v3(settings(private_key_file=write_key(tmp_path, 1024)))
    assert problems == [f"setting wechat.private_key_file: {tmp_path}/k1024.pem: RSA key of "
                        "1024 bits, WeChat Pay v3 uses 2048"]
    problems, _ = check_v3(settings(private_key_file=write_key(tmp_path, 2048)))
    assert problems == ["setting wechat.private_key_file: not the key of the certificate in "
                        "wechat.cert_file"]


def test_several_problems_are_all_reported():
    problems, _ = check_v3(settings(apiv3_key="", private_key_file="", cert_serial_no=""))
    assert len(problems) == 3


def test_shipped_test_keys_refused_without_the_simulator():
    problems, creds = check_v3(settings(simulator=False))
    assert creds is None
    assert [p.split(":")[0] for p in problems] == [
        "setting wechat.apiv3_key", "setting wechat.private_key_file",
        "setting wechat.wechatpay_public_key_file"]


def test_apiv3_key_is_masked():
    s = settings()
    assert s.as_dict()["wechat"]["apiv3_key"] == "********"
    assert "tornpay-simulator-apiv3-key-0032" in s.secret_values()


def test_shipped_v3_keys_stop_the_start_without_the_simulator_even_on_v2():
    from tornpay.gateway.v3settings import load_v3
    from tornpay.settings import SettingsError
    with pytest.raises(SettingsError, match="wechat.apiv3_key: still the shipped TEST-ONLY"):
        load_v3(settings(simulator=False, api_version="v2"))
    assert load_v3(settings(api_version="v2")) is not None  # with the simulator: fine


def test_v3_not_shipped_names_own_credentials(tmp_path):
    from tornpay.gateway.v3settings import v3_not_shipped
    assert v3_not_shipped(settings()) == []
    own = settings(apiv3_key="A" * 32, private_key_file=write_key(tmp_path, 2048))
    assert v3_not_shipped(own) == ["wechat.apiv3_key", "wechat.private_key_file"]


def test_start_stops_on_v3_problems_and_builds_both_gateways_when_fine():
    from tornpay.gateway.router import build_gateways
    from tornpay.settings import SettingsError
    with pytest.raises(SettingsError) as err:
        build_gateways(settings(apiv3_key="short-secret-value", cert_serial_no="zz"), None, None)
    assert str(err.value).count("\n") == 1 and "short-secret-value" not in str(err.value)
    gateways = build_gateways(settings(), None, None)
    assert gateways.current.generation == "v3" and gateways.of("v2").generation == "v2"


def test_simulator_refuses_own_v3_keys(tmp_path):
    from tornpay.context import check_startable
    from tornpay.settings import SettingsError
    own = settings_from_dict({
        "server": {"cookie_secret": "v3-settings-test-cookie-secret-0123456789"},
        "wechat": dict({"appid": "wx1", "app_secret": "tornpay-simulator-app-secret",
                        "mch_id": "10000100", "api_key": "192006250b4c09247ec02edce69f6a2d"},
                       **dict(V3, private_key_file=write_key(tmp_path, 2048))),
        "simulator": {"enabled": True}}, env={})
    with pytest.raises(SettingsError, match="wechat.private_key_file"):
        check_startable(own)
