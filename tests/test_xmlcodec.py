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
