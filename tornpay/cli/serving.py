"""``tornpay serve`` and ``tornpay simulator``: the long-running verbs."""

import asyncio

import click

from tornpay.cli import cli
from tornpay.cli.common import (Fail, check_database, current_settings_path, errors_to_exit_codes,
                                load_cli_settings)


@cli.command()
def serve() -> None:
    """Run the server until SIGTERM/SIGINT (the same as python server.py)."""
    from tornpay.app import configure_logging, serve as serve_app

    settings = load_cli_settings(current_settings_path())
    check_database(settings)
    configure_logging(settings)
    try:
        errors_to_exit_codes(asyncio.run, serve_app(settings))
    except OSError as exc:  # e.g. the port is taken
        raise Fail(f"cannot serve on {settings.server.address}:{settings.server.port}: "
                   f"{exc.strerror or exc}") from None


@cli.command()
@click.option("--port", default=8899, show_default=True, type=click.IntRange(0, 65535))
@click.option("--address", default="127.0.0.1", show_default=True)
def simulator(port: int, address: str) -> None:
    """Run the WeChat simulator alone, with the settings' wechat credentials (no database)."""
    from tornpay.simulator.standalone import serve_standalone

    serve_standalone(load_cli_settings(current_settings_path()), address, port)
