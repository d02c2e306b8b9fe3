"""Installed, all is under ``tornpay``: an estate with its own handlers/plugins can embed us."""

import subprocess
import sys
import textwrap


def test_estate_packages_do_not_clash(tmp_path):
    for name in ("handlers", "plugins"):
        pkg = tmp_path / name
        pkg.mkdir()
        (pkg / "__init__.py").write_text(f"ESTATE = '{name}'\n")
    script = textwrap.dedent("""
        import handlers, plugins
        import tornpay.handlers, tornpay.plugins, tornpay.templates
        assert handlers.ESTATE == 'handlers' and plugins.ESTATE == 'plugins'
        assert hasattr(tornpay.handlers, 'routes')
        assert hasattr(tornpay.plugins, 'hookimpl')
        print('ok')
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
