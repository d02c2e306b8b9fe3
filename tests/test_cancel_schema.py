"""Migration 2 gives databases made before it the column payer cancels need."""


def _schema(db):
    columns = {(c.name, c.data_type, c.null) for c in db.get_columns("tornpay_order")}
    indexes = {(i.name, tuple(i.columns), i.unique) for i in db.get_indexes("tornpay_order")}
    return columns, indexes


def test_migration_2_gives_old_databases_the_column(tmp_path):
    from playhouse.migrate import SchemaMigrator, migrate

    from tornpay.storage import migrations
    from tornpay.storage.db import bind, create_tables, open_database

    fresh = bind(open_database(f"sqlite:///{tmp_path / 'fresh.db'}"))
    create_tables()
    want = _schema(fresh)
    assert migrations.current_version(fresh) == migrations.latest_version() >= 2
    fresh.close()

    old = bind(open_database(f"sqlite:///{tmp_path / 'old.db'}"))
    create_tables()
    # Back to version 1: no column, no record of step 2.
    migrate(SchemaMigrator.from_database(old).drop_column("tornpay_order",
                                                          "close_at_wechat_after"))
    migrations.SchemaVersion.delete().where(migrations.SchemaVersion.version >= 2).execute()
    assert "close_at_wechat_after" not in {c.name for c in old.get_columns("tornpay_order")}
    create_tables()  # what a server start does
    assert _schema(old) == want
    assert migrations.current_version(old) == migrations.latest_version()
    old.close()
