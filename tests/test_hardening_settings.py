"""Every range-checked setting, out of range at start, stops the process with one line naming it."""

import pytest
import yaml

from tests.conftest import base_settings_dict, merge
from tornpay.app import main
from tornpay.settings import SCHEMA, SettingsError, settings_from_dict

# Tried in order; the first that has the key's type and fails its check is used.
CANDIDATES = (-1, 70000, -0.5, 0, 0.001, "ftp://example.com", "wxpay/", "short", "TRACE",
              "SHA1", "k" * 31, ["https://host.example/"], "")
CHECKED = [(section, key) for section, keys in SCHEMA.items()
           for key, spec in keys.items() if spec.check is not None]


def bad_value(spec):
    for value in CANDIDATES:
        if spec.type is float and isinstance(value, int):
            value = float(value)
        if isinstance(value, spec.type) and spec.check(value):
            return value
    raise AssertionError("no out-of-range candidate for this key: add one to CANDIDATES")


@pytest.fixture
def settings_file(tmp_path):
    def write(section, key, value):
        data = merge(base_settings_dict(tmp_path, 8899), {section: {key: value}})
        path = tmp_path / "settings.yaml"
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        return str(path)
    return write


def test_every_checked_key_is_in_the_catalogue():
    # A new range check in SCHEMA gets its case automatically; this keeps it honest.
    assert len(CHECKED) >= 20
    for section, key in CHECKED:
        bad_value(SCHEMA[section][key])


@pytest.mark.parametrize("section, key", CHECKED, ids=[f"{s}.{k}" for s, k in CHECKED])
def test_out_of_range_value_stops_start_with_one_line_naming_the_key(
        settings_file, capsys, section, key):
    spec = SCHEMA[section][key]
    value = bad_value(spec)
    code = main(["--settings", settings_file(section, key, value)])
    out, err = capsys.readouterr()
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("tornpay: setting ") and f"{section}.{key}" in lines[0]
    if spec.secret and str(value):
        assert str(value) not in err  # even a wrong secret is never printed
    assert "Traceback" not in err and out == ""


@pytest.mark.parametrize("section, key", CHECKED, ids=[f"{s}.{k}" for s, k in CHECKED])
def test_out_of_range_value_from_environment_names_the_key(tmp_path, section, key):
    value = bad_value(SCHEMA[section][key])
    env = {f"TORNPAY_{section.upper()}_{key.upper()}": yaml.safe_dump(value).strip()
           .removesuffix("...").strip()}
    with pytest.raises(SettingsError) as info:
        settings_from_dict(base_settings_dict(tmp_path, 8899), env=env)
    assert f"{section}.{key}" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("section, key, value", [
    ("server", "port", "eighty"),
    ("server", "xheaders", "yes please"),
    ("orders", "expire_minutes", True),
    ("deliveries", "max_attempts", 2.5),
    ("simulator", "pay_directories", "/wxpay/pay/"),
], ids=["port_text", "xheaders_text", "expire_minutes_bool", "max_attempts_float",
        "pay_directories_not_list"])
def test_wrong_type_stops_start_with_one_line_naming_the_key(settings_file, capsys, section,
                                                             key, value):
    assert main(["--settings", settings_file(section, key, value)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"{section}.{key}" in err


def test_unknown_key_stops_start_with_one_line_naming_it(settings_file, capsys):
    assert main(["--settings", settings_file("orders", "expire_minuts", 5)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "orders.expire_minuts" in err


def test_negative_catalog_price_stops_start(settings_file, capsys):
    products = {"coach-101": {"body": "Coaching", "total_fee": -1}}
    assert main(["--settings", settings_file("catalog", "products", products)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "catalog.products.coach-101.total_fee" in err
