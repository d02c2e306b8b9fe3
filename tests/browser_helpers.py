"""Helpers for the browser tests: a real server process, headless Chromium, screenshots."""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import yaml

from proc_helpers import free_port, suite_database_url  # noqa: F401  (free_port re-exported)
from tornpay.simulator.clientcert import TEST_CERT, TEST_KEY

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARTIFACTS = os.path.join(ROOT, "test-artifacts", "browser")
DOC_SHOTS = os.path.join(ROOT, "docs", "screenshots")
ALICE = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
# Root needs --no-sandbox; the rest keep Chromium from calling home on a closed network.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]
MOBILE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
# SPEC §9 picks the trade type from the user agent: these three browsers get JSAPI, MWEB, NATIVE.
PHONE_UA = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/120.0.0.0 Mobile Safari/537.36")
WECHAT_UA = PHONE_UA + " XWEB/1160065 MMWEBSDK/20231202 MicroMessenger/8.0.47.2560 WeChat/arm64"
DESKTOP_UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/120.0.0.0 Safari/537.36")
WAIT_MS = 15_000  # any one thing the page must do; generous for a slow CI machine


def browser_marks(pytest):
    """The marks of a browser test module: browser, slow, skipped without Chromium."""
    return [pytest.mark.browser, pytest.mark.slow,
            pytest.mark.skipif(chromium_path() is None,
                               reason="no Chromium binary (set TORNPAY_CHROMIUM or apt-get "
                                      "install chromium chromium-driver; .ci/run does)")]


def playwright_expect(pytest):
    """Playwright's ``expect``, each wait up to WAIT_MS; the module is skipped where the test
    extra is not installed."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the test extra")
    sync_api.expect.set_options(timeout=WAIT_MS)
    return sync_api.expect


def chromium_path():
    """The Chromium binary to drive, or None when this machine has none."""
    for candidate in (os.environ.get("TORNPAY_CHROMIUM"), "/usr/bin/chromium",
                      shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def write_settings(directory, port: int, simulator=None, wechat=None) -> str:
    """A settings file like the shipped one, on its own port and SQLite file, notifies fast."""
    sim = {"enabled": True, "notify_time_scale": 0.01}
    sim.update(simulator or {})
    data = {
        "server": {"address": "127.0.0.1", "port": port,
                   "public_url": f"http://127.0.0.1:{port}", "prefix": "/wxpay",
                   "cookie_secret": "browser-test-cookie-secret-0123456789",
                   "shop_page": True, "log_level": "WARNING"},
        "wechat": {"appid": "wxd930ea5d5a258f4f", "app_secret": "tornpay-simulator-app-secret",
                   "mch_id": "10000100", "api_key": "192006250b4c09247ec02edce69f6a2d",
                   "timeout": 5, "cert_file": TEST_CERT, "key_file": TEST_KEY},
        "database": {"url": database_url(directory)},
        "orders": {"reconcile_after_seconds": 3600},
        "deliveries": {"first_retry_seconds": 0.1, "max_retry_seconds": 0.5,
                       "poll_interval_seconds": 0.1},
        "simulator": sim,
        "plugins": ["tornpay.plugins.catalog", "tornpay.plugins.booking"],
        "catalog": {"products": {
            "coach-101": {"body": "Private coaching, 1 hour", "total_fee": 1},
            "coach-205": {"body": "Group clinic, 2 hours", "total_fee": 9900},
        }},
    }
    data["wechat"].update(wechat or {})  # e.g. the v3 keys and api_version
    path = os.path.join(str(directory), "settings.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(data, f)
    return path


def database_url(directory) -> str:
    """SQLite beside the settings; PostgreSQL (a schema of its own) in .ci/run's re-run."""
    if os.environ.get("TORNPAY_TEST_DB") == "postgres":
        return suite_database_url(directory)
    return f"sqlite:///{directory}/tornpay.db"


class Server:
    """``python server.py --settings FILE`` in a subprocess; output goes to a log file."""

    def __init__(self, directory, simulator=None, wechat=None):
        self.directory = str(directory)
        self.wechat = dict(wechat or {})
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.simulator = dict(simulator or {})  # may be changed before start()
        self.settings = os.path.join(self.directory, "settings.yaml")
        self.log_path = os.path.join(self.directory, "server.log")
        self.proc = None

    def start(self, timeout: float = 30.0) -> "Server":
        write_settings(self.directory, self.port, self.simulator, self.wechat)
        env = dict(os.environ)
        env.pop("PYTHONWARNINGS", None)
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "server.py"), "--settings", self.settings],
            cwd=self.directory, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}:\n{self.log()}")
            try:
                if self.get("/healthz")[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"server did not answer /healthz in {timeout}s:\n{self.log()}")

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout)
        if self.proc is not None:
            self._log.close()

    def log(self) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()[-6000:]
        except OSError:
            return ""

    def count_orders(self) -> int:
        conn = sqlite3.connect(os.path.join(self.directory, "tornpay.db"), timeout=5)
        try:
            return conn.execute("SELECT COUNT(*) FROM tornpay_order").fetchone()[0]
        finally:
            conn.close()

    def order_api_versions(self) -> list:
        conn = sqlite3.connect(os.path.join(self.directory, "tornpay.db"), timeout=5)
        try:
            return [r[0] for r in conn.execute("SELECT api_version FROM tornpay_order")]
        finally:
            conn.close()

    def get(self, path: str):
        with urllib.request.urlopen(self.base + path, timeout=10) as response:
            return response.status, response.read()

    def sim(self, method: str, action: str, **data) -> dict:
        """The simulator's control API (JSON), e.g. ``sim("GET", "orders")``."""
        body = json.dumps(data).encode() if method != "GET" else None
        req = urllib.request.Request(f"{self.base}/_sim/control/{action}", data=body,
                                     method=method, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"simulator {action}: HTTP {exc.code} {exc.read()!r}") from None


class Shots:
    """Numbered screenshots of one test under test-artifacts/browser/<test>/."""

    def __init__(self, test_name: str):
        self.dir = os.path.join(ARTIFACTS, test_name)
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir, exist_ok=True)
        self.n = 0
        self.saved = {}

    def take(self, page, name: str) -> str:
        self.n += 1
        path = os.path.join(self.dir, f"{self.n:02d}-{name}.png")
        page.screenshot(path=path)
        self.saved[name] = path
        return path

    def publish(self, names: dict) -> None:
        """Copy chosen shots to docs/screenshots/ when TORNPAY_UPDATE_SCREENSHOTS=1."""
        if os.environ.get("TORNPAY_UPDATE_SCREENSHOTS") != "1":
            return
        os.makedirs(DOC_SHOTS, exist_ok=True)
        for name, target in names.items():
            shutil.copyfile(self.saved[name], os.path.join(DOC_SHOTS, target))


class LoopbackGuard:
    """Record every request a browser context makes; refuse any that leaves 127.0.0.1."""

    def __init__(self, context):
        self.seen = []
        self.refused = []
        context.route("**/*", self._route)

    def _route(self, route):
        url = route.request.url
        self.seen.append(url)
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob", "about") or parts.hostname == "127.0.0.1":
            route.continue_()
        else:
            self.refused.append(url)
            route.abort()


def launch(playwright):
    return playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS,
                                      headless=True)
