"""``tornpay orders list|show``, ``query``, ``close`` and ``refund``."""

import datetime
from typing import Optional

import click

from tornpay.cli import cli
from tornpay.cli.common import Fail, cell, run_admin, section, settings_option, table

# Only WeChat Pay API v2 JSAPI orders exist today; a column, once added, wins.
TRADE_TYPE, API_GENERATION = "JSAPI", "v2"
ORDER_FIELDS = ("out_trade_no", "state", "product_id", "body", "openid", "total_fee",
                "refunded_fee", "reserved_refund_fee", "transaction_id", "prepay_id",
                "sign_type", "created_at", "expire_at", "paid_at", "close_reason", "last_error")


@cli.group()
def orders() -> None:
    """List orders or show one (needs only database.url)."""


def _date(ctx, param, value: Optional[str]) -> Optional[datetime.date]:
    if value is None:
        return None
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a YYYY-MM-DD date") from None


@orders.command("list")
@click.option("--state", type=click.Choice(
    ["CREATED", "PREPAID", "PAID", "PARTIAL_REFUNDED", "REFUNDED", "CLOSED", "PAYERROR"],
    case_sensitive=False))
@click.option("--since", callback=_date, metavar="YYYY-MM-DD", help="created on or after (UTC)")
@click.option("--until", callback=_date, metavar="YYYY-MM-DD", help="created on or before (UTC)")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100000))
@settings_option
def orders_list(state, since, until, limit, settings_path) -> None:
    """Orders, newest first."""
    from tornpay.orders.admin import list_orders

    found = run_admin(settings_path, lambda ctx: list_orders(
        state.upper() if state else None, since, until, limit), wechat=False)
    table(["OUT_TRADE_NO", "STATE", "TYPE", "FEE", "REFUNDED", "PRODUCT", "CREATED", "PAID"],
          [(o.out_trade_no, o.state, o.trade_type, o.total_fee, o.refunded_fee, o.product_id,
            o.created_at, o.paid_at) for o in found])


@orders.command("show")
@click.argument("out_trade_no")
@settings_option
def orders_show(out_trade_no: str, settings_path: str) -> None:
    """The order, its notifies, its deliveries (every attempt) and its refunds."""
    from tornpay.orders.admin import order_details

    d = run_admin(settings_path, lambda ctx: order_details(out_trade_no), wechat=False)
    o = d["order"]
    lines = [(name, getattr(o, name)) for name in ORDER_FIELDS]
    lines[5:5] = [("payer_ip", o.spbill_create_ip or None),  # sent as spbill_create_ip
                  ("trade_type", getattr(o, "trade_type", None) or TRADE_TYPE),
                  ("api", getattr(o, "api_generation", None) or API_GENERATION)]
    for name, value in lines:
        click.echo(f"{name + ':':21} {cell(value)}")
    section("notifies", ["RECEIVED", "KIND", "OUTCOME", "REMOTE_IP", "REASON"],
            [(n.received_at, n.kind, n.outcome, n.remote_ip, n.reason) for n in d["notifies"]])
    section("deliveries", ["ID", "HOOK", "PLUGIN", "STATE", "ATTEMPTS", "LAST_ERROR"],
            [(x["id"], x["hook"], x["plugin"], x["state"], x["attempts"], x["last_error"])
             for x in d["deliveries"]])
    for x in d["deliveries"]:
        if x["history"]:
            attempts_table(x["id"], x["history"])
    section("refunds", ["OUT_REFUND_NO", "FEE", "STATE", "REFUND_ID", "CREATED", "SUCCESS_TIME",
                        "LAST_ERROR"],
            [(r.out_refund_no, r.refund_fee, r.state, r.refund_id, r.created_at, r.success_time,
              r.last_error) for r in d["refunds"]])


def attempts_table(delivery_id: str, history: list) -> None:
    """Every call of one delivery, oldest first (kept across ``deliveries retry``)."""
    section(f"attempts of {delivery_id}", ["#", "STARTED", "FINISHED", "OUTCOME", "ERROR"],
            [(n, a.started_at, a.finished_at, a.outcome, a.error)
             for n, a in enumerate(history, 1)])


@cli.command()
@click.argument("out_trade_no")
@settings_option
def query(out_trade_no: str, settings_path: str) -> None:
    """Ask WeChat about an order (and its open refunds) and apply the answers."""
    from tornpay.orders.admin import query_everything

    for line in run_admin(settings_path, lambda ctx: query_everything(ctx, out_trade_no)):
        click.echo(line)


@cli.command()
@click.argument("out_trade_no")
@settings_option
def close(out_trade_no: str, settings_path: str) -> None:
    """Close an unpaid order at WeChat and here (fires on_cancel with reason 'closed')."""
    from tornpay.orders.admin import close_order

    outcome = run_admin(settings_path, lambda ctx: close_order(ctx, out_trade_no))
    if outcome != "CLOSED":
        raise Fail(f"order {out_trade_no} not closed: WeChat reports it {outcome}")
    click.echo(f"order {out_trade_no}: CLOSED")


@cli.command()
@click.argument("out_trade_no")
@click.option("--fee", type=click.IntRange(min=1), help="fen to refund (default: all that is left)")
@click.option("--reason", default="", help="shown to the payer (at most 80 bytes)")
@click.option("--resend", "resend", metavar="OUT_REFUND_NO",
              help="re-send a REQUESTED refund of this order, byte for byte")
@settings_option
def refund(out_trade_no: str, fee: Optional[int], reason: str, resend: Optional[str],
           settings_path: str) -> None:
    """Refund an order fully or partly (final once WeChat reports SUCCESS)."""
    from tornpay.orders.admin import refund_and_report

    line = run_admin(settings_path,
                     lambda ctx: refund_and_report(ctx, out_trade_no, fee, reason, resend))
    click.echo(line)
