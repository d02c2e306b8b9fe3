"""The context's composition rules: one tornpay per process, merged scrubbing, one typed face."""

import logging

import pytest

from tornpay.context import Context
from tornpay.interfaces import CoreContext, ServingContext
from tornpay.orders.admin import AdminContext, DatabaseContext
from tornpay.storage.db import OneTornpayPerProcess
from tornpay.weblog import ScrubFilter, install_scrub_filter


def test_a_second_tornpay_on_another_database_is_refused_while_one_serves(
        ctx, http_server, tp_make_settings, tmp_path):
    assert ctx.started
    other = tp_make_settings({"database": {"url": f"sqlite:///{tmp_path}/other.db"}})
    with pytest.raises(OneTornpayPerProcess, match="one tornpay per process"):
        Context(other)
    # Refused before anything was rebound: the serving app still writes its own database.
    from tornpay.storage.db import database_proxy

    assert database_proxy.obj is ctx.db


def test_the_process_is_free_again_once_the_tornpay_stopped(ctx, http_server, tp_make_settings,
                                                            tmp_path, io_loop):
    io_loop.run_sync(ctx.stop)
    second = Context(tp_make_settings({"database": {"url": f"sqlite:///{tmp_path}/b.db"}}))
    second.start()
    io_loop.run_sync(second.stop)


def test_scrub_filters_merge_their_secrets():
    install_scrub_filter(["first-context-secret-value"])
    flt = install_scrub_filter(["second-context-secret-value"])
    record = logging.LogRecord("tornado.general", logging.WARNING, __file__, 1,
                               "keys %s and %s", ("first-context-secret-value",
                                                  "second-context-secret-value"), None)
    flt.filter(record)
    assert "secret-value" not in record.getMessage()
    filters = [f for f in logging.getLogger("tornado.general").filters
               if isinstance(f, ScrubFilter)]
    assert filters == [flt]


def test_server_and_cli_contexts_share_one_typed_face(ctx, http_server, tp_settings, io_loop):
    assert isinstance(ctx, CoreContext) and isinstance(ctx, ServingContext)
    io_loop.run_sync(ctx.stop)  # one tornpay at a time: the CLI's comes after the server's
    admin = AdminContext(tp_settings)
    try:
        assert isinstance(admin, CoreContext) and not isinstance(admin, ServingContext)
        admin.kick()  # nothing delivers in the CLI, and saying so is not an error
        assert admin.dbx is None  # the CLI does its database work on its own thread
    finally:
        admin.close()
    assert callable(DatabaseContext.kick)
