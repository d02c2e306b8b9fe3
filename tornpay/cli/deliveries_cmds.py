"""``tornpay deliveries list|show|retry``: the durable hook calls and their history."""

from typing import Optional

import click

from tornpay.cli import cli
from tornpay.cli.common import cell, run_admin, settings_option, table
from tornpay.cli.orders_cmds import attempts_table


@cli.group()
def deliveries() -> None:
    """Durable hook deliveries: list them, show one's attempts, retry failed ones."""


@deliveries.command("list")
@click.option("--state", type=click.Choice(["pending", "done", "failed"]))
@click.option("--order", "out_trade_no", metavar="OUT_TRADE_NO", help="only this order's")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100000))
@settings_option
def deliveries_list(state: Optional[str], out_trade_no: Optional[str], limit: int,
                    settings_path: str) -> None:
    """Deliveries, newest first."""
    from tornpay.orders.delivery_views import list_deliveries

    rows = run_admin(settings_path, lambda ctx: list_deliveries(state, limit, out_trade_no),
                     wechat=False)
    table(["ID", "HOOK", "OUT_TRADE_NO", "PLUGIN", "STATE", "ATTEMPTS", "NEXT_ATTEMPT",
           "LAST_ERROR"],
          [(d["id"], d["hook"], d["out_trade_no"], d["plugin"], d["state"], d["attempts"],
            d["next_attempt_at"], d["last_error"]) for d in rows])


@deliveries.command("show")
@click.argument("delivery_id")
@settings_option
def deliveries_show(delivery_id: str, settings_path: str) -> None:
    """One delivery and every attempt of it (time, outcome, error)."""
    from tornpay.orders.delivery_views import delivery_details

    d = run_admin(settings_path, lambda ctx: delivery_details(delivery_id), wechat=False)
    for name in ("id", "hook", "out_trade_no", "plugin", "state", "attempts", "next_attempt_at",
                 "created_at", "done_at", "last_error"):
        click.echo(f"{name + ':':17} {cell(d[name])}")
    attempts_table(d["id"], d["history"])


@deliveries.command("retry")
@click.argument("delivery_id", required=False)
@click.option("--all-failed", is_flag=True, help="retry every failed delivery")
@settings_option
def deliveries_retry(delivery_id: Optional[str], all_failed: bool, settings_path: str) -> None:
    """Make a failed delivery (or all failed ones) due now; the server delivers it."""
    from tornpay.orders.admin import retry_deliveries

    if bool(delivery_id) == all_failed:
        raise click.UsageError("give a DELIVERY_ID or --all-failed (not both)")
    click.echo(run_admin(settings_path, lambda ctx: retry_deliveries(delivery_id), wechat=False))
