"""PayClient and OAuthClient against a tiny fake WeChat on loopback, through real curl."""

import asyncio
import datetime
import ipaddress
import json
import logging
from types import SimpleNamespace

import pytest
import tornado.web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from tornado.curl_httpclient import CurlAsyncHTTPClient

import vectors as V  # tests/ is on sys.path (pytest rootdir-relative import)
from tornpay.protocol.client import PayClient
from tornpay.protocol.errors import (
    BusinessError,
    OAuthError,
    ProtocolError,
    ResponseSignatureError,
    TransportError,
)
from tornpay.protocol.oauth import OAuthClient
from tornpay.protocol.sign import HMAC_SHA256, MD5, make_sign, verify_sign
from tornpay.protocol.xmlcodec import decode_xml, encode_xml

SECRET = "app-secret-must-never-leak-0001"
ORDER = dict(
    body="示例商城-会员充值", out_trade_no="T20240601000001", total_fee=1,
    spbill_create_ip="123.12.12.123", notify_url="https://m.example.com/wxpay/notify",
    openid=V.OPENID,
)


def signed_reply(request_fields, sign_type=None, **extra):
    """A WeChat-style SUCCESS reply, signed with the request's sign type and no sign_type."""
    sign_type = sign_type or request_fields.get("sign_type", MD5)
    reply = {"return_code": "SUCCESS", "return_msg": "OK", "appid": V.APPID,
             "mch_id": V.MCH_ID, "nonce_str": "IITRi8Iabbblz1Jc", "result_code": "SUCCESS"}
    reply.update(extra)
    reply["sign"] = make_sign(reply, V.KEY, sign_type)
    return 200, encode_xml(reply)


def default_reply(fields):
    # Like WeChat: an unverifiable request gets an unsigned layer-1 FAIL.
    if not verify_sign(fields, V.KEY, fields.get("sign_type", MD5)):
        return 200, encode_xml({"return_code": "FAIL", "return_msg": "签名错误"})
    return signed_reply(fields, prepay_id="wx0112304591234", trade_state="NOTPAY")


class FakePayHandler(tornado.web.RequestHandler):
    def initialize(self, fake):
        self.fake = fake

    async def post(self):
        fields = decode_xml(self.request.body)
        self.fake.requests.append((self.request.path, self.request.body, fields))
        replies = self.fake.replies.get(self.request.path) or [default_reply]
        reply = replies.pop(0) if len(replies) > 1 else replies[0]
        result = reply(fields)
        status, body = await result if asyncio.iscoroutine(result) else result
        self.set_status(status)
        self.write(body)


class FakeTokenHandler(tornado.web.RequestHandler):
    def initialize(self, fake):
        self.fake = fake

    def get(self):
        args = {k: self.get_argument(k) for k in self.request.arguments}
        self.fake.oauth_calls.append(args)
        self.set_status(self.fake.oauth_status)
        self.write(self.fake.oauth_reply(args))


@pytest.fixture
def fake():
    return SimpleNamespace(requests=[], replies={}, oauth_calls=[], oauth_status=200,
                           oauth_reply=lambda a: {"access_token": "AT", "expires_in": 7200,
                                                  "openid": V.OPENID, "scope": "snsapi_base"})


@pytest.fixture
def app(fake):
    return tornado.web.Application([
        (r"/sns/oauth2/access_token", FakeTokenHandler, {"fake": fake}),
        (r"/.*", FakePayHandler, {"fake": fake}),
    ])


class RecordingCurl(CurlAsyncHTTPClient):
    """Real curl client that also keeps every HTTPRequest it was asked to send."""

    def fetch_impl(self, request, callback):
        self.sent.append(request)
        super().fetch_impl(request, callback)


@pytest.fixture
def curl(io_loop, http_server):
    client = RecordingCurl(force_instance=True)
    client.sent = []
    yield client
    client.close()


@pytest.fixture
def base(http_port):
    return f"http://127.0.0.1:{http_port}"


@pytest.fixture
def pay(curl, base):
    return PayClient(V.APPID, V.MCH_ID, V.KEY, base, curl, timeout=2)


@pytest.fixture
def oauth(curl, base):
    return OAuthClient(V.APPID, SECRET, "https://open.weixin.qq.com/connect/oauth2/authorize",
                       base, curl, timeout=2)


# -- pay API: success paths ----------------------------------------------------


@pytest.mark.gen_test
async def test_unified_order_success(pay, fake, curl):
    reply = await pay.unified_order(**ORDER)
    assert reply["prepay_id"] == "wx0112304591234"
    assert all(isinstance(v, str) for v in reply.values())
    path, body, sent = fake.requests[0]
    assert path == "/pay/unifiedorder"
    assert sent["appid"] == V.APPID and sent["mch_id"] == V.MCH_ID
    assert sent["trade_type"] == "JSAPI" and sent["total_fee"] == "1"
    assert len(sent["nonce_str"]) == 32 and "sign_type" not in sent
    assert verify_sign(sent, V.KEY, MD5)
    assert curl.sent[0].request_timeout == 2 and curl.sent[0].connect_timeout == 2
    assert curl.sent[0].client_cert is None


@pytest.mark.gen_test
async def test_reference_reply_b5_is_accepted(pay, fake):
    fake.replies["/pay/unifiedorder"] = [lambda f: (200, encode_xml(V.B5))]
    reply = await pay.unified_order(**ORDER)
    assert reply["prepay_id"] == "wx01123045912345a1b2c3d4e5f60718290000"


@pytest.mark.gen_test
async def test_query_close_refundquery(pay, fake):
    fake.replies["/pay/orderquery"] = [lambda f: (200, encode_xml(V.B10))]
    paid = await pay.order_query(out_trade_no="20240601123045000123")
    assert paid["trade_state"] == "SUCCESS" and paid["total_fee"] == "1"
    fake.replies["/pay/closeorder"] = [lambda f: (200, encode_xml(V.B14))]
    assert (await pay.close_order("20240601123045000124"))["result_msg"] == "OK"
    fake.replies["/pay/refundquery"] = [lambda f: (200, encode_xml(V.B18))]
    refunds = await pay.refund_query(out_refund_no="R20240602000001")
    assert refunds["refund_status_0"] == "SUCCESS"
    await pay.order_query(transaction_id="4200002315202406013425869417")
    sent = [r[2] for r in fake.requests]
    assert sent[0]["out_trade_no"] == "20240601123045000123" and "transaction_id" not in sent[0]
    assert sent[1]["out_trade_no"] == "20240601123045000124"
    assert sent[2]["out_refund_no"] == "R20240602000001"
    assert sent[3]["transaction_id"] == "4200002315202406013425869417"


@pytest.mark.gen_test
async def test_bad_arguments_refused_before_sending(pay, fake):
    with pytest.raises(ValueError):
        await pay.unified_order(**dict(ORDER, total_fee=1.0))
    with pytest.raises(ValueError):
        await pay.order_query()
    with pytest.raises(ValueError):
        await pay.refund("T1", "R1", 1, 0)
    assert fake.requests == []


# -- pay API: the three failure layers ----------------------------------------


@pytest.mark.gen_test
async def test_return_code_fail(pay, fake):
    fake.replies["/pay/orderquery"] = [
        lambda f: (200, encode_xml({"return_code": "FAIL", "return_msg": "签名错误"})),
        lambda f: (200, encode_xml({"return_code": "FAIL", "retmsg": "沙箱验证签名失败"})),
    ]
    with pytest.raises(ProtocolError) as info:
        await pay.order_query(out_trade_no="T1")
    assert info.value.return_msg == "签名错误" and not info.value.retryable
    with pytest.raises(ProtocolError, match="沙箱验证签名失败"):
        await pay.order_query(out_trade_no="T1")


@pytest.mark.gen_test
async def test_result_code_fail(pay, fake):
    fake.replies["/pay/unifiedorder"] = [lambda f: (200, encode_xml(V.B6))]
    with pytest.raises(BusinessError) as info:
        await pay.unified_order(**ORDER)
    assert info.value.err_code == "ORDERPAID" and info.value.err_code_des == "该订单已支付"
    assert not info.value.retryable and info.value.fields["result_code"] == "FAIL"


@pytest.mark.parametrize("code,retryable", [
    ("SYSTEMERROR", True), ("BIZERR_NEED_RETRY", True), ("NOTENOUGH", False)])
@pytest.mark.gen_test
async def test_business_error_retryable(pay, fake, code, retryable):
    fake.replies["/secapi/pay/refund"] = [
        lambda f: signed_reply(f, result_code="FAIL", err_code=code, err_code_des="x")]
    with pytest.raises(BusinessError) as info:
        await pay.refund("T1", "R1", 2, 1)
    assert info.value.err_code == code and info.value.retryable is retryable


@pytest.mark.parametrize("tamper", ["wrong", "missing", "other_algorithm", "other_key"])
@pytest.mark.gen_test
async def test_bad_reply_signature(pay, fake, tamper):
    def reply(fields):
        doc = decode_xml(signed_reply(fields, prepay_id="wx1")[1])
        if tamper == "wrong":
            doc["prepay_id"] = "wx-forged"
        elif tamper == "missing":
            del doc["sign"]
        elif tamper == "other_algorithm":
            doc["sign"] = make_sign(doc, V.KEY, HMAC_SHA256)
        else:
            doc["sign"] = make_sign(doc, "0" * 32, MD5)
        return 200, encode_xml(doc)

    fake.replies["/pay/unifiedorder"] = [reply]
    with pytest.raises(ResponseSignatureError):
        await pay.unified_order(**ORDER)


@pytest.mark.parametrize("body", [b"<html><body>502</body></html>", b"", b"SUCCESS",
                                  b'<!DOCTYPE x [<!ENTITY e "1">]><xml><a>&e;</a></xml>'])
@pytest.mark.gen_test
async def test_unparseable_reply(pay, fake, body):
    fake.replies["/pay/orderquery"] = [lambda f: (200, body)]
    with pytest.raises(ProtocolError, match="unparseable"):
        await pay.order_query(out_trade_no="T1")


# -- transport -------------------------------------------------------------------


@pytest.mark.gen_test
async def test_http_500(pay, fake):
    fake.replies["/pay/orderquery"] = [lambda f: (500, b"oops")]
    with pytest.raises(TransportError) as info:
        await pay.order_query(out_trade_no="T1")
    assert info.value.status == 500 and info.value.retryable


@pytest.mark.gen_test
async def test_timeout(curl, base, fake):
    async def slow(fields):
        await asyncio.sleep(0.6)
        return default_reply(fields)

    fake.replies["/pay/orderquery"] = [slow]
    pay = PayClient(V.APPID, V.MCH_ID, V.KEY, base, curl, timeout=0.2)
    with pytest.raises(TransportError, match="timed out") as info:
        await pay.order_query(out_trade_no="T1")
    assert info.value.retryable
    await asyncio.sleep(0.6)  # let the slow handler finish before the server stops


@pytest.mark.gen_test
async def test_connection_refused(curl):
    import tornado.testing

    sock, port = tornado.testing.bind_unused_port()
    sock.close()
    pay = PayClient(V.APPID, V.MCH_ID, V.KEY, f"http://127.0.0.1:{port}", curl, timeout=1)
    with pytest.raises(TransportError):
        await pay.close_order("T1")


# -- HMAC-SHA256 and byte-identical retries --------------------------------------


@pytest.mark.gen_test
async def test_hmac_client(curl, base, fake):
    pay = PayClient(V.APPID, V.MCH_ID, V.KEY, base, curl, sign_type=HMAC_SHA256)
    reply = await pay.unified_order(**ORDER)
    sent = fake.requests[0][2]
    assert sent["sign_type"] == HMAC_SHA256 and len(sent["sign"]) == 64
    assert "sign_type" not in reply and len(reply["sign"]) == 64
    # Per call: an MD5 request on an HMAC client, and the reverse on an MD5 client.
    await pay.order_query(out_trade_no="T1", sign_type=MD5)
    assert "sign_type" not in fake.requests[1][2] and len(fake.requests[1][2]["sign"]) == 32


@pytest.mark.gen_test
async def test_hmac_per_call_and_b4_fields(pay, fake):
    await pay.unified_order(**dict(ORDER, sign_type=HMAC_SHA256))
    assert fake.requests[0][2]["sign_type"] == HMAC_SHA256
    fields = {k: v for k, v in V.B4.items() if k != "sign"}
    body, signed = pay.build_request("/pay/unifiedorder", fields)
    assert signed["sign"] == V.B4["sign"]  # known answer through the client's own path
    assert decode_xml(body) == V.B4


@pytest.mark.gen_test
async def test_same_signed_request_resent_byte_identical(pay, fake):
    async def slow(fields):
        await asyncio.sleep(0.4)
        return default_reply(fields)

    fake.replies["/pay/unifiedorder"] = [
        lambda f: signed_reply(f, result_code="FAIL", err_code="SYSTEMERROR"),
        lambda f: (503, b"busy"), default_reply]
    body, signed = pay.build_request("/pay/unifiedorder", dict(ORDER, trade_type="JSAPI"))
    with pytest.raises(BusinessError) as info:
        await pay.send_prepared("/pay/unifiedorder", body)
    assert info.value.retryable
    with pytest.raises(TransportError):
        await pay.send_prepared("/pay/unifiedorder", body)
    reply = await pay.send_prepared("/pay/unifiedorder", body)
    assert reply["prepay_id"]
    assert [r[1] for r in fake.requests] == [body, body, body]
    # Rebuilding from the stored signed params gives the same bytes too.
    assert pay.build_request("/pay/unifiedorder", signed)[0] == body


# -- refund client certificate ----------------------------------------------------


def _write_cert(tmp_path, ip=None):
    """A self-signed PEM certificate + key; with ``ip`` it is a server certificate for it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ip or V.MCH_ID)])
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=1))
               .not_valid_after(now + datetime.timedelta(days=1)))
    if ip:
        san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))])
        builder = builder.add_extension(san, critical=False).add_extension(
            x509.BasicConstraints(ca=True, path_length=None), critical=True)
    cert = builder.sign(key, hashes.SHA256())
    cert_file, key_file = tmp_path / "apiclient_cert.pem", tmp_path / "apiclient_key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_file), str(key_file)


@pytest.mark.gen_test
async def test_refund_uses_client_certificate(curl, base, fake, tmp_path):
    cert_file, key_file = _write_cert(tmp_path)
    pay = PayClient(V.APPID, V.MCH_ID, V.KEY, base, curl, cert_file=cert_file, key_file=key_file)
    fake.replies["/secapi/pay/refund"] = [
        lambda f: signed_reply(f, out_refund_no=f["out_refund_no"], refund_id="5030000881")]
    reply = await pay.refund("T1", "R1", 2, 1, refund_desc="用户取消订单")
    assert reply["refund_id"] == "5030000881"
    await pay.order_query(out_trade_no="T1")
    refund_req, query_req = curl.sent
    assert refund_req.url.endswith("/secapi/pay/refund")
    assert (refund_req.client_cert, refund_req.client_key) == (cert_file, key_file)
    assert refund_req.ssl_options is None
    assert query_req.client_cert is None and query_req.client_key is None
    sent = fake.requests[0][2]
    assert (sent["total_fee"], sent["refund_fee"]) == ("2", "1")
    assert sent["refund_desc"] == "用户取消订单"


# -- observer, logging, settings --------------------------------------------------


@pytest.mark.gen_test
async def test_observer_and_no_secret_in_logs(pay, fake, caplog):
    seen = []
    pay.observer = lambda *a: seen.append(a)
    fake.replies["/pay/closeorder"] = [
        default_reply, lambda f: signed_reply(f, result_code="FAIL", err_code="ORDERPAID")]
    caplog.set_level(logging.DEBUG)
    await pay.close_order("T1")
    with pytest.raises(BusinessError):
        await pay.close_order("T1")
    assert [(a, o) for a, _, o in seen] == [("closeorder", "success"),
                                          ("closeorder", "business_error")]
    assert all(s >= 0 for _, s, _ in seen)
    assert "T1" in caplog.text and V.KEY not in caplog.text and V.KEY not in repr(pay)
    pay.observer = lambda *a: 1 / 0  # a broken observer never changes the outcome
    caplog.set_level(logging.CRITICAL)
    with pytest.raises(BusinessError):
        await pay.close_order("T1")


def test_from_settings():
    wechat = SimpleNamespace(appid=V.APPID, mch_id=V.MCH_ID, api_key=V.KEY, app_secret=SECRET,
                             sign_type=HMAC_SHA256, timeout=3, cert_file="c.pem",
                             key_file="k.pem", pay_api_base="https://api.mch.weixin.qq.com",
                             oauth_api_base="https://api.weixin.qq.com",
                             oauth_authorize_url="https://open.weixin.qq.com/x")
    plain = SimpleNamespace(wechat=wechat)
    pay = PayClient.from_settings(plain, http_client=None)
    assert (pay.base_url, pay.sign_type, pay.timeout, pay.cert_file) == (
        "https://api.mch.weixin.qq.com", HMAC_SHA256, 3, "c.pem")
    sim = "http://127.0.0.1:8888/_sim"
    urls = {"pay_api_base": sim, "oauth_api_base": sim,
            "oauth_authorize_url": sim + "/connect/oauth2/authorize"}
    mounted = SimpleNamespace(wechat=wechat, effective_wechat_urls=lambda: urls)
    assert PayClient.from_settings(mounted, None).base_url == sim
    oauth = OAuthClient.from_settings(mounted, None)
    assert oauth.api_base == sim and oauth.authorize_base == sim + "/connect/oauth2/authorize"


# -- OAuth ---------------------------------------------------------------------


def test_authorize_url_reference_example(oauth):
    url = oauth.authorize_url(
        "https://merchant.example.com/wx/oauth/callback?next=/order/20240601123045000123",
        "a1B2c3")
    assert url == (
        "https://open.weixin.qq.com/connect/oauth2/authorize?appid=wxd930ea5d5a258f4f"
        "&redirect_uri=https%3A%2F%2Fmerchant.example.com%2Fwx%2Foauth%2Fcallback%3Fnext%3D"
        "%2Forder%2F20240601123045000123&response_type=code&scope=snsapi_base&state=a1B2c3"
        "#wechat_redirect")
    assert "scope=snsapi_userinfo&" in oauth.authorize_url("https://x/", "s", "snsapi_userinfo")


@pytest.mark.gen_test
async def test_exchange_code_success(oauth, fake, curl):
    data = await oauth.exchange_code("CODE1")
    assert data["openid"] == V.OPENID
    assert fake.oauth_calls == [{"appid": V.APPID, "secret": SECRET, "code": "CODE1",
                                 "grant_type": "authorization_code"}]
    assert curl.sent[0].method == "GET" and curl.sent[0].request_timeout == 2


@pytest.mark.parametrize("errcode,errmsg", [(40029, "invalid code, rid: 6499"),
                                            (40163, "code been used")])
@pytest.mark.gen_test
async def test_exchange_code_errors(oauth, fake, caplog, errcode, errmsg):
    fake.oauth_reply = lambda a: {"errcode": errcode, "errmsg": errmsg}
    caplog.set_level(logging.DEBUG)
    with pytest.raises(OAuthError) as info:
        await oauth.exchange_code("USED")
    assert info.value.errcode == errcode and info.value.errmsg == errmsg
    assert len(fake.oauth_calls) == 1  # never retried automatically
    assert SECRET not in str(info.value) and SECRET not in caplog.text
    assert SECRET not in repr(oauth)


@pytest.mark.gen_test
async def test_exchange_code_transport_and_garbage(oauth, fake):
    fake.oauth_status = 502
    with pytest.raises(TransportError) as info:
        await oauth.exchange_code("C")
    assert SECRET not in str(info.value)
    fake.oauth_status = 200
    fake.oauth_reply = lambda a: "<html>not json</html>"
    with pytest.raises(ProtocolError):
        await oauth.exchange_code("C")
    fake.oauth_reply = lambda a: json.dumps({"access_token": "AT"})
    with pytest.raises(ProtocolError, match="openid"):
        await oauth.exchange_code("C")


@pytest.mark.gen_test
async def test_refund_presents_certificate_over_real_mutual_tls(curl, tmp_path):
    import ssl

    import tornado.httpserver
    import tornado.testing

    server_dir, client_dir = tmp_path / "server", tmp_path / "client"
    server_dir.mkdir()
    client_dir.mkdir()
    server_cert, server_key = _write_cert(server_dir, "127.0.0.1")
    client_cert, client_key = _write_cert(client_dir)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(server_cert, server_key)
    context.load_verify_locations(client_cert)
    context.verify_mode = ssl.CERT_REQUIRED  # the handshake fails without our certificate
    seen = []

    class Refund(tornado.web.RequestHandler):
        def post(self):
            seen.append(self.request.get_ssl_certificate())
            self.write(signed_reply(decode_xml(self.request.body), refund_id="503")[1])

    server = tornado.httpserver.HTTPServer(
        tornado.web.Application([(r"/secapi/pay/refund", Refund)]), ssl_options=context)
    sock, port = tornado.testing.bind_unused_port()
    server.add_socket(sock)
    try:
        base = f"https://127.0.0.1:{port}"
        pay = PayClient(V.APPID, V.MCH_ID, V.KEY, base, curl, timeout=2, ca_certs=server_cert,
                        cert_file=client_cert, key_file=client_key)
        assert (await pay.refund("T1", "R1", 2, 1))["refund_id"] == "503"
        assert dict(x[0] for x in seen[0]["subject"])["commonName"] == V.MCH_ID
        anonymous = PayClient(V.APPID, V.MCH_ID, V.KEY, base, curl, timeout=2,
                              ca_certs=server_cert)
        with pytest.raises(TransportError):
            await anonymous.refund("T1", "R1", 2, 1)
        assert len(seen) == 1
    finally:
        server.stop()
        await server.close_all_connections()
