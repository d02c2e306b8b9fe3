"""Migration 8 gives older databases the order's api_version; their orders are v2 orders."""

from test_cancel_schema import _schema, fresh_schema_and_old_db


def test_migration_8_upgrades_an_older_database(tmp_path):
    from playhouse.migrate import SchemaMigrator, migrate

    from tornpay.storage import migrations
    from tornpay.storage.db import create_tables
    from tornpay.storage.models import Order

    want, old = fresh_schema_and_old_db(tmp_path)
    Order.create(out_trade_no="OLD1", product_id="p", openid="o", body="b", total_fee=1,
                 expire_at=Order.created_at.default())
    migrate(SchemaMigrator.from_database(old).drop_column("tornpay_order", "api_version"))
    migrations.SchemaVersion.delete().where(migrations.SchemaVersion.version >= 8).execute()
    create_tables()  # what a server start does
    assert _schema(old) == want
    assert Order.get_by_id("OLD1").api_version == "v2"
    assert migrations.current_version(old) == migrations.latest_version() >= 8
    old.close()
