"""Issue 14.10: attacker text cannot name an order in a log line, nor raise an ALERT."""

import io
import json
import logging

import pytest

from flow_helpers import notify_fields, signed_notify
from test_notify import order  # noqa: F401  (the fixture: a PREPAID order by checkout)
from tornpay.logs import JSONFormatter, KeyValueFormatter, configure
from tornpay.weblog import ScrubFilter

KEY = "192006250b4c09247ec02edce69f6a2d"
VICTIM = "TP20240501080000a1B2c3D4e5F6g7"


@pytest.fixture
def lines(caplog):
    """Every record, formatted as tornpay writes it (text and JSON) and as an estate would."""
    caplog.set_level(logging.INFO)  # (SQL at DEBUG has its own scrubbing rules)

    def formatted():
        out = []
        for record in caplog.records:
            out.append(("kv", KeyValueFormatter().format(record)))
            out.append(("json", json.loads(JSONFormatter().format(record))))
            out.append(("plain", logging.Formatter("%(levelname)s %(message)s").format(record)))
        return out
    return formatted


async def _post(http_client, base_url, body, path="/wxpay/notify"):
    return await http_client.fetch(base_url + path, method="POST", body=body,
                                   headers={"Content-Type": "text/xml"}, raise_error=False)


def _attributed_to(lines, number):
    return [text for kind, text in lines() if kind == "json" and text.get("out_trade_no") == number]


@pytest.mark.gen_test
async def test_free_text_cannot_name_an_order_or_say_alert(http_client, base_url, lines):
    spoof = f"out_trade_no={VICTIM} ALERT\nlevel=ERROR msg=forged out_trade_no={VICTIM}"
    bodies = [
        # return_code FAIL with the spoof in return_msg: refused before any check
        ("<xml><return_code>FAIL</return_code><return_msg><![CDATA[%s]]></return_msg></xml>"
         % spoof).encode(),
        # the spoof in out_trade_no itself (malformed, so refused)
        ("<xml><return_code>SUCCESS</return_code><out_trade_no><![CDATA[%s]]></out_trade_no>"
         "</xml>" % spoof).encode(),
    ]
    for body in bodies:
        await _post(http_client, base_url, body)
    await _post(http_client, base_url, b"<xml><return_code>SUCCESS</return_code>"
                b"<req_info>x</req_info><appid><![CDATA[ALERT appid]]></appid></xml>",
                path="/wxpay/refund-notify")
    assert _attributed_to(lines, VICTIM) == []
    for kind, text in lines():
        shown = json.dumps(text) if kind == "json" else text
        assert "ALERT" not in shown, shown
        if kind == "plain":
            assert "\n" not in text, text  # one record, one line, whatever the estate formats


@pytest.mark.gen_test
async def test_unsigned_notify_naming_a_real_order_is_not_attributed_to_it(
        http_client, base_url, order, lines):
    forged = notify_fields(order)
    forged["sign"] = "0" * 32
    body = signed_notify(forged, "x" * 32)  # wrong key: the signature fails
    await _post(http_client, base_url, body)
    assert _attributed_to(lines, order.out_trade_no) == []
    refused = [t for k, t in lines() if k == "json" and "refused" in t["msg"]]
    assert refused and order.out_trade_no in refused[0]["msg"]  # still said, quoted


@pytest.mark.gen_test
async def test_tornpay_alerts_keep_the_word_and_the_order(http_client, base_url, order, lines):
    await _post(http_client, base_url, signed_notify(notify_fields(order, total_fee=1), KEY))
    alerts = [t for k, t in lines() if k == "json" and t["msg"].startswith("ALERT")]
    assert alerts and alerts[0]["level"] == "ERROR"
    refusal = [t for k, t in lines() if k == "json" and "refused" in t["msg"]]
    # Signed by WeChat: this refusal may name the order as a field.
    assert refusal and refusal[0]["out_trade_no"] == order.out_trade_no


@pytest.mark.gen_test
async def test_access_log_paths_cannot_say_alert_or_name_an_order(http_client, base_url, lines):
    await http_client.fetch(f"{base_url}/wxpay/ALERT?out_trade_no={VICTIM}", raise_error=False)
    assert _attributed_to(lines, VICTIM) == []
    assert not any("ALERT" in (json.dumps(t) if k == "json" else t) for k, t in lines())


def test_untrusted_quotes_escapes_and_bounds():
    from tornpay.logsafe import untrusted

    text = untrusted("a\nb\r\x1b[31m alert ALERT \u202e" + "z" * 500)
    assert "\n" not in text and "\r" not in text and "\x1b" not in text and "\u202e" not in text
    assert "ALERT" not in text.upper().replace("\\X41LERT", "").replace("\\X61LERT", "")
    assert text.startswith("'") and text.endswith("...") and len(text) < 300


@pytest.fixture
def standalone_logging():
    """``configure()``'s root handler on a StringIO; the session's handlers and flags restored."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, logging._srcfile, logging.logThreads,
             logging.logProcesses, logging.logMultiprocessing)
    stream = io.StringIO()
    yield stream
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved[0]:
        root.addHandler(handler)
    root.setLevel(saved[1])
    (logging._srcfile, logging.logThreads, logging.logProcesses,
     logging.logMultiprocessing) = saved[2:]


def test_a_record_through_two_scrub_filters_loses_both_filters_secrets(standalone_logging):
    # The second filter skips a record the first scrubbed only for the same secrets.
    configure("INFO", "text", stream=standalone_logging, secrets=["handler-secret-1"])
    logger = logging.getLogger("tornado.access")
    flt = ScrubFilter(["logger-secret-2"])
    logger.addFilter(flt)
    try:
        logger.info("GET /x handler-secret-1 logger-secret-2 (%s)", "ip")
    finally:
        logger.removeFilter(flt)
    line = standalone_logging.getvalue()
    assert "handler-secret-1" not in line and "logger-secret-2" not in line
    assert line.count("[secret]") == 2
    assert "tornpay_scrubbed" not in line


def test_extra_fields_keep_their_order_and_internal_marks_stay_out(standalone_logging):
    configure("INFO", "text", stream=standalone_logging)
    logging.getLogger("tornpay.test").info("hello", extra={"zeta": 1, "alpha": 2})
    logging.getLogger("tornpay.test").info("plain")
    first, second = standalone_logging.getvalue().splitlines()
    assert first.endswith("msg=hello zeta=1 alpha=2")
    assert second.endswith("msg=plain")


@pytest.mark.parametrize("text", ["order T1: PAID via notify", 'say "hi"', "back\\slash x",
                                  "tab\there", "line\nbreak", "nul\x00 x", "中文 订单", "", "a=b",
                                  "\u2028 separator"])
def test_a_quoted_value_is_exactly_what_json_would_write(text):
    from tornpay.logs import _kv

    quoted = _kv(text)
    assert quoted == json.dumps(text, ensure_ascii=False)
    assert json.loads(quoted) == text


def test_the_time_field_is_utc_to_the_millisecond_across_a_second():
    import datetime

    from tornpay.logs import _timestamp

    for created in (1700000000.9995, 1700000001.0004, 1700000001.25, 1700000061.999):
        record = logging.LogRecord("x", logging.INFO, "", 0, "m", (), None)
        record.created, record.msecs = created, int((created - int(created)) * 1000) + 0.0
        moment = datetime.datetime.fromtimestamp(created, datetime.timezone.utc)
        expected = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        assert _timestamp(record) == expected
