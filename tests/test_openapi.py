"""docs/openapi.yaml describes exactly the JSON API's routes, methods and error codes."""

import inspect
import pathlib
import re

import tornado.web
import yaml

from tornpay import errors
from tornpay.handlers import api
from tornpay.handlers.pay import OUT_TRADE_NO
from tornpay.settings_schema import SCHEMA

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"
SPEC = yaml.safe_load((DOCS / "openapi.yaml").read_text())


def route_paths():
    """{openapi path: handler class} from the module's default_handlers."""
    out = {}
    for pattern, handler, _name in api.default_handlers:
        path = pattern.replace(OUT_TRADE_NO, "{out_trade_no}")
        out[path] = handler
    return out


def handler_methods(handler):
    base = tornado.web.RequestHandler
    return {m.lower() for m in base.SUPPORTED_METHODS
            if getattr(handler, m.lower()) is not getattr(base, m.lower())}


def test_paths_and_methods_match_the_routes():
    routes = route_paths()
    assert set(SPEC["paths"]) == set(routes)
    for path, handler in routes.items():
        assert set(SPEC["paths"][path]) - {"parameters"} == handler_methods(handler), path
    assert SPEC["servers"][0]["url"] == SCHEMA["server"]["prefix"].default


def test_every_error_code_is_documented():
    raised = {cls.code for _, cls in inspect.getmembers(errors, inspect.isclass)
              if issubclass(cls, errors.TornpayError) and cls is not errors.TornpayError}
    source = inspect.getsource(api)
    raised |= set(re.findall(r'ApiError\(\d+, "(\w+)"', source))
    raised |= set(re.findall(r'"code": "(\w+)"', source))
    documented = set(SPEC["components"]["schemas"]["Error"]["properties"]["error"]
                     ["properties"]["code"]["enum"])
    assert documented == raised
    for code in ("unknown_product", "trade_type_not_enabled", "not_owner", "wechat_error",
                 "too_many_open_orders"):
        assert code in documented


def test_every_reference_resolves():
    text = (DOCS / "openapi.yaml").read_text()
    for ref in re.findall(r'\$ref: "#/([^"]+)"', text):
        node = SPEC
        for part in ref.split("/"):
            node = node[part]
        assert node, ref


def test_the_package_is_typed():
    import configparser

    import tornpay

    root = pathlib.Path(tornpay.__file__).resolve().parent
    assert (root / "py.typed").is_file()
    cfg = configparser.ConfigParser()
    cfg.read(DOCS.parent / "setup.cfg")
    assert "py.typed" in cfg["options.package_data"]["tornpay"]
    assert "include tornpay/py.typed" in (DOCS.parent / "MANIFEST.in").read_text()
    from tornpay.pyapi import OrderAPI

    for name in ("create_order", "get_order", "query", "close", "cancel", "refund"):
        method = getattr(OrderAPI, name)
        assert inspect.iscoroutinefunction(method) and "return" in method.__annotations__
