"""Shared pieces of the benchmark: processes, /proc readings, settings files, load runners."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from typing import Dict, List, Optional

import yaml

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH_DIR)
PYTHON = sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")

APPID, MCH_ID = "wxd930ea5d5a258f4f", "10000100"
# Not the shipped test values: the server starts with the simulator disabled.
APP_SECRET, API_KEY = "bench-app-secret", "bench" * 6 + "12"
COOKIE_SECRET = "bench-cookie-secret-0123456789abcdef"
OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"  # the simulator's first test user
PRODUCT_ID, TOTAL_FEE = "coach-101", 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_settings(tmp: str, port: int, sim_url: str, db_name: str, plugins: List[str]) -> str:
    """A settings file for one bench server: SQLite in ``tmp``, simulator off, WeChat at sim_url."""
    data = {
        "server": {"address": "127.0.0.1", "port": port, "public_url": f"http://127.0.0.1:{port}",
                   "cookie_secret": COOKIE_SECRET, "shop_page": False},
        "wechat": {"appid": APPID, "app_secret": APP_SECRET, "mch_id": MCH_ID,
                   "api_key": API_KEY, "pay_api_base": sim_url, "oauth_api_base": sim_url,
                   "oauth_authorize_url": sim_url + "/connect/oauth2/authorize"},
        "database": {"url": db_name if "://" in db_name else f"sqlite:///{tmp}/{db_name}"},
        # Nothing in the bench is older than an hour: the reconciler stays idle.
        # One payer makes every checkout, and each must be a new order: no limits, no reuse.
        "orders": {"reconcile_after_seconds": 3600, "max_open_per_payer": 0, "max_open_per_ip": 0, "reuse_open_order": False},
        "simulator": {"enabled": False},
        "plugins": plugins,
        "catalog": {"products": {PRODUCT_ID: {"body": "Private coaching, 1 hour",
                                              "total_fee": TOTAL_FEE}}},
    }
    path = os.path.join(tmp, f"settings-{port}.yaml")
    with open(path, "w") as fh:
        yaml.safe_dump(data, fh)
    return path


def _cpu_split():
    # With two or more CPUs the server under test gets one of its own and the
    # simulator and the load generator share the rest, so neither steals the
    # server's core and figures within a run compare like with like.
    if os.environ.get("BENCH_NO_PIN"):  # as a harness that pins nothing would see it
        return None, None
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None, None
    if len(cpus) < 2:
        return None, None
    return {cpus[0]}, set(cpus[1:])


SERVER_CPUS, HELPER_CPUS = _cpu_split()


def pin_description() -> str:
    if SERVER_CPUS is None:
        return "processes not pinned (BENCH_NO_PIN, or one CPU)"
    return (f"server pinned to CPU {sorted(SERVER_CPUS)}, simulator and load generator to "
            f"CPU {sorted(HELPER_CPUS)}")


def _pin(cpus):
    return (lambda: os.sched_setaffinity(0, cpus)) if cpus else None


class Proc:
    """A child process with its log in the temp dir, CPU and memory read from /proc."""

    def __init__(self, name: str, argv: List[str], tmp: str, env: Optional[Dict] = None,
                 cpus=None):
        self.name = name
        self.log_path = os.path.join(tmp, f"{name}.log")
        self._log = open(self.log_path, "wb")
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.popen = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT,
                                      env=full_env, cwd=REPO, start_new_session=True,
                                      preexec_fn=_pin(cpus))
        self.pid = self.popen.pid

    def cpu_seconds(self) -> float:
        """utime + stime of the process so far (fields 14 and 15 of /proc/PID/stat)."""
        return sum(self.cpu_times())

    def cpu_times(self):
        """(utime, stime) of the process so far: user space, and the kernel's work for it."""
        with open(f"/proc/{self.pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK

    def status(self, key: str) -> int:
        """A kB figure from /proc/PID/status (VmHWM, VmRSS)."""
        with open(f"/proc/{self.pid}/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        return 0

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self._log.close()

    def tail(self, n: int = 20) -> str:
        try:
            with open(self.log_path, "rb") as fh:
                return b"\n".join(fh.read().splitlines()[-n:]).decode("utf-8", "replace")
        except OSError:
            return ""


def stop_all(*procs: Optional[Proc]) -> None:
    """Stop every process that was started (None: never started)."""
    for proc in procs:
        if proc is not None:
            proc.stop()


def wait_http(url: str, proc: Proc, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited:\n{proc.tail()}")
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except Exception:
            time.sleep(0.05)
    raise RuntimeError(f"{proc.name} never answered {url}:\n{proc.tail()}")


def post_json(url: str, data: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(data).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as reply:
        return json.loads(reply.read() or b"{}")


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def run_load(url: str, *, connections: int, duration: float, tmp: str, name: str,
             method: str = "GET", bodies: Optional[str] = None,
             headers: Optional[Dict[str, str]] = None, use_wrk: bool = True,
             threads: int = 1) -> dict:
    """Load ``url`` from another process; return requests/s, p50/p99 (ms), errors, sent.

    With wrk (C, keep-alive, one thread on the second core) when installed,
    else bench/loadgen.py (asyncio, raw HTTP/1.1 keep-alive, its own process).
    """
    headers = dict(headers or {})
    threads = max(1, min(threads, connections))
    if use_wrk:
        script = os.path.join(BENCH_DIR, "notify.lua" if bodies else "report.lua")
        argv = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(duration))}s",
                "--timeout", "30s", "-s", script]
        for key, value in headers.items():
            argv += ["-H", f"{key}: {value}"]
        env = dict(os.environ, BODIES=bodies or "", WRK_THREADS=str(threads))
    else:
        argv = [PYTHON, os.path.join(BENCH_DIR, "loadgen.py"), url, "--connections",
                str(connections), "--duration", str(duration), "--method", method,
                "--processes", str(threads)]
        if bodies:
            argv += ["--bodies", bodies]
        for key, value in headers.items():
            argv += ["--header", f"{key}: {value}"]
        env = dict(os.environ)
    if use_wrk:
        argv.append(url)
    out = subprocess.run(argv, capture_output=True, env=env, timeout=duration + 120,
                         preexec_fn=_pin(HELPER_CPUS))
    text = out.stdout.decode("utf-8", "replace")
    with open(os.path.join(tmp, f"load-{name}.txt"), "w") as fh:
        fh.write(" ".join(argv) + "\n" + text + out.stderr.decode("utf-8", "replace"))
    line = next((ln for ln in text.splitlines() if ln.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"load generator failed ({out.returncode}):\n{text}\n"
                           f"{out.stderr.decode('utf-8', 'replace')}")
    raw = json.loads(line[len("WRKJSON "):])
    seconds = raw["duration_us"] / 1e6
    errors = raw["non2xx"] + raw["connect"] + raw["read"] + raw["write"] + raw["timeout"]
    return {
        "requests": raw["requests"], "seconds": seconds,
        "rps": raw["requests"] / seconds if seconds else 0.0,
        "p50_ms": raw["p50_us"] / 1000, "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000, "errors": errors, "error_detail": raw,
        "sent": raw.get("sent", []), "threads": threads, "tool": "wrk" if use_wrk else "loadgen",
    }
