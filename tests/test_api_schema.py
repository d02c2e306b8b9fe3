"""Migration 10 gives older databases the order's appid; old orders keep the Official Account's."""

import pytest

from test_cancel_schema import _schema, fresh_schema_and_old_db


def test_migration_10_gives_old_databases_the_appid_column(tmp_path):
    from playhouse.migrate import SchemaMigrator, migrate

    from tornpay.storage import migrations
    from tornpay.storage.db import create_tables

    want, old = fresh_schema_and_old_db(tmp_path)
    migrate(SchemaMigrator.from_database(old).drop_column("tornpay_order", "appid"))
    migrations.SchemaVersion.delete().where(migrations.SchemaVersion.version == 10).execute()
    assert "appid" not in {c.name for c in old.get_columns("tornpay_order")}
    create_tables()  # what a server start does
    assert _schema(old) == want
    assert 10 in migrations.applied_versions(old)
    old.close()


@pytest.mark.gen_test(timeout=30)
async def test_an_order_without_appid_is_notified_with_the_official_accounts(
        http_client, base_url, ctx):
    from conftest import TEST_API_KEY
    from flow_helpers import ALICE, notify_fields, signed_notify
    from tornpay.orders.service import create_order
    from tornpay.storage.models import Order

    order = await create_order(ctx, "coach-101", ALICE, "127.0.0.1")
    assert order.appid == ctx.settings.wechat.appid
    Order.update(appid="").where(Order.out_trade_no == order.out_trade_no).execute()  # pre-10
    body = signed_notify(notify_fields(Order.get_by_id(order.out_trade_no)), TEST_API_KEY)
    response = await http_client.fetch(base_url + "/wxpay/notify", method="POST", body=body)
    assert b"SUCCESS" in response.body
    assert Order.get_by_id(order.out_trade_no).state == "PAID"


def test_simulator_refuses_a_real_miniprogram_secret(tmp_path):
    import tornpay
    from api_helpers import MINI_OVERRIDES
    from conftest import base_settings_dict, merge
    from tornpay.settings import SettingsError

    data = merge(base_settings_dict(tmp_path, 8899), MINI_OVERRIDES)
    del data["server"]["prefix"]
    tornpay.routes(data, prefix="/pay", env={}).ctx.db.close()  # the shipped test value: fine
    data["wechat"]["miniprogram_secret"] = "a-real-mini-program-secret-0123"
    with pytest.raises(SettingsError, match=r"^setting simulator\.enabled.*miniprogram_secret"):
        tornpay.routes(data, prefix="/pay", env={})
