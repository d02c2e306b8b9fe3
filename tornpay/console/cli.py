"""``tornpay admin set-password NAME``: create an operator or change its password."""

import sys

import click


def register(group: click.Group) -> None:
    """Add the ``admin`` verbs to the ``tornpay`` command group."""
    group.add_command(admin)


@click.group()
def admin() -> None:
    """Operators of the web console ({prefix}/admin/)."""


@admin.command("set-password")
@click.argument("name")
@click.option("--password-stdin", is_flag=True,
              help="read the password from standard input (for scripts)")
def set_password_cmd(name: str, password_stdin: bool) -> None:
    """Create operator NAME, or change its password (asked twice, never echoed)."""
    from tornpay.cli import Fail, run_admin
    from tornpay.cli.common import current_settings_path  # --settings: the root group's
    from tornpay.console.passwords import PasswordError, check_name, set_password

    try:
        check_name(name)
    except PasswordError as exc:
        raise Fail(str(exc)) from None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)

    def work(ctx):
        try:
            return set_password(name, password)
        except PasswordError as exc:
            raise Fail(str(exc)) from None

    created = run_admin(current_settings_path(), work, wechat=False)  # the database only
    click.echo(f"operator {name}: {'created' if created else 'password changed'}")
