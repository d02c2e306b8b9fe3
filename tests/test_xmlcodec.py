"""The hardened XML codec: round trips, CDATA, and every construct it must refuse."""

import pytest

from tornpay.protocol.xmlcodec import MAX_XML_BYTES, XMLError, decode_xml, encode_xml


def test_round_trip_keeps_exact_values():
    params = {"body": "示例商城-会员充值", "total_fee": "1", "attach": " a]]>b ", "zero": "0"}
    assert decode_xml(encode_xml(params)) == params


def test_integers_bare_strings_in_cdata():
    assert encode_xml({"total_fee": 1, "body": "x"}) == (
        b"<xml><total_fee>1</total_fee><body><![CDATA[x]]></body></xml>"
    )


def test_decodes_cdata_and_bare_values_alike():
    doc = b"<xml><a><![CDATA[x y]]></a><b>2</b><c></c></xml>"
    assert decode_xml(doc) == {"a": "x y", "b": "2", "c": ""}


@pytest.mark.parametrize(
    "name,doc,reason",
    [
        ("doctype", b"<!DOCTYPE xml><xml><a>1</a></xml>", "DTD"),
        ("internal_entity", b'<!DOCTYPE xml [<!ENTITY e "x">]><xml><a>&e;</a></xml>', "DTD"),
        (
            "external_entity",
            b'<!DOCTYPE xml [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><a>&e;</a></xml>',
            "DTD",
        ),
        (
            "parameter_entity",
            b'<!DOCTYPE xml [<!ENTITY % p SYSTEM "http://127.0.0.1:1/x.dtd"> %p;]><xml/>',
            "DTD",
        ),
        ("attlist", b'<!DOCTYPE xml [<!ATTLIST a b CDATA "z">]><xml><a>1</a></xml>', "DTD"),
        ("undeclared_entity", b"<xml><a>&e;</a></xml>", "malformed"),
        ("nested", b"<xml><a><b>1</b></a></xml>", "must not contain"),
        ("duplicate", b"<xml><a>1</a><a>2</a></xml>", "duplicated"),
        ("attribute", b'<xml><a b="1">1</a></xml>', "attributes"),
        ("wrong_root", b"<root><a>1</a></root>", "root"),
        ("truncated", b"<xml><a>1</a>", "malformed"),
        ("empty", b"", "empty"),
        ("json", b'{"a": 1}', "malformed"),
        ("latin1", "<xml><a>é</a></xml>".encode("latin-1"), "UTF-8"),
    ],
)
def test_refuses(name, doc, reason):
    with pytest.raises(XMLError, match=reason):
        decode_xml(doc)


def test_refuses_billion_laughs():
    lol = (
        b'<!DOCTYPE xml [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><xml><x>&c;</x></xml>'
    )
    with pytest.raises(XMLError):
        decode_xml(lol)


def test_refuses_oversized_body():
    doc = b"<xml><a>" + b"x" * MAX_XML_BYTES + b"</a></xml>"
    with pytest.raises(XMLError, match="larger than"):
        decode_xml(doc)


def test_cdata_mentioning_a_doctype_is_just_text():
    doc = b"<xml><attach><![CDATA[<!DOCTYPE x> & <!ENTITY>]]></attach></xml>"
    assert decode_xml(doc) == {"attach": "<!DOCTYPE x> & <!ENTITY>"}


def test_declared_encoding_cannot_switch_the_parser_off_utf8():
    # The fast path forces UTF-8: a document claiming latin-1 is read as UTF-8.
    doc = '<?xml version="1.0" encoding="ISO-8859-1"?><xml><a>示例</a></xml>'.encode("utf-8")
    assert decode_xml(doc) == {"a": "示例"}


def test_comments_are_ignored_by_the_careful_path():
    assert decode_xml(b"<xml><!-- a comment --><a>1</a></xml>") == {"a": "1"}


@pytest.mark.parametrize("doc", [
    b"<xml><a>1</a></xml><!DOCTYPE late>",
    b"<xml><a>1\x00</a></xml>",
    "<xml><a>1</a></xml>".encode("utf-16"),
])
def test_refuses_late_declarations_nul_and_utf16(doc):
    with pytest.raises(XMLError):
        decode_xml(doc)


def test_character_references_are_values():
    assert decode_xml(b"<xml><a>&#x41;&lt;&amp;</a></xml>") == {"a": "A<&"}
