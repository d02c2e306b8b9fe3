"""The architecture rules, checked on the source (AST): who writes states, who imports what, sizes."""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PRODUCT = ("tornpay", "handlers", "plugins")
STATE_MACHINE = "tornpay/orders/transitions.py"
# Its compiled statements: part of the state machine, run by it alone (checked below).
STATE_MACHINE_SQL = "tornpay/orders/transition_sql.py"
# A state and the columns that go with it: only the state machine writes them.
GUARDED = {
    "Order": {"state", "prepay_id", "prepay_at", "transaction_id", "time_end", "bank_type",
              "cash_fee", "paid_at", "close_reason", "close_at_wechat_after", "refunded_fee",
              "reserved_refund_fee"},
    "Refund": {"state", "refund_id", "success_time"},
}
WRITES = {"update", "create", "insert", "insert_many", "replace", "get_or_create"}


def product_files(*parts):
    """Every product module (or those under ``parts``), as paths relative to the root."""
    for top in parts or PRODUCT:
        for path in sorted((ROOT / top).rglob("*.py")):
            yield path.relative_to(ROOT).as_posix()


def parse(rel, source=None):
    if source is None:
        source = (ROOT / rel).read_text(encoding="utf-8")
    return ast.parse(source, filename=rel)


def _written_columns(call: ast.Call, model: str):
    names = {kw.arg for kw in call.keywords if kw.arg}
    for arg in call.args:
        if isinstance(arg, ast.Dict):
            for key in arg.keys:
                if isinstance(key, ast.Attribute) and isinstance(key.value, ast.Name) \
                        and key.value.id == model:
                    names.add(key.attr)
                elif isinstance(key, ast.Constant) and isinstance(key.value, str):
                    names.add(key.value)
    return names & GUARDED[model]


def state_writes(rel, source=None):
    """``(line, model, columns)`` for each write of a guarded column in one module."""
    found = []
    for node in ast.walk(parse(rel, source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in WRITES and isinstance(node.func.value, ast.Name) \
                and node.func.value.id in GUARDED:
            columns = _written_columns(node, node.func.value.id)
            if columns:
                found.append((node.lineno, node.func.value.id, sorted(columns)))
        if isinstance(node, (ast.Assign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) \
                        and target.value.id in ("order", "refund") \
                        and target.attr in GUARDED[target.value.id.title()]:
                    found.append((node.lineno, target.value.id, [target.attr]))
    return sorted(found)


def test_only_the_state_machine_writes_states_and_their_columns():
    # Storage's migration steps rewrite old rows once; the simulator keeps its own state.
    skipped = ("tornpay/storage/", "tornpay/simulator/")
    offenders = [f"{rel}:{line} writes {model}.{','.join(cols)}"
                 for rel in product_files() if rel not in (STATE_MACHINE, STATE_MACHINE_SQL)
                 and not rel.startswith(skipped)
                 for line, model, cols in state_writes(rel)]
    assert offenders == []


def test_the_state_scan_sees_the_writes_it_forbids():
    # The rule above would pass vacuously if the scan saw nothing: it must see these.
    source = ("Order.update(state='PAID').execute()\n"
              "Refund.update({Refund.state: 'SUCCESS'})\n"
              "order.refunded_fee += 1\n"
              "Order.update(last_error='ok')\n")
    assert state_writes("x.py", source) == [(1, "Order", ["state"]), (2, "Refund", ["state"]),
                                            (3, "order", ["refunded_fee"])]
    assert state_writes(STATE_MACHINE) != []
    assert state_writes(STATE_MACHINE_SQL) != []


def test_only_the_state_machine_runs_its_statements():
    name = STATE_MACHINE_SQL[:-3].replace("/", ".")
    users = [rel for rel in product_files()
             if any(n == name or n.startswith(name + ".") for n in imported_modules(rel))]
    assert users == [STATE_MACHINE]


def test_the_state_machine_tables_cover_every_state():
    from tornpay.orders import transitions
    from tornpay.storage.models import ORDER_STATES, OrderState, RefundState

    reached = {s for _, ends in transitions.ORDER_TRANSITIONS.values() for s in ends}
    assert reached | {OrderState.CREATED} == set(ORDER_STATES)
    refund_states = {v for k, v in vars(RefundState).items() if k.isupper()}
    reached = {s for _, ends in transitions.REFUND_TRANSITIONS.values() for s in ends}
    assert reached == refund_states


@pytest.mark.parametrize("rel", list(product_files()))
def test_module_has_a_docstring(rel):
    assert ast.get_docstring(parse(rel)) or not (ROOT / rel).read_text().strip(), rel


def imported_modules(rel, source=None):
    """Every module name one module imports (absolute; relative imports resolved)."""
    package = rel[:-3].replace("/", ".").rsplit(".", 1)[0]
    names = set()
    for node in ast.walk(parse(rel, source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def test_no_handler_imports_storage():
    offenders = [f"{rel} imports {name}" for rel in product_files("handlers")
                 for name in sorted(imported_modules(rel))
                 if name == "tornpay.storage" or name.startswith("tornpay.storage.")]
    assert offenders == []
    assert "tornpay.storage.models" in imported_modules(
        "x/y.py", "from tornpay.storage.models import Order\n")


MAX_MODULE_LINES, MAX_FUNCTION_LINES = 300, 60


def test_modules_and_functions_stay_small():
    too_big = []
    for rel in product_files():
        source = (ROOT / rel).read_text(encoding="utf-8")
        if len(source.splitlines()) > MAX_MODULE_LINES:
            too_big.append(f"{rel}: {len(source.splitlines())} lines")
        for node in ast.walk(parse(rel, source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_big.append(f"{rel}:{node.lineno} {node.name}() {length} lines")
    assert too_big == []


# What must never point where (docs/ARCHITECTURE.md, "Arrows").
_MERCHANT_SIDE = ("tornpay.orders", "tornpay.storage", "tornpay.handlers", "tornpay.context",
                  "tornpay.app", "tornpay.bills", "tornpay.console", "tornpay.hooks",
                  "tornpay.plugins", "plugins")
FORBIDDEN_ARROWS = {
    # The protocol layer is pure: signing, XML, the WeChat clients; no core, storage, handlers.
    "tornpay/protocol/": _MERCHANT_SIDE + ("tornpay.simulator",),
    # Storage knows tables and SQL, never what the core or the handlers do with them.
    "tornpay/storage/": ("tornpay.orders", "tornpay.handlers", "tornpay.context", "tornpay.app",
                         "tornpay.bills", "tornpay.console", "tornpay.hooks"),
    # The simulator plays WeChat: it knows nothing of the merchant side.
    "tornpay/simulator/": _MERCHANT_SIDE,
    # The gateways translate between the core and WeChat: protocol below, nothing above.
    "tornpay/gateway/": ("tornpay.orders", "tornpay.storage", "tornpay.handlers",
                         "tornpay.context", "tornpay.app", "tornpay.console", "tornpay.hooks"),
    # Plugins see events (frozen views), not requests.
    "plugins/": ("tornpay.handlers", "tornado.web", "tornado.httputil"),
    # The core knows no handlers and no composition root.
    "tornpay/orders/": ("tornpay.handlers", "tornpay.context", "tornpay.app"),
    "tornpay/bills/": ("tornpay.handlers", "tornpay.context", "tornpay.app"),
    "tornpay/console/": ("tornpay.handlers", "tornpay.app"),
}


def forbidden_imports(rel, source=None):
    banned = [b for prefix, names in FORBIDDEN_ARROWS.items() if rel.startswith(prefix)
              for b in names]
    return sorted(f"{rel} imports {name}" for name in imported_modules(rel, source)
                  for b in banned if name == b or name.startswith(b + "."))


def test_no_arrow_points_where_it_must_not():
    assert [line for rel in product_files() for line in forbidden_imports(rel)] == []
    # And the check sees what it forbids.
    assert forbidden_imports("tornpay/protocol/x.py", "from tornpay.storage import db\n") == [
        "tornpay/protocol/x.py imports tornpay.storage",
        "tornpay/protocol/x.py imports tornpay.storage.db"]


def test_no_handler_names_a_plugin():
    # Handlers reach plugins only through hooks and the core (orders/pages.result_note).
    offenders = [rel for rel in product_files("handlers")
                 if "tornpay.plugins" in (ROOT / rel).read_text(encoding="utf-8")
                 or any(n.startswith(("plugins", "tornpay.plugins")) for n in imported_modules(rel))]
    assert offenders == []


def test_test_helpers_have_one_import_name():
    # "tests.flow_helpers" and "flow_helpers" would be two modules with two states.
    offenders = [f"{path.name} imports {name}" for path in sorted((ROOT / "tests").glob("*.py"))
                 for name in imported_modules(f"tests/{path.name}")
                 if name == "tests" or name.startswith("tests.")]
    assert offenders == []


def test_one_logger_name():
    # Module loggers are called ``logger`` everywhere (not ``log``): one name to grep for.
    offenders = [f"{rel}:{node.lineno}" for rel in product_files() for node in parse(rel).body
                 if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
                 and ast.unparse(node.value.func) == "logging.getLogger"
                 and [ast.unparse(t) for t in node.targets] != ["logger"]
                 and not ast.unparse(node.targets[0]).endswith("_log")]
    assert offenders == []


# A context declares what it has (tornpay/interfaces.py; the simulator's SimulatorState,
# its ``state``, likewise): code never probes one with getattr/hasattr.
CONTEXT_NAMES = {"ctx", "context", "state"}


def context_probes(rel, source=None):
    """``(line, call)`` for each ``getattr``/``hasattr`` on a context (``ctx``, ``self.ctx``...)."""
    found = []
    for node in ast.walk(parse(rel, source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id in ("getattr", "hasattr") and node.args:
            target = node.args[0]
            name = target.id if isinstance(target, ast.Name) else \
                target.attr if isinstance(target, ast.Attribute) else None
            if name in CONTEXT_NAMES:
                found.append((node.lineno, ast.unparse(node)))
    return found


def test_no_code_probes_a_context():
    offenders = [f"{rel}:{line} {call}" for rel in product_files()
                 for line, call in context_probes(rel)]
    assert offenders == []
    # And the scan sees what it forbids.
    source = ("a = getattr(ctx, 'reconciler', None)\n"
              "b = hasattr(self.ctx, 'db_health')\n"
              "c = getattr(self.metrics.ctx, 'db', None)\n"
              "d = getattr(order, 'appid', '')\n"
              "e = getattr(self.state, 'h5native', None)\n")
    assert [line for line, _ in context_probes("x.py", source)] == [1, 2, 3, 5]
