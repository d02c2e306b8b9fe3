"""Access-log and log scrubbing (codes, signatures, key-like values) and structured order logs."""

import io
import json
import logging

import pytest

from tornpay.logs import JSONFormatter, KeyValueFormatter, configure, make_formatter, order_log
from tornpay.weblog import ScrubFilter, install_scrub_filter, scrub_text, scrub_uri

API_KEY = "192006250b4c09247ec02edce69f6a2d"


@pytest.mark.parametrize("uri, kept, gone", [
    ("/wxpay/oauth/callback?code=061abcDEF&state=1700000000abcd",
     ["/wxpay/oauth/callback", "code=[secret]", "state=[secret]"], ["061abcDEF", "1700000000abcd"]),
    ("/x?paySign=ABCDEF0123&sign=C380BEC2BFD727A4B6845133519F3AD6&n=1",
     ["paySign=[secret]", "sign=[secret]", "n=1"], ["ABCDEF0123", "C380BEC2"]),
    ("/x?appsecret=s3cr3t&access_token=tok&api_key=k&openid=oUpF8u",
     ["appsecret=[secret]", "access_token=[secret]"], ["s3cr3t", "tok&", "=k&", "oUpF8u"]),
    ("/x?package=prepay_id%3Dwx201410272009395522657a690389285100&req_info=abc",
     ["package=[secret]", "req_info=[secret]"], ["wx2014", "abc"]),
    # Key-like values are scrubbed whatever the parameter is called ...
    (f"/x?debug={API_KEY}", ["debug=[secret]"], [API_KEY]),
    ("/x?x=" + "A" * 20 + "b" * 20, ["x=[secret]"], ["AAAA"]),
    # ... and fragments are dropped.
    ("/x?y=1#access_token=abc", ["y=1"], ["abc", "#"]),
])
def test_scrub_uri(uri, kept, gone):
    scrubbed = scrub_uri(uri)
    for text in kept:
        assert text in scrubbed
    for text in gone:
        assert text not in scrubbed


def test_scrub_uri_keeps_ordinary_uris():
    assert scrub_uri("/wxpay/pay/TP20240102030405abcdEFGH123456") == \
        "/wxpay/pay/TP20240102030405abcdEFGH123456"
    # Order numbers (30 characters) and ordinary values stay readable.
    assert scrub_uri("/x?out_trade_no=TP20240102030405abcdEFGH123456&page=2") == \
        "/x?out_trade_no=TP20240102030405abcdEFGH123456&page=2"
    assert scrub_uri("/x?empty=&flag") == "/x?empty=&flag="


def test_scrub_text_finds_uris_and_literal_secrets():
    line = ("400 GET /wxpay/oauth/callback?code=0618xyz&state=abc (1.2.3.4): bad; "
            f"key {API_KEY} and redirect https://h/_sim/x?code=zz9 done")
    out = scrub_text(line, secrets=[API_KEY])
    assert "0618xyz" not in out and "zz9" not in out and API_KEY not in out
    assert out.startswith("400 GET /wxpay/oauth/callback?code=[secret]")
    assert out.endswith("done")


def test_scrub_filter_on_tornado_loggers(caplog):
    caplog.set_level(logging.WARNING, logger="tornado.general")
    flt = install_scrub_filter(secrets=["tornpay-very-secret"])
    try:
        install_scrub_filter(secrets=["tornpay-very-secret"])  # idempotent
        general = logging.getLogger("tornado.general")
        assert sum(isinstance(f, ScrubFilter) for f in general.filters) == 1
        general.warning("%d %s: %s", 400, "GET /cb?code=LEAKME (1.2.3.4)", "tornpay-very-secret")
    finally:
        for name in ("tornado.access", "tornado.application", "tornado.general"):
            for f in list(logging.getLogger(name).filters):
                if isinstance(f, ScrubFilter):
                    logging.getLogger(name).removeFilter(f)
    assert flt.secrets == ["tornpay-very-secret"]
    text = caplog.text
    assert "LEAKME" not in text and "tornpay-very-secret" not in text
    assert "code=[secret]" in text


@pytest.mark.gen_test
async def test_access_log_is_scrubbed(http_client, base_url, caplog):
    caplog.set_level(logging.INFO, logger="tornado.access")
    await http_client.fetch(base_url + "/wxpay/oauth/callback?code=SECRETCODE42&state=zz",
                            raise_error=False)
    await http_client.fetch(base_url + f"/healthz?sign={API_KEY}", raise_error=False)
    lines = [r.getMessage() for r in caplog.records if r.name == "tornado.access"]
    assert any("/wxpay/oauth/callback?code=[secret]" in line for line in lines), lines
    assert all("SECRETCODE42" not in line and API_KEY not in line for line in lines)


def _record(logger, fn):
    records = []

    class Grab(logging.Handler):
        def emit(self, record):
            records.append(record)

    handler = Grab()
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        fn()
    finally:
        logger.removeHandler(handler)
    return records


def test_order_log_puts_out_trade_no_on_the_line():
    logger = logging.getLogger("tornpay.test.orders")
    (record,) = _record(logger, lambda: order_log(logger, "TP123", source="notify").info(
        "paid by %s", "notify"))
    # Any formatter shows it (the estate's too) ...
    assert logging.Formatter("%(message)s").format(record) == \
        "paid by notify out_trade_no=TP123 source=notify"
    assert record.out_trade_no == "TP123"
    # ... and tornpay's formatters write it as a field, not twice.
    kv = KeyValueFormatter().format(record)
    assert 'msg="paid by notify"' in kv and kv.endswith("out_trade_no=TP123 source=notify")
    data = json.loads(JSONFormatter().format(record))
    assert data["msg"] == "paid by notify"
    assert data["out_trade_no"] == "TP123" and data["level"] == "INFO"
    assert data["logger"] == "tornpay.test.orders"


def test_plain_extra_and_exceptions_in_json():
    logger = logging.getLogger("tornpay.test.extra")

    def log():
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("failed", extra={"out_trade_no": "TP9"})

    (record,) = _record(logger, log)
    data = json.loads(JSONFormatter().format(record))
    assert data["out_trade_no"] == "TP9" and "ValueError: boom" in data["exc"]
    with pytest.raises(ValueError):
        make_formatter("xml")


def test_configure_standalone_logging_scrubs_secrets():
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    stream = io.StringIO()
    try:
        configure("INFO", "json", stream=stream, secrets=[API_KEY])
        logging.getLogger("tornpay.test.configure").info("signing with %s", API_KEY)
        logging.getLogger("tornado.general").warning("400 GET /cb?code=abc123 (ip)")
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved_handlers:
            root.addHandler(handler)
        root.setLevel(saved_level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["msg"] == "signing with [secret]"
    assert "abc123" not in lines[1]["msg"]


def test_lines_naming_an_order_get_the_field():
    logger = logging.getLogger("tornpay.test.named")
    records = _record(logger, lambda: (
        logger.info("notify for order %s: duplicate", "TP20240501080000a1B2c3D4e5F6g7"),
        logger.warning("wechat orderquery out_trade_no=shop-42 outcome=success"),
        logger.info("nothing about orders")))
    kv = [KeyValueFormatter().format(r) for r in records]
    assert kv[0].endswith("out_trade_no=TP20240501080000a1B2c3D4e5F6g7")
    assert json.loads(JSONFormatter().format(records[1]))["out_trade_no"] == "shop-42"
    assert "out_trade_no" not in kv[2]


def test_exception_text_is_scrubbed_too():
    import logging

    from tornpay.weblog import ScrubFilter

    secret = "s3cret-api-key-value-0123456789ab"
    logger = logging.getLogger("tornpay.test.exc_scrub")
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(self.format(record))

    handler = Keep()
    handler.addFilter(ScrubFilter([secret]))
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            raise RuntimeError(f"upstream said key={secret} at http://x/cb?code=CODE123456")
        except RuntimeError:
            logger.exception("call failed")
    finally:
        logger.removeHandler(handler)
    assert len(records) == 1
    assert "RuntimeError" in records[0] and "call failed" in records[0]
    assert secret not in records[0] and "CODE123456" not in records[0]


def test_sql_lines_keep_the_statement_and_scrub_the_parameters():
    # peewee logs (sql, params) at DEBUG; the statement must survive intact.
    sql = ('SELECT "t1"."id" FROM "tornpay_delivery" AS "t1" WHERE (("t1"."state" = ?) AND '
           '("t1"."id" IN (?, ?)))')
    xml = "<xml><sign>C380BEC2BFD727A4B6845133519F3AD6</sign></xml>"
    params = ["pending", "TP20240102030405abcdEFGH123456", xml, "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
              "wx201410272009395522657a690389285100", 3, None, API_KEY]
    record = logging.LogRecord("peewee", logging.DEBUG, __file__, 1, (sql, params), None, None)
    assert ScrubFilter([API_KEY]).filter(record)
    text = record.getMessage()
    assert sql in text  # not "IN (?%2C= ?%29%29%29="
    for gone in ("C380BEC2", "oUpF8u", "wx2014", API_KEY):
        assert gone not in text
    assert record.msg[1] == ["pending", "TP20240102030405abcdEFGH123456", "[secret]", "[secret]",
                             "[secret]", 3, None, "[secret]"]


def test_scrub_text_scrubs_secret_xml_elements():
    # tornado.curl_httpclient at DEBUG prints request bodies: the signed unified order.
    body = repr(b"<xml><openid><![CDATA[oUpF8uMuAJO_M2pxb1Q9zNjWeS6o]]></openid>"
                b"<total_fee>9900</total_fee><sign>C380BEC2BFD727A4B6845133519F3AD6</sign></xml>")
    text = scrub_text("> " + body)
    assert "oUpF8u" not in text and "C380BEC2" not in text
    assert "<total_fee>9900</total_fee>" in text and "<sign>[secret]</sign>" in text


def test_install_scrub_filter_covers_peewee():
    flt = install_scrub_filter(secrets=["tornpay-very-secret"])
    try:
        assert flt in logging.getLogger("peewee").filters
    finally:
        for name in ("peewee", "tornado.access", "tornado.application", "tornado.general",
                     "tornado.curl_httpclient"):
            logging.getLogger(name).removeFilter(flt)
