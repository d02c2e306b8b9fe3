"""Every hook is documented in docs/plugins.md with its arguments, and has a test."""

import inspect
import pathlib
import re

import pytest

from tornpay.plugins import hookspecs
from tornpay.plugins.hookspecs import HOOK_NAMES

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
HEADINGS = re.findall(r"^#+ (.+)$", DOC, flags=re.M)
TESTS = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "tests").glob("*.py"))


def spec_signature(name):
    params = inspect.signature(getattr(hookspecs, name)).parameters
    return f"{name}({', '.join(params)})"


def test_hookspecs_declare_exactly_the_spec_hooks():
    declared = {n for n, f in vars(hookspecs).items()
                if callable(f) and hasattr(f, "tornpay_spec")}
    assert declared == set(HOOK_NAMES)


@pytest.mark.parametrize("name", HOOK_NAMES)
def test_hook_is_documented_with_its_arguments(name):
    assert spec_signature(name) in HEADINGS


@pytest.mark.parametrize("name", HOOK_NAMES)
def test_hookspec_docstring_states_the_contract(name):
    doc = getattr(hookspecs, name).__doc__
    for field in (":param", ":return:", ":sync/async:", ":raises:"):
        assert field in doc, f"{name} docstring lacks {field}"


@pytest.mark.parametrize("name", HOOK_NAMES)
def test_hook_has_a_test(name):
    assert re.search(rf"def test_hook_{name}\b|def test_hook_{name}_", TESTS), \
        f"no test_hook_{name}* test in tests/"
