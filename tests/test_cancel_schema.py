"""Migration 2 gives databases made before it the column payer cancels need."""


def _schema(db):
    columns = {(c.name, c.data_type, c.null) for c in db.get_columns("tornpay_order")}
    indexes = {(i.name, tuple(i.columns), i.unique) for i in db.get_indexes("tornpay_order")}
    return columns, indexes


def fresh_schema_and_old_db(tmp_path):
    """The latest schema (from a fresh database) and a second database, bound, to take back."""
    from tornpay.storage.db import bind, create_tables, open_database

    fresh = bind(open_database(f"sqlite:///{tmp_path / 'fresh.db'}"))
    create_tables()
    want = _schema(fresh)
    fresh.close()
    old = bind(open_database(f"sqlite:///{tmp_path / 'old.db'}"))
    create_tables()
    return want, old


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
    # Back to version 1: no column (nor its index), no record of step 2.
    migrator = SchemaMigrator.from_database(old)
    for index in old.get_indexes("tornpay_order"):
        if "close_at_wechat_after" in index.columns:
            migrate(migrator.drop_index("tornpay_order", index.name))
    migrate(migrator.drop_column("tornpay_order", "close_at_wechat_after"))
    assert not any("close_at_wechat_after" in i.columns for i in old.get_indexes("tornpay_order"))
    migrations.SchemaVersion.delete().where(migrations.SchemaVersion.version >= 2).execute()
    assert "close_at_wechat_after" not in {c.name for c in old.get_columns("tornpay_order")}
    create_tables()  # what a server start does
    assert _schema(old) == want
    assert migrations.current_version(old) == migrations.latest_version()
    old.close()


def test_a_step_numbered_below_the_newest_applied_one_still_runs(tmp_path, monkeypatch):
    """Steps merged out of order (5 landing after 6) run once each, by the set applied."""
    from tornpay.storage import migrations
    from tornpay.storage.db import bind, create_tables, open_database

    db = bind(open_database(f"sqlite:///{tmp_path / 'gap.db'}"))
    create_tables()
    ran = []
    top = migrations.latest_version()
    late = (top + 2, "a step from the branch merged first", lambda m, d: ran.append(top + 2))
    monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS + [late])
    create_tables()
    early = (top + 1, "a step from the branch merged second", lambda m, d: ran.append(top + 1))
    monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS + [early])
    create_tables()
    create_tables()
    assert ran == [top + 2, top + 1]
    assert migrations.applied_versions(db) >= {top + 1, top + 2}
    db.close()
