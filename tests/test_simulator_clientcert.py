"""Issue 20 item 1: refunds need the merchant's client certificate by default, like WeChat."""

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sim_helpers import (  # noqa: F401  (fixtures)
    API_KEY as KEY, APPID, MCH_ID, OPENID, app as sim_app, box, make_config, sim, sim_config,
    signed, state,
)
from test_simulator_refunds import refund_params
from tornpay.protocol.xmlcodec import decode_xml
from tornpay.simulator import clientcert
from tornpay.simulator.clientcert import TEST_CA, TEST_CERT, TEST_KEY, check_cert_pair
from tornpay.simulator.config import SimulatorConfig

app = sim_app


def _pem_key(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _self_signed(tmp_path, cn: str):
    """A certificate for `cn` from a CA the simulator does not know, and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / f"{cn}-cert.pem", tmp_path / f"{cn}-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(_pem_key(key))
    return str(cert_path), str(key_path)


def test_the_shipped_pair_is_test_only_and_valid(tmp_path):
    assert "TEST-ONLY" in TEST_CERT and "TEST-ONLY" in TEST_KEY and "TEST-ONLY" in TEST_CA
    with open(TEST_CERT, "rb") as handle:
        subject = x509.load_pem_x509_certificate(handle.read()).subject
    assert "TEST ONLY" in subject.rfc4514_string()
    assert check_cert_pair(TEST_CERT, TEST_KEY, MCH_ID) is None
    other_key = tmp_path / "other-key.pem"
    other_key.write_bytes(_pem_key(ec.generate_private_key(ec.SECP256R1())))
    foreign_cert, foreign_key = _self_signed(tmp_path, MCH_ID)
    assert check_cert_pair("", "", MCH_ID) == clientcert.NO_CERT
    assert check_cert_pair(str(tmp_path / "missing.pem"), TEST_KEY, MCH_ID) == clientcert.NO_CERT
    assert check_cert_pair(TEST_CERT, str(other_key), MCH_ID) == clientcert.BAD_PAIR
    assert check_cert_pair(foreign_cert, foreign_key, MCH_ID) == clientcert.BAD_ISSUER
    assert check_cert_pair(TEST_CERT, TEST_KEY, "1900000109") == clientcert.OTHER_MCH


def test_strict_by_default():
    assert SimulatorConfig.single(APPID, "s", MCH_ID, "k" * 32).require_client_cert is True
    from tornpay.settings_schema import SCHEMA

    assert SCHEMA["simulator"]["require_client_cert"].default is True


@pytest.mark.gen_test
async def test_refund_without_a_matching_certificate_fails_like_wechat(sim, tmp_path):
    order = await sim.paid_order()
    config = sim.state.config
    other_key = tmp_path / "other-key.pem"
    other_key.write_bytes(_pem_key(ec.generate_private_key(ec.SECP256R1())))
    for cert, key, message in (("", "", clientcert.NO_CERT),
                               (TEST_CERT, str(other_key), clientcert.BAD_PAIR)):
        config.client_cert_file, config.client_key_file = cert, key
        reply = decode_xml((await sim.raw("/secapi/pay/refund",
                                          signed(refund_params(order, "C1")))).body)
        # Layer 1, unsigned, nothing refunded.
        assert (reply["return_code"], reply["return_msg"]) == ("FAIL", message)
        assert "sign" not in reply and not sim.state.refunds
    config.require_client_cert = False  # the setting that relaxes it
    assert (await sim.api("/secapi/pay/refund", refund_params(order, "C1", "50")))[
        "result_code"] == "SUCCESS"
    config.require_client_cert = True
    config.client_cert_file, config.client_key_file = TEST_CERT, TEST_KEY
    assert (await sim.api("/secapi/pay/refund", refund_params(order, "C2", "1")))[
        "result_code"] == "SUCCESS"


def test_shipped_settings_use_the_test_pair_from_any_directory(tmp_path, monkeypatch):
    import os

    from tornpay.settings import load_settings

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    settings = load_settings(os.path.join(root, "settings.yaml"), env={})
    monkeypatch.chdir(tmp_path)  # relative paths also resolve next to the installed package
    config = SimulatorConfig.from_settings(settings)
    assert config.require_client_cert is True
    assert "TEST-ONLY" in config.client_cert_file
    assert check_cert_pair(config.client_cert_file, config.client_key_file, MCH_ID) is None


@pytest.mark.gen_test(timeout=20)
async def test_over_real_mutual_tls_the_presented_certificate_decides(tmp_path):
    """Served over TLS (test CA), the simulator reads the certificate tornpay's client presents."""
    import ssl

    import tornado.httpserver
    import tornado.testing
    from tornado.curl_httpclient import CurlAsyncHTTPClient

    from test_protocol_client import _write_cert
    from tornpay.protocol.client import PayClient
    from tornpay.protocol.errors import ProtocolError
    from tornpay.simulator.app import make_simulator_app
    from tornpay.simulator.state import SimulatorState

    server_cert, server_key = _write_cert(tmp_path, "127.0.0.1")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(server_cert, server_key)
    context.load_verify_locations(TEST_CA)
    context.verify_mode = ssl.CERT_OPTIONAL  # no certificate: the simulator answers, as WeChat
    # No files configured: over TLS only the presented certificate counts.
    state = SimulatorState(make_config(client_cert_file="", client_key_file=""))
    server = tornado.httpserver.HTTPServer(make_simulator_app(state), ssl_options=context)
    sock, port = tornado.testing.bind_unused_port()
    server.add_socket(sock)
    curl = CurlAsyncHTTPClient(force_instance=True)
    base = f"https://127.0.0.1:{port}"
    try:
        pay = PayClient(APPID, MCH_ID, KEY, base, curl, timeout=5, ca_certs=server_cert,
                        cert_file=TEST_CERT, key_file=TEST_KEY)
        await pay.unified_order(body="x", out_trade_no="TLS1", total_fee=100,
                                spbill_create_ip="127.0.0.1", notify_url="https://m.example/n",
                                openid=OPENID)
        state.pay(state.find_order("TLS1"), notify=False)
        assert (await pay.refund("TLS1", "R1", 100, 10))["result_code"] == "SUCCESS"
        anonymous = PayClient(APPID, MCH_ID, KEY, base, curl, timeout=5, ca_certs=server_cert)
        with pytest.raises(ProtocolError) as info:
            await anonymous.refund("TLS1", "R2", 100, 10)
        assert clientcert.NO_CERT in str(info.value)
        assert len(state.refunds) == 1
    finally:
        curl.close()
        server.stop()
        await server.close_all_connections()
        await state.aclose()
