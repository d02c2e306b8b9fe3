#!/usr/bin/env bash
# Build dist/tornpay.pyz: tornpay, every dependency and the PostgreSQL driver
# (psycopg2-binary, the [postgres] extra) in one runnable file (shiv).
#
#   scripts/build_zipapp.sh [OUTPUT]        (default dist/tornpay.pyz)
#   ./dist/tornpay.pyz serve --settings settings.yaml
#
# pycurl, cryptography, cffi, PyYAML and psycopg2-binary are binary wheels: the file runs on the
# platform (OS, CPU) and Python minor version it was built with, nowhere else.
# At first start shiv unpacks into ~/.shiv (or $SHIV_ROOT); templates and
# static files are served from there. A merchant's plugin module is loaded
# from the directory of the settings file (plugins: [myshop_plugin] with
# myshop_plugin.py beside settings.yaml), no PYTHONPATH needed.
#
# PYTHON picks the interpreter (default: .venv/bin/python, else python3); shiv
# must be installed in it (pip install -e '.[dist]').
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${1:-$ROOT/dist/tornpay.pyz}"
case "$OUT" in /*) ;; *) OUT="$(pwd)/$OUT" ;; esac

PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then PY="$ROOT/.venv/bin/python"; else PY=python3; fi
fi
if ! "$PY" -m shiv --version >/dev/null 2>&1; then
  echo "build_zipapp: shiv is not installed for $PY; run: $PY -m pip install 'shiv>=1,<2'" >&2
  exit 3
fi
PYVER="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"

# Build from a clean copy: a stale build/ folder in the checkout would put
# deleted modules back into the wheel, and two builds must not share it.
SRC="$(mktemp -d "${TMPDIR:-/tmp}/tornpay-zipapp.XXXXXX")"
trap 'rm -rf "$SRC"' EXIT
tar -C "$ROOT" --exclude=./.git --exclude=./.venv --exclude=./build --exclude=./dist \
  --exclude='*.egg-info' --exclude=__pycache__ --exclude=.pytest_cache --exclude='*.db' \
  --exclude='*.db-wal' --exclude='*.db-shm' --exclude='*.pyz' -cf - . | tar -C "$SRC" -xf -

mkdir -p "$(dirname "$OUT")"
echo "build_zipapp: building $OUT for Python $PYVER on $(uname -sm)"
# The shebang names the minor version: the binary wheels inside need exactly it.
"$PY" -m shiv --console-script tornpay --output-file "$OUT" \
  --python "/usr/bin/env python$PYVER" --disable-pip-version-check "$SRC[postgres]"
echo "build_zipapp: done: $OUT ($(du -h "$OUT" | cut -f1))"
