"""``tornpay bill fetch|reconcile|report --date YYYY-MM-DD``: the daily bill by hand."""

import datetime

import click


def register(group: click.Group) -> None:
    """Add the ``bill`` verbs to the ``tornpay`` command group."""
    group.add_command(bill)


def _day(ctx, param, value: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a YYYY-MM-DD date") from None


def _options(func):
    # --settings is taken by the root ``tornpay`` group, before or after the verb.
    return click.option("--date", "day", required=True, callback=_day, metavar="YYYY-MM-DD",
                        help="the Beijing day the bill covers")(func)


def _run(day: datetime.date, step, wechat: bool = True):
    """``await step(ctx, day)`` on the CLI's context; no bill or a bad one is one line, exit 1."""
    from tornpay.bills.parse import BillFormatError
    from tornpay.bills.source import BillUnavailable
    from tornpay.cli import Fail, run_admin
    from tornpay.cli.common import current_settings_path

    async def work(ctx):
        try:
            return await step(ctx, day)
        except (BillUnavailable, BillFormatError) as exc:
            raise Fail(f"bill {day}: {exc}") from None

    return run_admin(current_settings_path(), work, wechat=wechat)


@click.group()
def bill() -> None:
    """WeChat's daily bill: fetch it, reconcile it with the orders."""


@bill.command("fetch")
@_options
def fetch_cmd(day: datetime.date) -> None:
    """Download the day's bill and store its bytes (exit 1 when WeChat has none yet)."""
    from tornpay.bills.service import fetch_and_store

    run = _run(day, fetch_and_store)
    if run.state == "no_bill":
        click.echo(f"bill {day}: No Bill Exist (nothing billed that day)")
    else:
        click.echo(f"bill {day}: stored ({run.payments} payments, {run.refunds} refunds)")


@bill.command("reconcile")
@_options
def reconcile_cmd(day: datetime.date) -> None:
    """Reconcile the day's bill (fetching it when needed); exit 1 on an unsettled difference."""
    from tornpay.bills.service import reconcile_day

    _print_report(day, _run(day, reconcile_day))


@bill.command("report")
@_options
def report_cmd(day: datetime.date) -> None:
    """Print the day's stored reconciliation (database only); exit 1 if unsettled or none."""
    from tornpay.bills.service import stored_report

    _print_report(day, _run(day, stored_report, wechat=False))


def _print_report(day: datetime.date, report) -> None:
    from tornpay.cli import Fail

    for d in report.differences:
        click.echo(f"{'settled' if d.settled else 'UNSETTLED'}  {d.kind}  "
                   f"order={d.out_trade_no or '-'}  refund={d.out_refund_no or '-'}  "
                   f"bill_fee={_fen(d.bill_fee)}  our_fee={_fen(d.our_fee)}  {d.detail}")
    open_ = len(report.unsettled)
    click.echo(f"bill {day}: {report.run.payments} payments, {report.run.refunds} refunds, "
               f"{len(report.differences)} differences, {open_} unsettled")
    if open_:
        raise Fail(f"bill {day}: {open_} unsettled difference(s)")


def _fen(value) -> str:
    return "-" if value is None else str(value)
