"""`make dist` builds one runnable file that serves (templates, static) and stops on SIGTERM."""

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
import yaml

from proc_helpers import free_port, log_tail, running

from conftest import base_settings_dict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "scripts", "build_zipapp.sh")
BUILD_TIMEOUT = 300  # seconds; a warm pip cache builds in about 10

pytestmark = pytest.mark.slow


def _get(url, timeout=2.0):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture(scope="module")
def pyz(tmp_path_factory):
    if subprocess.run([sys.executable, "-m", "shiv", "--version"],
                      capture_output=True).returncode != 0:
        pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "shiv>=1,<2"],
                             capture_output=True, text=True, timeout=180)
        if pip.returncode != 0:
            pytest.skip(f"shiv is not installed and cannot be installed: {pip.stderr[-300:]}")
    out = tmp_path_factory.mktemp("dist") / "tornpay.pyz"
    build = subprocess.run(["bash", SCRIPT, str(out)], env=dict(os.environ, PYTHON=sys.executable),
                           capture_output=True, text=True, timeout=BUILD_TIMEOUT)
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    assert out.exists() and os.access(out, os.X_OK)
    return out


def test_zipapp_serves_and_stops_cleanly(pyz, tmp_path):
    port = free_port()
    settings = base_settings_dict(tmp_path, port)
    settings["server"]["shop_page"] = True
    path = tmp_path / "settings.yaml"
    path.write_text(yaml.safe_dump(settings))
    workdir = tmp_path / "run"  # not the checkout: nothing may come from the source tree
    workdir.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TORNPAY_", "PYTHON"))}
    env["SHIV_ROOT"] = str(tmp_path / "shiv")
    with open(tmp_path / "server.log", "w+") as log:
        _serve_and_stop(pyz, path, workdir, env, port, tmp_path, log)
        assert "stopped" in log_tail(log)


def _serve_and_stop(pyz, path, workdir, env, port, tmp_path, log):
    base = f"http://127.0.0.1:{port}"
    with running([str(pyz), "serve", "--settings", str(path)], workdir, env, log) as proc:
        _wait_healthy(proc, base, log)
        status, body = _get(base + "/")
        assert status == 200 and b"coach-101" in body and b"Pay with WeChat" in body
        status, css = _get(base + "/wxpay/static/tornpay.css")
        assert status == 200 and len(css) > 0
        status, js = _get(base + "/_sim/jsbridge.js")
        assert status == 200 and b"WeixinJSBridge" in js
        status, metrics = _get(base + "/metrics")
        assert status == 200 and b"tornpay_orders" in metrics
        # The code runs from the unpacked zipapp, not from this checkout.
        assert any((tmp_path / "shiv").iterdir())


PLUGIN = '''"""A merchant's plugin that lives beside settings.yaml, not on PYTHONPATH."""
import os

open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "plugin-loaded"), "w").close()


def resolve_product(product_id, openid):
    if product_id == "myshop-1":
        return {"body": "Beside the settings", "total_fee": 300}
    return None
'''


@pytest.mark.postgres
def test_zipapp_runs_on_postgresql_with_a_plugin_beside_its_settings(pyz, tmp_path):
    from proc_helpers import PG_ENV, pg_schema

    if not os.environ.get(PG_ENV):
        pytest.skip(f"{PG_ENV} is not set: the zipapp's PostgreSQL run needs a server")
    with pg_schema() as url:
        _run_on_postgres(pyz, tmp_path, url)


def _run_on_postgres(pyz, tmp_path, url):
    import tornado.web

    srv = tmp_path / "srv"  # settings.yaml and the plugin, side by side
    srv.mkdir()
    (srv / "myshop_plugin.py").write_text(PLUGIN)
    port = free_port()
    settings = base_settings_dict(srv, port)
    settings["database"]["url"] = url
    settings["plugins"] = ["tornpay.plugins.catalog", "myshop_plugin"]
    path = srv / "settings.yaml"
    path.write_text(yaml.safe_dump(settings))
    workdir = tmp_path / "run"
    workdir.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TORNPAY_", "PYTHON"))}
    env["SHIV_ROOT"] = str(tmp_path / "shiv")
    base = f"http://127.0.0.1:{port}"
    with open(tmp_path / "server.log", "w+") as log, \
            running([str(pyz), "serve", "--settings", str(path)], workdir, env, log) as proc:
        _wait_healthy(proc, base, log)
        assert (srv / "plugin-loaded").exists()
        status, metrics = _get(base + "/metrics")
        assert status == 200 and b"tornpay_database_up 1.0" in metrics
        cookie = tornado.web.create_signed_value(
            settings["server"]["cookie_secret"], "tornpay_openid", "o-zipapp").decode()
        request = urllib.request.Request(base + "/wxpay/checkout/myshop-1",
                                         headers={"Cookie": f"tornpay_openid={cookie}"})
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            opener.open(request, timeout=10)
            raise AssertionError("checkout did not redirect")
        except urllib.error.HTTPError as exc:
            assert exc.code == 303, log_tail(log)
            out_trade_no = exc.headers["Location"].rstrip("/").rsplit("/", 1)[-1]
    shown = subprocess.run([str(pyz), "orders", "show", out_trade_no, "--settings", str(path)],
                           cwd=workdir, env=env, capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert "myshop-1" in shown.stdout and "300" in shown.stdout


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _wait_healthy(proc, base, log):
    deadline = time.monotonic() + 60  # first start unpacks into SHIV_ROOT
    status = None
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            status, _ = _get(base + "/healthz")
        except OSError:
            status = None
        if status == 200:
            return
        time.sleep(0.2)
    raise AssertionError(f"never healthy ({status}):\n{log_tail(log)}")
