"""The ``tornpay`` command: serve, simulator, orders, query, close, refund, deliveries."""

import asyncio
import datetime
import logging
import sys
from typing import Any, Callable, Iterable, List, Optional, Sequence

import click

from tornpay.settings import SettingsError, load_settings

# Exit codes scripts can rely on.
OK, REFUSED, USAGE, NOT_FOUND = 0, 1, 2, 3


class Fail(click.ClickException):
    """One line on stderr, then the given exit code."""

    def __init__(self, message: str, code: int = REFUSED):
        super().__init__(message)
        self.exit_code = code

    def show(self, file=None) -> None:
        click.echo(f"tornpay: {self.format_message()}", err=True)


def _settings(path: str):
    try:
        return load_settings(path)
    except SettingsError as exc:
        raise Fail(str(exc), USAGE) from None
    except OSError as exc:
        raise Fail(f"settings file {path}: {exc.strerror or exc}", USAGE) from None


def settings_option(func: Callable) -> Callable:
    return click.option("--settings", "settings_path", default="settings.yaml", show_default=True,
                        metavar="FILE", help="settings file (YAML)")(func)


def _errors_to_exit_codes(func: Callable, *args: Any) -> Any:
    from tornpay.hooks import PluginError
    from tornpay.orders.admin import Refused
    from tornpay.orders.refunds import NotFound, RefundError
    from tornpay.protocol.errors import WeChatError

    try:
        return func(*args)
    except NotFound as exc:
        raise Fail(str(exc), NOT_FOUND) from None
    except (RefundError, Refused) as exc:
        raise Fail(str(exc)) from None
    except WeChatError as exc:
        raise Fail(f"WeChat: {exc}") from None
    except (SettingsError, PluginError) as exc:
        raise Fail(str(exc), USAGE) from None


def run_admin(settings_path: str, work: Callable) -> Any:
    """Run ``work(ctx)`` (sync or async) on an AdminContext: no dispatcher, no reconciler."""
    settings = _settings(settings_path)
    # Quiet by default: a refusal must read as one line; alerts still show.
    logging.basicConfig(level=logging.ERROR, format="tornpay: %(levelname)s %(message)s")

    async def main():
        from tornpay.orders.admin import AdminContext

        ctx = AdminContext(settings)
        try:
            result = work(ctx)
            return (await result) if asyncio.iscoroutine(result) else result
        finally:
            ctx.close()

    return _errors_to_exit_codes(asyncio.run, main())


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Print ``rows`` as left-aligned columns under ``headers``."""
    text = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in text]) for i, h in enumerate(headers)]
    for row in [list(headers)] + text:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value).replace("\n", " ")[:80]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """tornpay: WeChat Pay JSAPI server. Times are UTC; money is in fen."""


@cli.command()
@settings_option
def serve(settings_path: str) -> None:
    """Run the server until SIGTERM/SIGINT (the same as python server.py)."""
    from tornpay.app import configure_logging, serve as serve_app

    settings = _settings(settings_path)
    configure_logging(settings)
    try:
        _errors_to_exit_codes(asyncio.run, serve_app(settings))
    except OSError as exc:  # e.g. the port is taken
        raise Fail(f"cannot serve on {settings.server.address}:{settings.server.port}: "
                   f"{exc.strerror or exc}") from None


@cli.command()
@click.option("--port", default=8899, show_default=True, type=click.IntRange(0, 65535))
@click.option("--address", default="127.0.0.1", show_default=True)
@settings_option
def simulator(port: int, address: str, settings_path: str) -> None:
    """Run the WeChat simulator alone, with the settings' wechat credentials."""
    from tornpay.simulator.standalone import serve_standalone

    serve_standalone(_settings(settings_path), address, port)


@cli.group()
def orders() -> None:
    """List orders or show one."""


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
        state.upper() if state else None, since, until, limit))
    table(["OUT_TRADE_NO", "STATE", "FEE", "REFUNDED", "PRODUCT", "CREATED", "PAID"],
          [(o.out_trade_no, o.state, o.total_fee, o.refunded_fee, o.product_id, o.created_at,
            o.paid_at) for o in found])


@orders.command("show")
@click.argument("out_trade_no")
@settings_option
def orders_show(out_trade_no: str, settings_path: str) -> None:
    """The order, its notifies, its deliveries and its refunds."""
    from tornpay.orders.admin import order_details

    d = run_admin(settings_path, lambda ctx: order_details(out_trade_no))
    o = d["order"]
    for name in ("out_trade_no", "state", "product_id", "body", "openid", "total_fee",
                 "refunded_fee", "reserved_refund_fee", "transaction_id", "prepay_id",
                 "sign_type", "created_at", "expire_at", "paid_at", "close_reason", "last_error"):
        click.echo(f"{name + ':':21} {_cell(getattr(o, name))}")
    _section("notifies", ["RECEIVED", "KIND", "OUTCOME", "REMOTE_IP", "REASON"],
             [(n.received_at, n.kind, n.outcome, n.remote_ip, n.reason) for n in d["notifies"]])
    _section("deliveries", ["ID", "HOOK", "PLUGIN", "STATE", "ATTEMPTS", "LAST_ERROR"],
             [(x["id"], x["hook"], x["plugin"], x["state"], x["attempts"], x["last_error"])
              for x in d["deliveries"]])
    _section("refunds", ["OUT_REFUND_NO", "FEE", "STATE", "REFUND_ID", "CREATED", "SUCCESS_TIME",
                         "LAST_ERROR"],
             [(r.out_refund_no, r.refund_fee, r.state, r.refund_id, r.created_at, r.success_time,
               r.last_error) for r in d["refunds"]])


def _section(title: str, headers: List[str], rows: list) -> None:
    click.echo(f"\n{title} ({len(rows)}):")
    if rows:
        table(headers, rows)


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


@cli.group()
def deliveries() -> None:
    """Durable hook deliveries: list them, retry failed ones."""


@deliveries.command("list")
@click.option("--state", type=click.Choice(["pending", "done", "failed"]))
@settings_option
def deliveries_list(state: Optional[str], settings_path: str) -> None:
    """Deliveries, newest first."""
    from tornpay.orders.dispatcher import list_deliveries

    rows = run_admin(settings_path, lambda ctx: list_deliveries(state))
    table(["ID", "HOOK", "OUT_TRADE_NO", "PLUGIN", "STATE", "ATTEMPTS", "NEXT_ATTEMPT",
           "LAST_ERROR"],
          [(d["id"], d["hook"], d["out_trade_no"], d["plugin"], d["state"], d["attempts"],
            d["next_attempt_at"] if d["state"] == "pending" else None, d["last_error"])
           for d in rows])


@deliveries.command("retry")
@click.argument("delivery_id", required=False)
@click.option("--all-failed", is_flag=True, help="retry every failed delivery")
@settings_option
def deliveries_retry(delivery_id: Optional[str], all_failed: bool, settings_path: str) -> None:
    """Make a failed delivery (or all failed ones) due now; the server delivers it."""
    from tornpay.orders.admin import retry_deliveries

    if bool(delivery_id) == all_failed:
        raise click.UsageError("give a DELIVERY_ID or --all-failed (not both)")
    click.echo(run_admin(settings_path, lambda ctx: retry_deliveries(delivery_id)))


# The console's and the daily bill's verbs live in their own modules.
from tornpay.bills.cli import register as _register_bill  # noqa: E402
from tornpay.console.cli import register as _register_admin  # noqa: E402

_register_admin(cli)
_register_bill(cli)


def main(argv: Optional[list] = None) -> int:
    """Console-script entry point; returns the exit code."""
    try:
        cli.main(args=argv, prog_name="tornpay", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.Abort:
        click.echo("tornpay: aborted", err=True)
        return REFUSED
    return OK


if __name__ == "__main__":
    sys.exit(main())
