"""docs/api.md: its Mini Program example runs, and its error table matches the OpenAPI codes."""

import pathlib
import re

import pytest
import yaml

from api_helpers import MINI_APPID, MINI_OVERRIDES
from flow_helpers import ALICE
from tornpay.storage.models import Order

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"
TEXT = (DOCS / "api.md").read_text()


@pytest.fixture
def tp_overrides():
    return MINI_OVERRIDES


@pytest.mark.gen_test(timeout=30)
async def test_documented_miniprogram_example_pays(http_client, base_url):
    source = next(b for b in re.findall(r"```python\n(.*?)```", TEXT, flags=re.S)
                  if b.startswith("# miniprogram_test_example.py"))
    namespace = {}
    exec(compile(source, "miniprogram_test_example.py", "exec"), namespace)
    number = await namespace["pay_as_a_mini_program"](http_client, base_url, MINI_APPID, ALICE,
                                                      "coach-205")
    row = Order.get_by_id(number)
    assert (row.state, row.appid, row.total_fee) == ("PAID", MINI_APPID, 9900)


def test_error_table_matches_openapi():
    spec = yaml.safe_load((DOCS / "openapi.yaml").read_text())
    codes = set(spec["components"]["schemas"]["Error"]["properties"]["error"]["properties"]
                ["code"]["enum"])
    table = set(re.findall(r"^\| \d{3} \| `(\w+)` \|", TEXT, flags=re.M))
    assert table == codes - {"internal_error"}
