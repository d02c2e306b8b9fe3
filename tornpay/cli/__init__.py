"""The ``tornpay`` command: the click group, ``--settings`` anywhere, one-line errors, main().

Verbs live in sibling modules that decorate this group (``@cli.command()`` /
``@cli.group()`` after ``from tornpay.cli import cli``), each imported once from
``COMMAND_MODULES`` at the end of this file, or in their own package with a
``register(group)`` function called there. A verb never declares ``--settings``
itself: the root group takes it anywhere on the line; ``@settings_option``
passes it on as ``settings_path``.
"""

import importlib
from typing import List, Optional, Tuple

import click

from tornpay.cli.common import (DEFAULT_SETTINGS, NOT_FOUND, OK, REFUSED,  # noqa: F401
                                SETTINGS_ENV, USAGE, Fail, run_admin, settings_option, table)


def pull_settings(args: List[str]) -> Tuple[List[str], Optional[str]]:
    """Take ``--settings FILE`` / ``--settings=FILE`` out of ``args`` wherever it is (last wins)."""
    rest: List[str] = []
    path = None
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i:])
            break
        if arg == "--settings":
            if i + 1 == len(args):
                raise click.UsageError("option --settings needs a FILE")
            path, i = args[i + 1], i + 2
            continue
        if arg.startswith("--settings="):
            path = arg.split("=", 1)[1]
        else:
            rest.append(arg)
        i += 1
    return rest, path


class TornpayGroup(click.Group):
    """The root group: ``--settings`` is accepted before or after the verb."""

    def parse_args(self, ctx: click.Context, args: List[str]) -> List[str]:
        rest, path = pull_settings(list(args))
        if path is not None:
            rest = ["--settings", path] + rest
        return super().parse_args(ctx, rest)


@click.group(cls=TornpayGroup, context_settings={"help_option_names": ["-h", "--help"]},
             epilog="Every verb takes --settings FILE (before or after the verb).")
@click.option("--settings", "settings_path", envvar=SETTINGS_ENV, default=DEFAULT_SETTINGS,
              show_default=True, metavar="FILE",
              help=f"settings file (YAML) or module:NAME; also ${SETTINGS_ENV}")
@click.pass_context
def cli(ctx: click.Context, settings_path: str) -> None:
    """tornpay: WeChat Pay JSAPI server. Times are UTC (marked Z); money is in fen."""
    ctx.ensure_object(dict)["settings"] = settings_path


def _usage_line(exc: click.UsageError) -> str:
    """click's three-line usage error as one line, with where to look for help."""
    message = exc.format_message().strip().replace("\n", " ")
    path = exc.ctx.command_path if exc.ctx is not None else "tornpay"
    return f"tornpay: {message} (see {path} --help)"


def main(argv: Optional[list] = None) -> int:
    """Console-script entry point; returns the exit code."""
    try:
        cli.main(args=argv, prog_name="tornpay", standalone_mode=False)
    except click.UsageError as exc:
        click.echo(_usage_line(exc), err=True)
        return USAGE
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.Abort:
        click.echo("tornpay: aborted", err=True)
        return REFUSED
    return OK


COMMAND_MODULES = [
    "tornpay.cli.serving",
    "tornpay.cli.orders_cmds",
    "tornpay.cli.deliveries_cmds",
]
for _name in COMMAND_MODULES:
    importlib.import_module(_name)

# The console's and the daily bill's verbs live with them and add themselves.
from tornpay.bills.cli import register as _register_bill  # noqa: E402
from tornpay.console.cli import register as _register_admin  # noqa: E402

_register_admin(cli)
_register_bill(cli)
