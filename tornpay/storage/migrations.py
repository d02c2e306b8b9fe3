"""Schema versions: missing tables created at start; later changes as numbered steps run once."""

import logging
from typing import Callable, List, Optional, Tuple

import peewee
from playhouse.migrate import SchemaMigrator

from tornpay.storage.db import database_proxy
from tornpay.storage.models import utcnow

logger = logging.getLogger(__name__)

# A step gets a playhouse.migrate SchemaMigrator (PostgreSQL or SQLite flavour)
# and the database, e.g.:
#
#     def _add_order_note(migrator, db):
#         add_missing_columns(migrator, db, "tornpay_order",
#                             ("note", peewee.CharField(max_length=64, default="")))
#
#     MIGRATIONS.append((11, "order note", _add_order_note))
#
# and the model gains the same field, so a fresh database (built by
# create_tables from the models) and an upgraded one end up identical.
# Steps are append-only: a released number is never reused, and what a
# released step does to a database is never changed.
Step = Callable[[SchemaMigrator, peewee.Database], None]
MIGRATIONS: List[Tuple[int, str, Optional[Step]]] = [
    (1, "initial schema (tornpay_order, _notification, _event, _delivery, _refund)", None),
]


def add_missing_columns(migrator: SchemaMigrator, db: peewee.Database, table: str,
                        *columns: Tuple[str, peewee.Field]) -> set:
    """Add each ``(name, field)`` the table lacks; return the column names it had before.

    So a step can run on a database that already has its columns (idempotent).
    """
    from playhouse.migrate import migrate

    have = {c.name for c in db.get_columns(table)}
    missing = [migrator.add_column(table, name, field) for name, field in columns
               if name not in have]
    if missing:
        migrate(*missing)
    return have


def _add_close_at_wechat_after(migrator: SchemaMigrator, db: peewee.Database) -> None:
    from playhouse.migrate import migrate

    migrate(migrator.add_column("tornpay_order", "close_at_wechat_after",
                                peewee.DateTimeField(null=True)))


MIGRATIONS.append((2, "order close_at_wechat_after (payer cancelled before closeorder allowed)",
                   _add_close_at_wechat_after))


def _add_registry_tables(migrator: SchemaMigrator, db: peewee.Database) -> None:
    from tornpay.storage.models import KnownPlugin, ProcessRow

    db.create_tables([ProcessRow, KnownPlugin], safe=True)


MIGRATIONS.append((3, "process and plugin registry (tornpay_process, tornpay_plugin) for "
                      "fan-out to every process's plugins", _add_registry_tables))


# The index itself is declared on the model: storage.db builds missing indexes
# after the steps have run, on fresh and upgraded databases alike.
MIGRATIONS.append((4, "order index (spbill_create_ip, state) for the per-address open-order "
                      "limit", None))


def _console_and_bills(migrator: SchemaMigrator, db: peewee.Database) -> None:
    from tornpay.storage.opsmodels import OPS_MODELS

    # Idempotent: a database that already has the column (or tables) keeps them.
    add_missing_columns(migrator, db, "tornpay_order",
                        ("trade_type", peewee.CharField(max_length=16, default="JSAPI")))
    for model in OPS_MODELS:
        model._schema.create_table(safe=True)


MIGRATIONS.append((6, "order trade_type; operators, sign-in failures, audit, daily bills",
                   _console_and_bills))


def _add_payer_and_code_url(migrator: SchemaMigrator, db: peewee.Database) -> None:
    # trade_type itself came with step 6. Idempotent, like step 6.
    have = add_missing_columns(migrator, db, "tornpay_order",
                               ("payer", peewee.CharField(max_length=128, default="")),
                               ("code_url", peewee.CharField(max_length=256, null=True)))
    if "payer" not in have:  # every order so far was JSAPI, owned by its openid
        db.execute_sql("UPDATE tornpay_order SET payer = openid")


MIGRATIONS.append((7, "order payer and code_url (NATIVE and MWEB orders, SPEC §9)",
                   _add_payer_and_code_url))


def _add_order_api_version(migrator: SchemaMigrator, db: peewee.Database) -> None:
    # Every order made before API v3 existed is a v2 order.
    add_missing_columns(migrator, db, "tornpay_order",
                        ("api_version", peewee.CharField(max_length=4, default="v2")))


MIGRATIONS.append((8, "order api_version (v2/v3: each order finishes in its generation)",
                   _add_order_api_version))


def _add_order_appid(migrator: SchemaMigrator, db: peewee.Database) -> None:
    add_missing_columns(migrator, db, "tornpay_order",
                        ("appid", peewee.CharField(max_length=32, default="")))


MIGRATIONS.append((10, "order appid (Official Account or Mini Program)", _add_order_appid))


class SchemaVersion(peewee.Model):
    """One row per migration step applied to this database."""

    version = peewee.IntegerField(primary_key=True)
    name = peewee.CharField(max_length=200)
    applied_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        database = database_proxy
        table_name = "tornpay_schema_version"


def latest_version() -> int:
    return max(version for version, _, _ in MIGRATIONS)


def current_version(db: peewee.Database) -> int:
    """The highest applied step (0 for a database older than the version table)."""
    if not db.table_exists(SchemaVersion._meta.table_name):
        return 0
    return SchemaVersion.select(peewee.fn.MAX(SchemaVersion.version)).scalar() or 0


def applied_versions(db: peewee.Database) -> set:
    """Every step recorded in this database's version table."""
    if not db.table_exists(SchemaVersion._meta.table_name):
        return set()
    return {row.version for row in SchemaVersion.select(SchemaVersion.version)}


def upgrade(db: peewee.Database, fresh: bool) -> int:
    """Apply the steps this database lacks; return the version it is at now.

    Runs inside the caller's transaction (which on PostgreSQL also holds the
    schema advisory lock), so a failing step leaves the schema unchanged and
    two processes starting together never apply a step twice. ``fresh`` means
    the tables were just created from the models, which already are the
    latest schema: every step is recorded without running.
    """
    SchemaVersion.create_table(safe=True)
    # By the set of applied steps, not the highest: steps numbered on parallel
    # branches may land out of order, and a database at 6 must still get 5.
    applied = applied_versions(db)
    pending = [step for step in sorted(MIGRATIONS) if step[0] not in applied]
    if not pending:
        return current_version(db)
    migrator = SchemaMigrator.from_database(db)
    for version, name, step in pending:
        if step is not None and not fresh:
            logger.info("schema: applying migration %d (%s)", version, name)
            step(migrator, db)
        SchemaVersion.create(version=version, name=name)
    if not fresh:
        logger.info("schema: now at version %d", current_version(db))
    return current_version(db)


def _step5(migrator: SchemaMigrator, db: peewee.Database) -> None:
    from tornpay.storage.step5 import delivery_attempts_and_utc_refund_times

    delivery_attempts_and_utc_refund_times(migrator, db)


MIGRATIONS.append((5, "delivery attempt history; refund success_time in UTC", _step5))
