"""Migration 7 gives older databases the payer and code_url columns; old orders keep owners."""

from helpers_orders import make_order
from test_cancel_schema import _schema, fresh_schema_and_old_db


def test_migration_7_upgrades_an_older_database(tmp_path):
    from playhouse.migrate import SchemaMigrator, migrate

    from tornpay.storage import migrations
    from tornpay.storage.db import create_tables
    from tornpay.storage.models import Order

    want, old = fresh_schema_and_old_db(tmp_path)
    make_order("OLD1", openid="o-alice")
    # Back to version 6: neither column (nor payer's index), no record of step 7.
    migrator = SchemaMigrator.from_database(old)
    for index in old.get_indexes("tornpay_order"):
        if "payer" in index.columns:
            migrate(migrator.drop_index("tornpay_order", index.name))
    migrate(migrator.drop_column("tornpay_order", "payer"),
            migrator.drop_column("tornpay_order", "code_url"))
    migrations.SchemaVersion.delete().where(migrations.SchemaVersion.version >= 7).execute()
    assert "payer" not in {c.name for c in old.get_columns("tornpay_order")}
    create_tables()  # what a server start does
    assert _schema(old) == want
    assert migrations.current_version(old) == migrations.latest_version() >= 7
    # The JSAPI order made before the step is still its openid's.
    assert Order.get_by_id("OLD1").payer == "o-alice"
    old.close()
