"""GET /healthz answers 200 on a live database and 503 when it is gone."""

import json

import pytest


@pytest.mark.gen_test
async def test_healthz_ok(http_client, base_url):
    response = await http_client.fetch(base_url + "/healthz")
    assert response.code == 200
    assert json.loads(response.body) == {"status": "ok"}


@pytest.mark.gen_test
async def test_healthz_503_when_database_unreachable(http_client, base_url, ctx, monkeypatch):
    def broken(*args, **kwargs):
        raise ctx.db.OperationalError("database is gone")  # what a dead DB raises

    monkeypatch.setattr(ctx.db, "execute_sql", broken)
    response = await http_client.fetch(base_url + "/healthz", raise_error=False)
    assert response.code == 503
    assert json.loads(response.body)["status"] == "unavailable"
