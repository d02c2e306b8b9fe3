"""Migration 6 gives older databases the order's trade_type and the console and bill tables."""

from test_cancel_schema import _schema, fresh_schema_and_old_db

OPS_TABLES = ("tornpay_operator", "tornpay_login_failure", "tornpay_audit", "tornpay_bill_run",
              "tornpay_bill_difference")


def test_migration_6_upgrades_an_older_database(tmp_path):
    from playhouse.migrate import SchemaMigrator, migrate

    from tornpay.storage import migrations
    from tornpay.storage.db import create_tables
    from tornpay.storage.models import Order

    want, old = fresh_schema_and_old_db(tmp_path)
    Order.create(out_trade_no="OLD1", product_id="p", openid="o", body="b", total_fee=1,
                 expire_at=Order.created_at.default())
    # As before step 6: no trade_type, no console or bill tables.
    migrate(SchemaMigrator.from_database(old).drop_column("tornpay_order", "trade_type"))
    for table in OPS_TABLES:
        old.execute_sql(f"DROP TABLE {table}")
    migrations.SchemaVersion.delete().where(migrations.SchemaVersion.version >= 6).execute()
    create_tables()  # what a server start does
    assert _schema(old) == want
    assert all(old.table_exists(t) for t in OPS_TABLES)
    assert Order.get_by_id("OLD1").trade_type == "JSAPI"
    assert migrations.current_version(old) == migrations.latest_version() >= 6
    old.close()
