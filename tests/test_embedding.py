"""An estate embeds tornpay under /pay and a whole payment runs through it against the simulator."""

import asyncio
import importlib
import json
import os
import pathlib
import re
import sys
import time
import urllib.error
import urllib.request
import textwrap
import types
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import tornado.web
from tornado.testing import bind_unused_port

from proc_helpers import log_tail, running

import tornpay
from conftest import base_settings_dict
from flow_helpers import wait_for
from tornpay.settings import SettingsError

ESTATE_SECRET = "the-estate-own-cookie-secret-0123456789"
ALICE = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"  # a simulator test user

ESTATE_HANDLERS = '''
"""The estate's own handlers: a top-level package named like tornpay's source folder."""
import tornado.web
from tornado.testing import bind_unused_port


class HomeHandler(tornado.web.RequestHandler):
    def get(self):
        user = self.get_signed_cookie("estate_user")
        self.render("home.html", user=user.decode() if user else "guest")


class AccountHandler(tornado.web.RequestHandler):
    def get(self):
        user = self.get_signed_cookie("estate_user")
        if not user:
            raise tornado.web.HTTPError(401)
        self.write({"user": user.decode()})

    def post(self):
        self.set_signed_cookie("estate_user", self.get_body_argument("name"))
        self.write({"ok": True})


def estate_routes():
    return [(r"/", HomeHandler), (r"/account", AccountHandler)]
'''

ESTATE_PLUGINS = '''
"""The estate's own plugins package; one object is registered with tornpay from code."""


class PaidRecorder:
    """Fulfilment the estate wires in: remembers every on_paid it sees."""

    def __init__(self):
        self.paid = []

    def on_paid(self, order):
        self.paid.append((order.out_trade_no, order.delivery_id, order.total_fee))
'''


def _write_estate(root):
    (root / "handlers").mkdir(parents=True)
    (root / "handlers" / "__init__.py").write_text(textwrap.dedent(ESTATE_HANDLERS))
    (root / "plugins").mkdir()
    (root / "plugins" / "__init__.py").write_text(textwrap.dedent(ESTATE_PLUGINS))
    templates = root / "templates"
    templates.mkdir()
    (templates / "home.html").write_text("<h1>Estate home</h1><p>hello {{ user }}</p>"
                                        "<form method=post action=/account>"
                                        "{% module xsrf_form_html() %}</form>")
    # A decoy with the name of tornpay's pay page: tornpay must keep using its own.
    (templates / "pay.html").write_text("ESTATE DECOY PAY PAGE")


@pytest.fixture
def estate(tmp_path, http_port, io_loop):
    root = tmp_path / "estate"
    _write_estate(root)
    saved = {name: sys.modules.pop(name, None) for name in ("handlers", "plugins")}
    sys.path.insert(0, str(root))
    try:
        estate_handlers = importlib.import_module("handlers")
        estate_plugins = importlib.import_module("plugins")
        assert estate_handlers.__file__.startswith(str(root))

        settings = base_settings_dict(tmp_path, http_port)
        del settings["server"]["prefix"]  # the mount point comes from the estate's code
        recorder = estate_plugins.PaidRecorder()
        tp = tornpay.routes(settings, prefix="/pay", plugins=[recorder], env={})
        access_lines = []
        app = tornado.web.Application(
            estate_handlers.estate_routes() + tp.routes,
            xsrf_cookies=True,
            cookie_secret=ESTATE_SECRET,
            template_path=str(root / "templates"),
            log_function=lambda handler: access_lines.append(handler.request.uri),
        )
        tp.start()
        yield types.SimpleNamespace(app=app, tp=tp, recorder=recorder, root=root,
                                    access_lines=access_lines)
        io_loop.run_sync(tp.stop)
    finally:
        sys.path.remove(str(root))
        for name, module in saved.items():
            sys.modules.pop(name, None)
            if module is not None:
                sys.modules[name] = module


@pytest.fixture
def app(estate):
    return estate.app


class Browser:
    """Just enough of a browser: a cookie jar and no automatic redirects."""

    def __init__(self, http_client):
        self.http_client = http_client
        self.cookies = {}

    async def fetch(self, url, method="GET", body=None, headers=None):
        headers = dict(headers or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        response = await self.http_client.fetch(url, method=method, body=body, headers=headers,
                                                follow_redirects=False, raise_error=False)
        for line in response.headers.get_list("Set-Cookie"):
            jar = SimpleCookie()
            jar.load(line)
            for name, morsel in jar.items():
                self.cookies[name] = morsel.value
        return response


@pytest.mark.gen_test(timeout=30)
async def test_whole_payment_through_the_estate(http_client, estate):
    base_url = estate.tp.settings.server.public_url  # the address WeChat's redirects use
    browser = Browser(http_client)

    # Checkout under the estate's prefix sends the payer to the simulator's OAuth page.
    r = await browser.fetch(base_url + "/pay/checkout/coach-101")
    assert r.code == 302, r.body
    authorize = urlsplit(r.headers["Location"])
    assert authorize.path == "/_sim/connect/oauth2/authorize"
    query = parse_qs(authorize.query)
    assert query["redirect_uri"] == [base_url + "/pay/oauth/callback"]

    # The simulator's authorize page, choosing Alice, answers with a code.
    r = await browser.fetch(base_url + authorize.path + "?" + authorize.query + "&"
                            + urlencode({"sim_user": ALICE}))
    assert r.code == 302
    callback = r.headers["Location"]
    assert callback.startswith(base_url + "/pay/oauth/callback?")

    r = await browser.fetch(callback)
    assert r.code == 303, r.body
    pay_path = r.headers["Location"]
    match = re.fullmatch(r"/pay/pay/([A-Za-z0-9_-]{1,32})", pay_path)
    assert match, pay_path
    out_trade_no = match.group(1)

    r = await browser.fetch(base_url + pay_path)
    assert r.code == 200
    page = r.body.decode()
    assert "ESTATE DECOY" not in page  # tornpay's own template, not the estate's pay.html
    params = json.loads(re.search(r'id="tornpay-jsapi">(.*?)</script>', page, re.S).group(1))

    # The bridge's cashier pays from the registered directory {public_url}/pay/pay/,
    # a POST with no XSRF token although the estate has xsrf_cookies=True.
    r = await browser.fetch(base_url + "/_sim/cashier/pay", method="POST",
                            body=json.dumps({"params": params}),
                            headers={"Content-Type": "application/json",
                                     "Referer": base_url + pay_path})
    assert r.code == 200 and json.loads(r.body)["ok"], r.body

    async def paid():
        resp = await browser.fetch(base_url + f"/pay/orders/{out_trade_no}")
        return resp.code == 200 and json.loads(resp.body)["state"] == "PAID"

    # The simulator's notify reached {prefix}/notify and was accepted.
    await wait_for(paid, timeout=10, interval=0.05)
    await wait_for(lambda: len(estate.recorder.paid) == 1, timeout=10, interval=0.05)
    await asyncio.sleep(0.3)  # duplicates and dispatcher polls must not fire it again
    assert [p[0] for p in estate.recorder.paid] == [out_trade_no]
    assert estate.recorder.paid[0][2] == 1

    r = await browser.fetch(base_url + "/pay/metrics")
    assert r.code == 200
    exposition = r.body.decode()
    assert 'tornpay_orders{state="PAID"} 1.0' in exposition
    accepted = re.search(r'tornpay_notifies_total\{kind="pay",outcome="accepted"\} (\S+)',
                         exposition)
    assert float(accepted.group(1)) >= 1
    r = await browser.fetch(base_url + "/pay/healthz")
    assert r.code == 200

    # The estate's access log got our requests, with its own log_function.
    assert any(line.startswith("/pay/pay/") for line in estate.access_lines)


@pytest.mark.gen_test
async def test_estate_keeps_its_own_settings_routes_and_xsrf(http_client, base_url, estate):
    app_settings = estate.app.settings
    assert app_settings["cookie_secret"] == ESTATE_SECRET
    assert app_settings["xsrf_cookies"] is True
    assert app_settings["template_path"] == str(estate.root / "templates")
    assert "tornpay" not in app_settings
    # Our route names never replace the estate's in reverse_url.
    assert all(spec.name.startswith("tornpay") for spec in estate.tp.routes if spec.name)

    browser = Browser(http_client)
    r = await browser.fetch(base_url + "/")
    assert r.code == 200 and b"hello guest" in r.body

    # XSRF still guards the estate's own forms ...
    r = await browser.fetch(base_url + "/account", method="POST", body="name=mei")
    assert r.code == 403
    token = browser.cookies["_xsrf"]
    r = await browser.fetch(base_url + "/account", method="POST",
                            body=urlencode({"name": "mei", "_xsrf": token}))
    assert r.code == 200
    # ... and the estate's signed cookie uses the estate's secret.
    r = await browser.fetch(base_url + "/account")
    assert r.code == 200 and json.loads(r.body) == {"user": "mei"}
    r = await browser.fetch(base_url + "/")
    assert b"hello mei" in r.body

    # WeChat's server-to-server notify carries no XSRF token: refused on its
    # signature (XML FAIL), never with the estate's 403.
    r = await browser.fetch(base_url + "/pay/notify", method="POST",
                            body=b"<xml><return_code>SUCCESS</return_code></xml>")
    assert r.code == 200
    assert b"FAIL" in r.body

    # The estate owns its root: no tornpay shop at / and no /healthz there.
    r = await browser.fetch(base_url + "/healthz")
    assert r.code == 404


def test_prefix_is_one_source_of_truth(tmp_path):
    data = base_settings_dict(tmp_path, 8888)
    with pytest.raises(SettingsError, match="server.prefix"):
        tornpay.embed.resolve_settings(data, prefix="/pay", env={})
    with pytest.raises(SettingsError, match="prefix"):
        tornpay.embed.resolve_settings({}, prefix="/pay/", env={})

    del data["server"]["prefix"]
    settings = tornpay.embed.resolve_settings(data, prefix="/shop/pay", env={})
    assert settings.server.prefix == "/shop/pay"
    # The default success_url follows the mount point.
    assert settings.result_url("T1") == "/shop/pay/orders/T1/result"

    # A file works as well as a dict; Settings objects are moved, not mutated.
    import yaml

    path = tmp_path / "settings.yaml"
    path.write_text(yaml.safe_dump(data))
    from_file = tornpay.embed.resolve_settings(str(path), prefix="/pay", env={})
    assert from_file.server.prefix == "/pay"
    moved = tornpay.embed.resolve_settings(from_file, prefix="/elsewhere")
    assert moved.server.prefix == "/elsewhere" and from_file.server.prefix == "/pay"


@pytest.mark.slow
def test_documented_example_estate_runs(tmp_path):
    doc = (pathlib.Path(__file__).resolve().parent.parent / "docs" / "embedding.md").read_text()
    blocks = re.findall(r"```\w*\n(.*?)```", doc, flags=re.S)
    (tmp_path / "estate.py").write_text(next(b for b in blocks if b.startswith("# estate.py")))
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "home.html").write_text(
        next(b for b in blocks if b.startswith("<!-- templates/home.html -->")))
    sock, port = bind_unused_port()
    sock.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TORNPAY_")}
    env["PORT"] = str(port)
    base = f"http://127.0.0.1:{port}"
    with open(tmp_path / "estate.log", "w+") as log, \
            running([sys.executable, "estate.py"], tmp_path, env, log) as proc:
        status = _wait_for(base + "/", proc)
        assert status == 200, log_tail(log)

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):
                return None

        opener = urllib.request.build_opener(NoRedirect)
        with pytest.raises(urllib.error.HTTPError) as redirect:
            # WeChat's browser: JSAPI, so the OAuth redirect (SPEC §9).
            opener.open(urllib.request.Request(
                base + "/pay/checkout/coach-101",
                headers={"User-Agent": "Mozilla/5.0 MicroMessenger/8.0.47"}), timeout=5)
        location = redirect.value.headers["Location"]
        redirect.value.close()
        assert redirect.value.code == 302
        assert location.startswith(base + "/_sim/connect/oauth2/authorize?")
        with urllib.request.urlopen(base + "/pay/healthz", timeout=5) as response:
            assert response.status == 200


def _wait_for(url, proc, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status
        except (OSError, urllib.error.HTTPError):
            time.sleep(0.1)
    return None
