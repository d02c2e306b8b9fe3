"""CLI plumbing: exit codes, one-line errors, where the settings come from, contexts, tables."""

import asyncio
import datetime
import functools
import importlib
import logging
import os
import re
from typing import Any, Callable, Iterable, List, Optional, Sequence

import click

from tornpay.settings import Settings, SettingsError, load_settings, settings_from_dict

# Exit codes scripts can rely on.
OK, REFUSED, USAGE, NOT_FOUND = 0, 1, 2, 3
DEFAULT_SETTINGS = "settings.yaml"
SETTINGS_ENV = "TORNPAY_SETTINGS"
# ``--settings myshop.payments:TORNPAY_SETTINGS``: the dict (or Settings) an estate embeds with.
_OBJECT_REF = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class Fail(click.ClickException):
    """One line on stderr, then the given exit code."""

    def __init__(self, message: str, code: int = REFUSED):
        super().__init__(message)
        self.exit_code = code

    def show(self, file=None) -> None:
        click.echo(f"tornpay: {self.format_message()}", err=True)


def current_settings_path() -> str:
    """``--settings`` (wherever it was given), else ``$TORNPAY_SETTINGS``, else settings.yaml."""
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_root().obj if ctx is not None else None
    if isinstance(obj, dict) and obj.get("settings"):
        return obj["settings"]
    return os.environ.get(SETTINGS_ENV) or DEFAULT_SETTINGS


def settings_option(func: Callable) -> Callable:
    """Give a verb ``settings_path`` (the root group parses ``--settings`` for every verb)."""
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        kwargs["settings_path"] = current_settings_path()
        return func(*args, **kwargs)
    return wrapper


def load_cli_settings(path: str, credentials: bool = True) -> Settings:
    """Settings from a YAML file or ``module:NAME``; ``credentials=False``: the database only."""
    from tornpay.plugin_sources import add_plugin_dir

    try:
        if _OBJECT_REF.match(path) and not os.path.exists(path):
            return _settings_from_object(path, credentials)
        settings = load_settings(path, credentials=credentials)
    except SettingsError as exc:
        raise Fail(str(exc), USAGE) from None
    except OSError as exc:
        raise Fail(f"settings file {path}: {exc.strerror or exc}", USAGE) from None
    add_plugin_dir(path)
    return settings


def _settings_from_object(ref: str, credentials: bool) -> Settings:
    module_name, _, attr = ref.partition(":")
    try:
        value = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise Fail(f"settings {ref}: cannot import it ({type(exc).__name__}: {exc})",
                   USAGE) from None
    if callable(value) and not isinstance(value, Settings):
        value = value()
    if isinstance(value, Settings):
        return value
    if not isinstance(value, dict):
        raise Fail(f"settings {ref}: expected a dict or Settings, got {type(value).__name__}",
                   USAGE)
    return settings_from_dict(value, source=ref, credentials=credentials)


def check_database(settings: Settings) -> None:
    """One line and exit 2 when the driver is missing or the database does not answer."""
    from tornpay.storage.preflight import check_database as check

    try:
        check(settings.database.url)
    except SettingsError as exc:
        raise Fail(str(exc), USAGE) from None


def errors_to_exit_codes(func: Callable, *args: Any) -> Any:
    """Run ``func(*args)``, turning tornpay's refusals into one line and an exit code."""
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


def run_admin(settings_path: str, work: Callable, wechat: bool = True) -> Any:
    """Run ``work(ctx)`` (sync or async) with no dispatcher or reconciler running.

    ``wechat=True``: an AdminContext (plugins loaded, WeChat client on first use),
    which needs the WeChat credentials. ``wechat=False``: the database only.
    """
    settings = load_cli_settings(settings_path, credentials=wechat)
    check_database(settings)
    # Quiet by default: a refusal must read as one line; alerts still show.
    logging.basicConfig(level=logging.ERROR, format="tornpay: %(levelname)s %(message)s")

    async def main():
        from tornpay.orders.admin import AdminContext, DatabaseContext

        ctx = AdminContext(settings) if wechat else DatabaseContext(settings)
        try:
            result = work(ctx)
            return (await result) if asyncio.iscoroutine(result) else result
        finally:
            ctx.close()

    return errors_to_exit_codes(asyncio.run, main())


def when(value: Optional[datetime.datetime]) -> Optional[str]:
    """The CLI's one time format: UTC, marked (``2024-06-01T12:30:45Z``)."""
    from tornpay.protocol.wechat_time import utc_text

    return utc_text(value)


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime.datetime):
        return when(value) or "-"
    return str(value).replace("\n", " ")[:80]


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Print ``rows`` as left-aligned columns under ``headers``."""
    text = [[cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in text]) for i, h in enumerate(headers)]
    for row in [list(headers)] + text:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())


def section(title: str, headers: List[str], rows: list) -> None:
    click.echo(f"\n{title} ({len(rows)}):")
    if rows:
        table(headers, rows)
