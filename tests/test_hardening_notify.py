"""Bad notifies on the real /notify route: each refused per its generation; nothing changes.

v2 answers FAIL XML (never 500/HTML); v3 answers 400 {"code": "FAIL", "message": ...} and
204 on success (SPEC §10). Every catalogue case with a v3 meaning runs on both (``V3``);
the others say in ``V2_ONLY`` why they are XML-only.
"""

import json
import logging
import types

import pytest

from flow_helpers import (ALICE, BOB, notify_fields, order_row, order_snapshot, payer_browser,
                          prepaid_order, signed_notify)
from v3_notify_helpers import WECHATPAY_KEY, transaction
from v3_notify_helpers import notify as v3_notify
from tornpay.protocol.sign import make_sign
from tornpay.protocol.v3.signing import reply_message, rsa_sign
from tornpay.protocol.xmlcodec import MAX_XML_BYTES, decode_xml, encode_xml
from tornpay.storage.models import Delivery, Event, Notification, Order

KEY = "192006250b4c09247ec02edce69f6a2d"
OTHER_KEY = "0" * 32
TXN = "4200002315202406013425869417"


@pytest.fixture
def orders(http_client, tp_settings, io_loop, monkeypatch, api_version):
    """Two PREPAID orders made through checkout: on v2 one MD5, one HMAC-SHA256; on v3 RSA."""
    def checkout(openid=ALICE):
        return prepaid_order(payer_browser(http_client, tp_settings, openid))

    md5 = io_loop.run_sync(checkout)
    if api_version == "v3":
        # Another buyer: the same buyer's second checkout would resume the first order.
        other = io_loop.run_sync(lambda: checkout(BOB))
        assert md5.out_trade_no != other.out_trade_no
        assert md5.state == other.state == "PREPAID"
        assert md5.api_version == other.api_version == "v3"
        return types.SimpleNamespace(md5=md5, hmac=other)
    monkeypatch.setattr(tp_settings.wechat, "sign_type", "HMAC-SHA256")
    hmac_order = io_loop.run_sync(checkout)
    monkeypatch.setattr(tp_settings.wechat, "sign_type", "MD5")
    assert (md5.sign_type, hmac_order.sign_type) == ("MD5", "HMAC-SHA256")
    assert md5.state == hmac_order.state == "PREPAID"
    return types.SimpleNamespace(md5=md5, hmac=hmac_order)


def world():
    """Everything a refused notify must leave alone."""
    return {
        "orders": {o["out_trade_no"]: o for o in Order.select().dicts()},
        "events": Event.select().count(),
        "deliveries": Delivery.select().count(),
    }


async def post_notify(http_client, base_url, body=None, **kwargs):
    """POST one notify (a v3 one is ``(headers, body)``); its reply as v2's two fields."""
    headers = {"Content-Type": "text/xml"}
    if isinstance(body, tuple):
        headers, body = body
        return await _post_v3(http_client, base_url, headers, body, **kwargs)
    reply = await http_client.fetch(base_url + "/wxpay/notify", method="POST", body=body,
                                    headers=headers, raise_error=False, **kwargs)
    # WeChat's protocol: always HTTP 200 with the XML reply, never an error page.
    assert reply.code == 200, (reply.code, reply.body[:300])
    assert reply.headers["Content-Type"].startswith("text/xml")
    assert b"<html" not in reply.body.lower() and b"Traceback" not in reply.body
    return decode_xml(reply.body)


async def _post_v3(http_client, base_url, headers, body, **kwargs):
    reply = await http_client.fetch(base_url + "/wxpay/notify", method="POST", body=body,
                                    headers=headers, raise_error=False, **kwargs)
    # SPEC §10: 204 on success (and duplicate); a refusal 400 with a JSON FAIL, never HTML.
    if reply.code == 204:
        assert reply.body == b""
        return {"return_code": "SUCCESS", "return_msg": "OK"}
    assert reply.code == 400, (reply.code, reply.body[:300])
    assert reply.headers["Content-Type"].startswith("application/json")
    answer = json.loads(reply.body)
    assert set(answer) == {"code", "message"}
    return {"return_code": answer["code"], "return_msg": answer["message"]}


# -- builders: each returns the body of one notify, given the two orders -------------------


def fields(o, which="md5", **kw):
    return notify_fields(getattr(o, which), **kw)


def good(o, which="md5"):
    st = "MD5" if which == "md5" else "HMAC-SHA256"
    return signed_notify(fields(o, which), KEY, st)


def good_text(o):
    return good(o).decode()


def with_prolog(prolog, replace=None):
    """A correctly signed notify behind ``prolog``; ``replace`` swaps a value for a reference."""
    def build(o):
        text = good_text(o)
        if replace:
            text = text.replace(*replace)
        return (prolog + text).encode()
    return build


def signed_with(which="md5", algo="MD5", key=KEY, **kw):
    """Fields of order ``which`` changed by ``kw``, then signed correctly with ``algo``."""
    return lambda o: signed_notify(fields(o, which, **kw), key, algo)


def without(name, which="md5"):
    """Signed correctly, then ``name`` dropped (sign included: not resigned)."""
    def build(o):
        f = fields(o, which)
        f["sign"] = make_sign(f, KEY)
        f.pop(name)
        return encode_xml(f)
    return build


def signed_without(name):
    """``name`` removed before signing: a consistent message that lacks it."""
    def build(o):
        f = fields(o)
        f.pop(name)
        return signed_notify(f, KEY)
    return build


def resigned(transform):
    """A correct sign, then ``transform(sign)`` put in its place."""
    def build(o):
        f = fields(o)
        f["sign"] = transform(make_sign(f, KEY))
        return encode_xml(f)
    return build


def raw(text):
    return lambda o: text if isinstance(text, bytes) else text.encode()


def billion_laughs():
    ents = ['<!ENTITY l0 "lol">'] + [
        f'<!ENTITY l{i} "{("&l%d;" % (i - 1)) * 10}">' for i in range(1, 10)]
    return "<!DOCTYPE xml [" + "".join(ents) + "]>"


def quadratic(o):
    text = good_text(o).replace("<bank_type><![CDATA[OTHERS]]>",
                                "<bank_type>" + "&a;" * 1000)
    return ('<!DOCTYPE xml [<!ENTITY a "' + "A" * 30000 + '">]>' + text).encode()


def duplicated(name, value):
    def build(o):
        text = good_text(o)
        return text.replace("</xml>", f"<{name}><![CDATA[{value}]]></{name}></xml>").encode()
    return build


def nested(o):
    return good_text(o).replace("<total_fee>9900</total_fee>",
                                "<total_fee><fen>9900</fen></total_fee>").encode()


def attribute(o):
    return good_text(o).replace("<total_fee>", '<total_fee currency="USD">').encode()


def wrong_root(o):
    return good_text(o).replace("<xml>", "<root>").replace("</xml>", "</root>").encode()


def xinclude(o):
    return good_text(o).replace(
        "<xml>", '<xml xmlns:xi="http://www.w3.org/2001/XInclude">'
        '<xi:include href="file:///etc/passwd" parse="text"/>').encode()


def truncated(o):
    body = good(o)
    return body[: len(body) // 2]


def gbk(o):
    f = fields(o, attach="私教课")
    f["sign"] = make_sign(f, KEY)
    text = encode_xml(f).decode("utf-8")
    return ('<?xml version="1.0" encoding="GBK"?>' + text).encode("gbk")


def utf16(o):
    return good_text(o).encode("utf-16")


def oversized(o):
    body = good(o)
    return body.replace(b"</xml>", b" " * (MAX_XML_BYTES - len(body) + 1) + b"</xml>")


# The return_msg each refusal answers with.
XML, SIGN, OTN = "invalid XML", "signature failed", "invalid out_trade_no"
UNKNOWN, BIG, RC = "order not found", "body too large", "return_code is not SUCCESS"
FEE, FEE_TYPE, TXN_ID = "total_fee mismatch", "fee_type mismatch", "missing transaction_id"
APPID, MCH = "appid mismatch", "mch_id mismatch"

CASES = [
    # XML structure and DTDs (reference P15: XXE)
    pytest.param(with_prolog("<!DOCTYPE xml>"), XML, id="doctype_without_subset"),
    pytest.param(with_prolog('<!DOCTYPE xml [<!ENTITY ok "SUCCESS">]>',
                             ("<result_code><![CDATA[SUCCESS]]>", "<result_code>&ok;")),
                 XML, id="internal_entity"),
    pytest.param(with_prolog('<!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]>',
                             ("<![CDATA[OTHERS]]>", "&x;")), XML, id="external_entity_file"),
    pytest.param(with_prolog('<!DOCTYPE xml [<!ENTITY x SYSTEM "http://127.0.0.1:9/k">]>',
                             ("<![CDATA[OTHERS]]>", "&x;")), XML, id="external_entity_http"),
    pytest.param(with_prolog('<!DOCTYPE xml SYSTEM "http://127.0.0.1:9/evil.dtd">'), XML,
                 id="external_dtd"),
    pytest.param(with_prolog("<!DOCTYPE xml [<!ENTITY % p \"<!ENTITY x 'PAID'>\"> %p;]>",
                             ("<![CDATA[OTHERS]]>", "&x;")), XML, id="parameter_entity"),
    pytest.param(with_prolog('<!DOCTYPE xml [<!ENTITY % e SYSTEM "http://127.0.0.1:9/e.dtd">'
                             " %e;]>"), XML, id="external_parameter_entity"),
    pytest.param(with_prolog(billion_laughs(), ("<![CDATA[OTHERS]]>", "&l9;")), XML,
                 id="billion_laughs"),
    pytest.param(quadratic, XML, id="quadratic_blowup"),
    pytest.param(with_prolog('<!DOCTYPE xml [<!ATTLIST total_fee currency CDATA "USD">]>'), XML,
                 id="attlist_turns_field_into_structure"),
    pytest.param(lambda o: good_text(o).replace("<![CDATA[OTHERS]]>", "&nope;").encode(), XML,
                 id="undeclared_entity"),
    pytest.param(xinclude, XML, id="xinclude_element"),
    pytest.param(nested, XML, id="field_with_child_element"),
    pytest.param(attribute, XML, id="field_with_attribute"),
    pytest.param(wrong_root, XML, id="root_not_xml"),
    # duplicated fields: which one would a parser keep?
    pytest.param(duplicated("out_trade_no", "TPsomeoneelse0000000000000000"), XML,
                 id="duplicated_out_trade_no"),
    pytest.param(duplicated("total_fee", "1"), XML, id="duplicated_total_fee"),
    pytest.param(duplicated("return_code", "SUCCESS"), XML, id="duplicated_return_code"),
    pytest.param(duplicated("sign", "0" * 32), XML, id="duplicated_sign"),
    # whitespace-padded values, correctly signed over the padding (reference P5)
    pytest.param(signed_with(return_code=" SUCCESS"), RC, id="return_code_leading_space"),
    pytest.param(lambda o: signed_notify(fields(o, out_trade_no=o.md5.out_trade_no + " "), KEY),
                 OTN, id="out_trade_no_trailing_space"),
    pytest.param(lambda o: signed_notify(fields(o, out_trade_no=" " + o.md5.out_trade_no), KEY),
                 OTN, id="out_trade_no_leading_space"),
    pytest.param(signed_with(total_fee=" 9900"), FEE, id="total_fee_leading_space"),
    pytest.param(signed_with(appid="wxd930ea5d5a258f4f "), APPID, id="appid_trailing_space"),
    pytest.param(signed_with(mch_id="\t10000100"), MCH, id="mch_id_leading_tab"),
    # empty and missing fields
    pytest.param(raw(b""), XML, id="empty_body"),
    pytest.param(raw(b"  \r\n\t "), XML, id="whitespace_body"),
    pytest.param(raw("<xml></xml>"), RC, id="empty_document"),
    pytest.param(without("sign"), SIGN, id="missing_sign"),
    pytest.param(resigned(lambda s: ""), SIGN, id="empty_sign"),
    pytest.param(signed_without("out_trade_no"), OTN, id="missing_out_trade_no"),
    pytest.param(signed_with(out_trade_no=""), OTN, id="empty_out_trade_no"),
    pytest.param(signed_without("total_fee"), FEE, id="missing_total_fee"),
    pytest.param(signed_with(total_fee=""), FEE, id="empty_total_fee"),
    pytest.param(signed_without("return_code"), RC, id="missing_return_code"),
    pytest.param(signed_without("appid"), APPID, id="missing_appid"),
    pytest.param(signed_without("mch_id"), MCH, id="missing_mch_id"),
    pytest.param(signed_without("transaction_id"), TXN_ID, id="missing_transaction_id"),
    # the signature
    pytest.param(resigned(str.lower), SIGN, id="sign_lower_case"),
    pytest.param(resigned(lambda s: s[:-1]), SIGN, id="sign_one_char_short"),
    pytest.param(resigned(lambda s: s + "0"), SIGN, id="sign_one_char_long"),
    pytest.param(resigned(lambda s: s * 2), SIGN, id="sign_64_chars_on_md5_order"),
    pytest.param(resigned(lambda s: s[:-1] + "é"), SIGN, id="sign_non_ascii"),
    pytest.param(signed_with(key=OTHER_KEY), SIGN, id="sign_with_another_key"),
    pytest.param(lambda o: good(o).replace(b"OTHERS", b"CMB_DEBIT"), SIGN,
                 id="field_changed_after_signing"),
    pytest.param(lambda o: good(o).replace(b"</xml>", b"<coupon_fee>1</coupon_fee></xml>"), SIGN,
                 id="field_added_after_signing"),
    pytest.param(signed_with("hmac", "MD5"), SIGN, id="md5_sign_on_hmac_order"),
    pytest.param(signed_with("hmac", "MD5", sign_type="MD5"), SIGN,
                 id="md5_sign_declared_on_hmac_order"),
    pytest.param(signed_with("md5", "HMAC-SHA256"), SIGN, id="hmac_sign_on_md5_order"),
    pytest.param(signed_with("md5", "HMAC-SHA256", sign_type="HMAC-SHA256"), SIGN,
                 id="hmac_sign_declared_on_md5_order"),
    pytest.param(signed_with(sign_type="SHA1"), SIGN, id="unknown_sign_type"),
    # whose notify is it, and for how much (WeChat's "fake notify" warning)
    pytest.param(signed_with(appid="wx0000000000000000"), APPID, id="wrong_appid"),
    pytest.param(signed_with(mch_id="10000999"), MCH, id="wrong_mch_id"),
    pytest.param(signed_with(total_fee=1), FEE, id="total_fee_too_small"),
    pytest.param(signed_with(total_fee=9901), FEE, id="total_fee_too_big"),
    pytest.param(signed_with(total_fee="99.00"), FEE, id="total_fee_in_yuan"),
    pytest.param(signed_with(total_fee="-9900"), FEE, id="total_fee_negative"),
    pytest.param(signed_with(total_fee="9" * 40), FEE, id="total_fee_overflow"),
    pytest.param(signed_with(total_fee="９９００"), FEE, id="total_fee_fullwidth_digits"),
    pytest.param(signed_with(fee_type="USD"), FEE_TYPE, id="wrong_fee_type"),
    pytest.param(signed_with(fee_type="cny"), FEE_TYPE, id="fee_type_lower_case"),
    pytest.param(signed_with(return_code="FAIL"), RC, id="return_code_fail"),
    # which order
    pytest.param(signed_with(out_trade_no="TP20240601000000nosuchorder00"), UNKNOWN,
                 id="unknown_out_trade_no"),
    pytest.param(signed_with(out_trade_no="T" * 33), OTN, id="overlong_out_trade_no"),
    pytest.param(signed_with(out_trade_no="../../etc/passwd"), OTN, id="path_out_trade_no"),
    pytest.param(signed_with(out_trade_no="x' OR '1'='1"), OTN, id="sql_out_trade_no"),
    pytest.param(signed_with(out_trade_no="TP%00"), OTN, id="nul_escape_out_trade_no"),
    # not XML at all
    # (a JSON body is an API v3 notify now: tests/test_v3_notify.py refuses unsigned ones)
    pytest.param(raw("return_code=SUCCESS&result_code=SUCCESS&total_fee=9900"), XML,
                 id="form_body"),
    pytest.param(raw(bytes(range(256)) * 4), XML, id="binary_body"),
    pytest.param(raw(b"<xml><return_code>SUCCESS\x00</return_code></xml>"), XML, id="nul_byte"),
    pytest.param(truncated, XML, id="truncated_xml"),
    pytest.param(gbk, XML, id="gbk_charset"),
    pytest.param(utf16, XML, id="utf16_charset"),
    pytest.param(raw("<html><body>500 Internal Server Error</body></html>"), XML, id="html_body"),
    pytest.param(raw('<?xml version="1.0"?>'), XML, id="declaration_only"),
    # size
    pytest.param(oversized, BIG, id="over_64KiB_whole"),
]



# -- the same catalogue on API v3: builders return (headers, body) of a JSON notify -----------

DROP = object()
_OTHER_RSA = []


def other_rsa_key():
    """A WeChat Pay key nobody trusts (made once: RSA key generation is slow)."""
    if not _OTHER_RSA:
        from cryptography.hazmat.primitives.asymmetric import rsa
        _OTHER_RSA.append(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    return _OTHER_RSA[0]


def v3_with(**changes):
    """The first order's v3 notify, decrypted fields changed (``amount__total``; DROP drops)."""
    def build(o):
        plain = transaction(o.md5)
        for path, value in changes.items():
            *parents, leaf = path.split("__")
            target = plain
            for name in parents:
                target = target[name]
            if value is DROP:
                target.pop(leaf)
            else:
                target[leaf] = value(o) if callable(value) else value
        return v3_notify(plain)
    return build


def v3_resigned(change_body):
    """A good v3 notify whose body ``change_body`` rewrites, then signed correctly again."""
    def build(o):
        headers, body = v3_notify(transaction(o.md5))
        body = change_body(body)
        headers["Wechatpay-Signature"] = rsa_sign(WECHATPAY_KEY, reply_message(
            headers["Wechatpay-Timestamp"], headers["Wechatpay-Nonce"], body))
        return headers, body
    return build


def v3_headers(name, change):
    """A good v3 notify, then header ``name`` replaced by ``change(value)`` (DROP drops it)."""
    def build(o):
        headers, body = v3_notify(transaction(o.md5))
        if change is DROP:
            headers.pop(name)
        else:
            headers[name] = change(headers[name])
        return headers, body
    return build


def v3_unsigned(change_body):
    """A good v3 notify whose body is changed after signing."""
    def build(o):
        headers, body = v3_notify(transaction(o.md5))
        return headers, change_body(body)
    return build


def v3_oversized(body):
    return body[:-1] + b" " * (MAX_XML_BYTES - len(body) + 1) + b"}"


SIG = "Wechatpay-Signature"
# Catalogue id -> (v3 builder, the v3 answer when it differs from v2's).
V3 = {
    "out_trade_no_trailing_space": (v3_with(out_trade_no=lambda o: o.md5.out_trade_no + " "),
                                    None),
    "out_trade_no_leading_space": (v3_with(out_trade_no=lambda o: " " + o.md5.out_trade_no),
                                   None),
    "total_fee_leading_space": (v3_with(amount__total=" 9900"), None),
    "appid_trailing_space": (v3_with(appid="wxd930ea5d5a258f4f "), None),
    "mch_id_leading_tab": (v3_with(mchid="\t10000100"), None),
    "empty_document": (v3_resigned(lambda b: b"{}"), "invalid notify"),
    "missing_sign": (v3_headers(SIG, DROP), None),
    "empty_sign": (v3_headers(SIG, lambda s: ""), None),
    "missing_out_trade_no": (v3_with(out_trade_no=DROP), None),
    "empty_out_trade_no": (v3_with(out_trade_no=""), None),
    "missing_total_fee": (v3_with(amount__total=DROP), None),
    "empty_total_fee": (v3_with(amount__total=""), None),
    "missing_appid": (v3_with(appid=DROP), None),
    "missing_mch_id": (v3_with(mchid=DROP), None),
    "missing_transaction_id": (v3_with(transaction_id=DROP), None),
    "sign_lower_case": (v3_headers(SIG, str.lower), None),
    "sign_one_char_short": (v3_headers(SIG, lambda s: s[:-1]), None),
    "sign_one_char_long": (v3_headers(SIG, lambda s: s + "0"), None),
    "sign_64_chars_on_md5_order": (v3_headers(SIG, lambda s: s * 2), None),
    "sign_with_another_key": (lambda o: v3_notify(transaction(o.md5), signer=other_rsa_key()),
                              None),
    "field_changed_after_signing": (lambda o: v3_notify(transaction(o.md5), tamper="body"), None),
    "field_added_after_signing": (v3_unsigned(lambda b: b.replace(b'"summary":"ok"',
                                                                  b'"summary":"ok","x":1')),
                                  None),
    "unknown_sign_type": (v3_headers("Wechatpay-Signature-Type",
                                     lambda s: "WECHATPAY2-SHA1-RSA1024"), None),
    "wrong_appid": (v3_with(appid="wx0000000000000000"), None),
    "wrong_mch_id": (v3_with(mchid="10000999"), None),
    "total_fee_too_small": (v3_with(amount__total=1), None),
    "total_fee_too_big": (v3_with(amount__total=9901), None),
    "total_fee_in_yuan": (v3_with(amount__total=99.00), None),
    "total_fee_negative": (v3_with(amount__total=-9900), None),
    "total_fee_overflow": (v3_with(amount__total=int("9" * 40)), None),
    "total_fee_fullwidth_digits": (v3_with(amount__total="９９００"), None),
    "wrong_fee_type": (v3_with(amount__currency="USD"), None),
    "fee_type_lower_case": (v3_with(amount__currency="cny"), None),
    "unknown_out_trade_no": (v3_with(out_trade_no="TP20240601000000nosuchorder00"), None),
    "overlong_out_trade_no": (v3_with(out_trade_no="T" * 33), None),
    "path_out_trade_no": (v3_with(out_trade_no="../../etc/passwd"), None),
    "sql_out_trade_no": (v3_with(out_trade_no="x' OR '1'='1"), None),
    "nul_escape_out_trade_no": (v3_with(out_trade_no="TP%00"), None),
    "nul_byte": (v3_resigned(lambda b: b.replace(b'"summary":"ok"', b'"summary":"o\x00k"')),
                 "invalid JSON"),
    "truncated_xml": (v3_resigned(lambda b: b[: len(b) // 2]), "invalid JSON"),
    "over_64KiB_whole": (v3_resigned(v3_oversized), None),
}

_XML = "XML only: DTDs, entities and markup structure have no JSON counterpart"
_SNIFF = "not JSON, so a v2 notify by its body (SPEC §10 tells the generations apart by it)"
_V2SIGN = "v2's MD5/HMAC choice per order; v3 has one scheme (RSA), tested above"
_RC = "v3 has no return_code: WeChat's own failures never reach the notify URL"
_DUP = "v3's fields are inside bytes WeChat signed and encrypted: no parser ambiguity to forge"
_HEADER = "a non-ASCII header value is refused by the HTTP client before it is sent"
V2_ONLY = {
    **dict.fromkeys(["doctype_without_subset", "internal_entity", "external_entity_file",
                     "external_entity_http", "external_dtd", "parameter_entity",
                     "external_parameter_entity", "billion_laughs", "quadratic_blowup",
                     "attlist_turns_field_into_structure", "undeclared_entity",
                     "xinclude_element", "field_with_child_element", "field_with_attribute",
                     "root_not_xml", "gbk_charset", "utf16_charset"], _XML),
    **dict.fromkeys(["empty_body", "whitespace_body", "form_body", "binary_body", "html_body",
                     "declaration_only"], _SNIFF),
    **dict.fromkeys(["md5_sign_on_hmac_order", "md5_sign_declared_on_hmac_order",
                     "hmac_sign_on_md5_order", "hmac_sign_declared_on_md5_order"], _V2SIGN),
    **dict.fromkeys(["return_code_leading_space", "missing_return_code", "return_code_fail"],
                    _RC),
    **dict.fromkeys(["duplicated_out_trade_no", "duplicated_total_fee",
                     "duplicated_return_code", "duplicated_sign"], _DUP),
    "sign_non_ascii": _HEADER,
}


def generations():
    """Every case on v2; those with a v3 meaning on v3 as well."""
    for case in CASES:
        build, why = case.values
        yield pytest.param(build, why, "v2", id=f"v2-{case.id}")
        if case.id in V3:
            v3_build, v3_why = V3[case.id]
            yield pytest.param(v3_build, v3_why or why, "v3", id=f"v3-{case.id}")


@pytest.mark.gen_test
@pytest.mark.parametrize("build, why, api_version", list(generations()))
async def test_bad_notify_answers_fail_and_changes_nothing(http_client, base_url, orders, build,
                                                           why, api_version, caplog):
    body = build(orders)
    before = world()
    with caplog.at_level(logging.WARNING):
        reply = await post_notify(http_client, base_url, body)
    assert reply == {"return_code": "FAIL", "return_msg": why}
    assert world() == before
    if why == FEE:  # correctly signed, another amount: someone must look (SPEC §5)
        assert "ALERT" in caplog.text
    # One row per POST, saying it was refused (the audit trail of what was tried).
    assert [n.outcome for n in Notification.select()] == ["refused"]


def not_success(orders, api_version, state):
    """A correctly signed notify whose result_code (v2) / trade_state (v3) is ``state``."""
    if api_version == "v3":
        return v3_with(trade_state=state)(orders)
    return signed_notify(fields(orders, result_code=state), KEY)


@pytest.mark.gen_test
@pytest.mark.parametrize("api_version", ["v2", "v3"])
@pytest.mark.parametrize("result_code", [" SUCCESS", "SUCCESS ", "FAIL", "", "NOTPAY",
                                         "CLOSED"])
async def test_result_code_not_exactly_success_acknowledged_but_not_paid(
        http_client, base_url, orders, result_code, api_version):
    # Reference §11.1 (v3: trade_state): only successful payments are notified; anything
    # else is logged and acknowledged so WeChat stops retrying, and pays nothing.
    before = world()
    body = not_success(orders, api_version, result_code)
    reply = await post_notify(http_client, base_url, body)
    assert reply["return_code"] == "SUCCESS"
    assert world() == before
    assert [n.outcome for n in Notification.select()] == ["ignored"]


def in_chunks(body, size):
    """A body producer: no Content-Length, so Tornado's client sends it chunked."""
    async def producer(write):
        for i in range(0, len(body), size):
            await write(body[i:i + size])
    return producer


@pytest.mark.gen_test
@pytest.mark.parametrize("api_version", ["v2", "v3"])
async def test_over_64KiB_chunked_answers_fail_and_changes_nothing(http_client, base_url, orders,
                                                                   api_version):
    if api_version == "v3":
        # A signed JSON notify padded past the limit inside its braces, sent in 1 KiB chunks.
        headers, body = v3_resigned(v3_oversized)(orders)
        before = world()
        reply = await _post_v3(http_client, base_url, headers, None,
                               body_producer=in_chunks(body, 1024))
        assert reply == {"return_code": "FAIL", "return_msg": BIG}
        assert world() == before
        return
    body = good(orders)

    async def producer(write):
        # No Content-Length: Tornado's client sends Transfer-Encoding: chunked.
        for _ in range(MAX_XML_BYTES // 1024 + 1):
            await write(b" " * 1024)
        await write(body)

    before = world()
    reply = await post_notify(http_client, base_url, body_producer=producer)
    assert reply["return_code"] == "FAIL" and "too large" in reply["return_msg"]
    assert world() == before


@pytest.mark.gen_test
@pytest.mark.parametrize("api_version", ["v2", "v3"])
async def test_chunked_notify_within_limit_is_accepted(http_client, base_url, orders,
                                                       api_version):
    if api_version == "v3":
        headers, body = good_in(orders, "v3")
        reply = await _post_v3(http_client, base_url, headers, None,
                               body_producer=in_chunks(body, 7))
    else:
        reply = await post_notify(http_client, base_url,
                                  body_producer=in_chunks(good(orders), 7))
    assert reply["return_code"] == "SUCCESS"
    assert order_row(orders.md5.out_trade_no).state == "PAID"


@pytest.mark.gen_test
@pytest.mark.parametrize("api_version", ["v2", "v3"])
async def test_exactly_64KiB_signed_notify_is_accepted(http_client, base_url, orders,
                                                       api_version):
    if api_version == "v3":
        def pad(b):
            return b[:-1] + b"\n" * (MAX_XML_BYTES - len(b)) + b"}"
        padded = v3_resigned(pad)(orders)
        assert len(padded[1]) == MAX_XML_BYTES
    else:
        body = good(orders)
        padded = body.replace(b"</xml>", b"\n" * (MAX_XML_BYTES - len(body)) + b"</xml>")
        assert len(padded) == MAX_XML_BYTES
    reply = await post_notify(http_client, base_url, padded)
    assert reply["return_code"] == "SUCCESS"
    assert order_row(orders.md5.out_trade_no).state == "PAID"


@pytest.mark.gen_test
async def test_content_length_over_discard_limit_never_reaches_the_parser(
        http_client, base_url, orders):
    # 2 MiB announced: refused from the headers; the connection may be cut
    # before the body is sent, and either way nothing is parsed or written.
    before = world()
    reply = await http_client.fetch(base_url + "/wxpay/notify", method="POST",
                                    body=b"<" * (2 * 1024 * 1024), raise_error=False)
    if reply.code == 200:
        assert decode_xml(reply.body)["return_code"] == "FAIL"
    else:
        assert reply.code == 599, reply.code  # connection closed: WeChat retries later
    assert world() == before


@pytest.mark.gen_test
async def test_unknown_extra_fields_correctly_signed_are_accepted(http_client, base_url, orders):
    # Reference §3.1: WeChat may add fields at any time; verify over all of them.
    extra = {"coupon_fee": "0", "coupon_count": "0", "cash_fee_type": "CNY",
             "settlement_total_fee": "9900", "version": "1.0", "device_info": "WEB",
             "promotion_detail": '{"promotion_detail":[]}', "zz_future_field": "新字段",
             "sign_type": "MD5"}
    reply = await post_notify(http_client, base_url,
                              signed_notify(fields(orders, **extra), KEY))
    assert reply == {"return_code": "SUCCESS", "return_msg": "OK"}
    row = order_row(orders.md5.out_trade_no)
    assert row.state == "PAID" and row.transaction_id == TXN
    assert Event.select().where(Event.hook == "on_paid").count() == 1


def good_in(orders, api_version, which="md5"):
    """The unmodified notify of order ``which`` in its generation."""
    if api_version == "v3":
        return v3_notify(transaction(getattr(orders, which)))
    return good(orders, which)


@pytest.mark.gen_test
@pytest.mark.parametrize("which, api_version", [("md5", "v2"), ("hmac", "v2"), ("md5", "v3")])
async def test_control_correct_notify_is_accepted_for_each_sign_type(
        http_client, base_url, orders, which, api_version):
    # The positive control of the catalogue: the unmodified notify pays its order, and
    # the same notify again (WeChat's replay) is acknowledged and changes nothing.
    notify = good_in(orders, api_version, which)
    reply = await post_notify(http_client, base_url, notify)
    assert reply == {"return_code": "SUCCESS", "return_msg": "OK"}
    paid = order_row(getattr(orders, which).out_trade_no)
    assert paid.state == "PAID"
    after = world()
    assert await post_notify(http_client, base_url, notify) == reply
    assert world() == after
    assert [n.outcome for n in Notification.select().order_by(Notification.id)] == [
        "accepted", "duplicate"]
    other = "hmac" if which == "md5" else "md5"
    assert order_row(getattr(orders, other).out_trade_no).state == "PREPAID"


@pytest.mark.gen_test
@pytest.mark.parametrize("api_version", ["v2", "v3"])
async def test_refused_notify_then_valid_one_still_pays(http_client, base_url, orders,
                                                        api_version):
    # A forged attempt must not poison the order for WeChat's real notify.
    snapshot = order_snapshot(orders.md5.out_trade_no)
    if api_version == "v3":
        forged = v3_notify(transaction(orders.md5, total=1), signer=other_rsa_key())
    else:
        forged = signed_notify(fields(orders, total_fee=1), OTHER_KEY)
    assert (await post_notify(http_client, base_url, forged))["return_code"] == "FAIL"
    assert order_snapshot(orders.md5.out_trade_no) == snapshot
    reply = await post_notify(http_client, base_url, good_in(orders, api_version))
    assert reply["return_code"] == "SUCCESS"
    assert order_row(orders.md5.out_trade_no).state == "PAID"


@pytest.mark.gen_test
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
async def test_other_methods_on_notify_answer_fail_xml(http_client, base_url, orders, method):
    before = world()
    body = good(orders) if method in ("PUT", "PATCH") else None
    reply = await http_client.fetch(base_url + "/wxpay/notify", method=method, body=body,
                                    raise_error=False, allow_nonstandard_methods=True)
    assert reply.code == 200, reply.code
    assert decode_xml(reply.body)["return_code"] == "FAIL"
    assert world() == before


def test_catalogue_has_at_least_forty_distinct_refusals():
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids)) >= 40


def test_every_case_runs_on_v3_or_says_why_not():
    ids = {case.id for case in CASES}
    assert set(V3) | set(V2_ONLY) == ids and not set(V3) & set(V2_ONLY)
    assert len(V3) >= 30
