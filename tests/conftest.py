"""Shared fixtures.

- ``tp_overrides``: a dict merged into the test settings (override it in a module).
- ``tp_settings_dict``: the plain settings dict of a test (SQLite in tmp_path,
  simulator on, public_url = this test's server, fast background intervals).
- ``api_version``: "v2" (default) or "v3": the generation new orders are made in.
- ``tp_settings``: the checked :class:`tornpay.settings.Settings` for it.
- ``recorder``, ``tp_plugins``: the plugins the test app registers (a module overrides one).
- ``app``: ``make_app(tp_settings)`` for pytest-tornado (``http_client``/``base_url``).
- ``ctx``: the app's :class:`tornpay.context.Context`.
- ``tp_make_settings``: a function building Settings from overrides, for tests that need several.
- ``chromium``: headless Chromium (Playwright), one per browser test module.
- ``spy``: records the argument of every call of an async method (``spy(obj, "name")``).
- ``exchanges``: the list of every OAuth code the app sends to WeChat's token endpoint.
"""

import copy

import pytest

from proc_helpers import suite_database_url
from tornpay.settings import settings_from_dict
from tornpay.simulator.clientcert import TEST_CERT, TEST_KEY

TEST_API_KEY = "192006250b4c09247ec02edce69f6a2d"
SHIPPED_APP_SECRET = "tornpay-simulator-app-secret"
# The shipped TEST-ONLY API v3 keys: every test app can finish v3 orders; ``api_version``
# (a fixture a test can parametrize) says which generation new orders are made in.
V3_TEST_KEYS = {
    "apiv3_key": "tornpay-simulator-apiv3-key-0032",
    "private_key_file": TEST_KEY,
    "cert_serial_no": "7E57000000000000000000000000000010000100",
    "wechatpay_public_key_file": TEST_KEY.replace("TEST-ONLY-merchant-10000100-key.pem",
                                                  "TEST-ONLY-wechatpay-public-key.pem"),
    "wechatpay_public_key_id": "PUB_KEY_ID_0110000100202601010000000001",
}
pytest_plugins = ["secret_scan"]  # fails the session if a log record shows a secret


def base_settings_dict(tmp_path, port):
    return {
        "server": {
            "address": "127.0.0.1",
            "port": port,
            "public_url": f"http://127.0.0.1:{port}",
            "prefix": "/wxpay",
            "cookie_secret": "test-cookie-secret-0123456789abcdef",
            "xheaders": True,
            # The tests that predate SPEC §9 read English pages; tests/test_languages.py
            # checks the shipped default (zh_CN) and both languages.
            "default_locale": "en_US",
        },
        "wechat": {
            "appid": "wxd930ea5d5a258f4f",
            "app_secret": SHIPPED_APP_SECRET,  # the simulator refuses real ones (SPEC §3)
            "mch_id": "10000100",
            "api_key": TEST_API_KEY,
            "sign_type": "MD5",
            "timeout": 5,
            # The shipped TEST-ONLY pair: the simulator's refunds demand a client certificate.
            "cert_file": TEST_CERT,
            "key_file": TEST_KEY,
            **V3_TEST_KEYS,
        },
        "database": {"url": suite_database_url(tmp_path)},
        # The tests that predate SPEC §9 play WeChat's browser whatever their user agent
        # (JSAPI only); the NATIVE/MWEB tests enable all three (tests/anybrowser_helpers.py).
        "orders": {"reconcile_after_seconds": 3600, "reconcile_interval_seconds": 0.2,
                   "trade_types": ["JSAPI"]},
        "deliveries": {"first_retry_seconds": 0.05, "max_retry_seconds": 0.2,
                       "timeout_seconds": 2, "poll_interval_seconds": 0.05},
        "simulator": {"enabled": True, "notify_time_scale": 0.001},
        "catalog": {"products": {"coach-101": {"body": "Private coaching, 1 hour",
                                               "total_fee": 1},
                                 "coach-205": {"body": "Group clinic", "total_fee": 9900}}},
    }


def merge(base, overrides):
    out = copy.deepcopy(base)
    for key, value in (overrides or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


@pytest.fixture
def tp_overrides():
    return {}


@pytest.fixture
def api_version():
    """The WeChat Pay API generation of new orders; parametrize it to run a test on both."""
    return "v2"


@pytest.fixture
def tp_settings_dict(tmp_path, http_port, tp_overrides, api_version):
    base = base_settings_dict(tmp_path, http_port)
    base["wechat"]["api_version"] = api_version
    return merge(base, tp_overrides)


@pytest.fixture
def tp_settings(tp_settings_dict):
    return settings_from_dict(tp_settings_dict, env={})


@pytest.fixture
def tp_make_settings(tmp_path, http_port):
    def make(overrides=None, env=None):
        return settings_from_dict(merge(base_settings_dict(tmp_path, http_port), overrides),
                                  env=env or {})
    return make


@pytest.fixture
def db(tmp_path):
    """A fresh tornpay database bound to the models (SQLite; PostgreSQL in the re-run)."""
    from helpers_orders import make_db

    return make_db(tmp_path)


@pytest.fixture
def recorder():
    """A recording plugin the test app registers: a module overrides this; none by default."""
    return None


@pytest.fixture
def tp_plugins(recorder):
    """Plugin objects the test app registers: a module overrides this (or ``recorder``), not
    ``app``."""
    return [] if recorder is None else [recorder]


@pytest.fixture
def app(tp_settings, io_loop, tp_plugins, request):
    from tornpay.app import make_app  # imported late: a broken app must not break unit tests

    application = make_app(tp_settings, plugins=tp_plugins)
    if request.node.get_closest_marker("hold_refunds"):
        # Refunds stay PROCESSING until a test finishes them through the control API.
        application.settings["tornpay"].simulator.config.refund_delay_seconds = None
    yield application
    io_loop.run_sync(application.settings["tornpay"].stop)


@pytest.fixture
def ctx(app):
    return app.settings["tornpay"]


@pytest.fixture(scope="module")
def chromium():
    """Headless Chromium for a browser test module (one per module; a test opens contexts)."""
    from browser_helpers import launch  # only the browser tests need it

    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the test extra")
    with sync_api.sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


@pytest.fixture
def spy(monkeypatch):
    """``spy(owner, "name")``: the list of arguments each call of that async one-argument
    method gets from now on (the method still runs)."""
    def install(owner, name):
        calls = []
        real = getattr(owner, name)

        async def recording(arg):
            calls.append(arg)
            return await real(arg)

        monkeypatch.setattr(owner, name, recording)
        return calls
    return install


@pytest.fixture
def exchanges(ctx, spy):
    """Every code tornpay sends to WeChat's token endpoint (to prove none was sent)."""
    return spy(ctx.oauth_client, "exchange_code")
