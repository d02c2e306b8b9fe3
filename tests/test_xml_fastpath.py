"""The flat-document fast path of decode_xml gives exactly what the parser gives, or defers."""

import random

import pytest

from tornpay.protocol import xmlcodec
from tornpay.protocol.xmlcodec import XMLError, decode_xml, encode_xml


def parser_answer(body: bytes, root: str = "xml"):
    """What decode_xml answers with the fast path off: the fields, or the refusal."""
    saved = dict(xmlcodec._FLAT)
    xmlcodec._FLAT.clear()
    try:
        return decode_xml(body, root=root)
    except XMLError as exc:
        return ("refused", str(exc))
    finally:
        xmlcodec._FLAT.update(saved)


def answer(body: bytes, root: str = "xml"):
    try:
        return decode_xml(body, root=root)
    except XMLError as exc:
        return ("refused", str(exc))


# Pieces a flat document is built from, many of them what the fast path must
# not take (markup, entities, CR, control characters, "]]>", odd names).
NAMES = ["a", "b", "out_trade_no", "_x", "a1", "A", "a-b", "a.b", "x:y", "é", "1a", "xml"]
TEXTS = ["", "1", "x y", " pad ", "示例", "a]b", "a]]>b", "&amp;", "&lt;x", "a&b", "<", ">",
         "\r\n", "\n", "\t", "\x01", "\ufffe", "]", "]]", "CDATA[", "&#x41;", "'\"", "\u00a0"]
GAPS = ["", " ", "\n", "\t", "\r\n", "x", "<!-- c -->", "<?pi x?>"]


def random_doc(rng: random.Random, root: str = "xml") -> bytes:
    parts = [rng.choice(["", "", "", " ", "<?xml version='1.0'?>", "\ufeff"]), f"<{root}>"]
    for _ in range(rng.randint(0, 5)):
        name = rng.choice(NAMES)
        text = "".join(rng.choice(TEXTS) for _ in range(rng.randint(0, 3)))
        inner = rng.choice([f"<![CDATA[{text}]]>", text, f"<![CDATA[{text}]]>{text}"])
        tail = rng.choice([f"</{name}>", f"</{name}>", f"</{name} >", "</zz>"])
        opening = rng.choice([f"<{name}>", f"<{name}>", f'<{name} k="v">', f"<{name}/>"])
        parts.append(rng.choice(GAPS) + opening + ("" if opening.endswith("/>") else inner + tail))
    parts.append(rng.choice(["", " ", "\n", "x"]) + rng.choice([f"</{root}>", "</other>"]))
    parts.append(rng.choice(["", "\n", " \n", "<x/>"]))
    return "".join(parts).encode("utf-8")


@pytest.mark.parametrize("seed", range(4))
def test_random_documents_answer_as_the_parser_does(seed):
    rng = random.Random(seed)
    taken = 0
    for _ in range(2500):
        root = rng.choice(["xml", "xml", "root"])
        body = random_doc(rng, root)
        expected = parser_answer(body, root)
        assert answer(body, root) == expected, body
        taken += xmlcodec._decode_flat(body.decode("utf-8", "replace"), root) is not None
    assert taken > 40  # the fast path was exercised, not only the parser


@pytest.mark.parametrize("doc", [
    b"<xml><a><![CDATA[x]]>y]]></a></xml>",          # a section ends at its first ]]>
    b"<xml><a>1</a><a>2</a></xml>",                   # duplicated field: refused
    b"<xml><a>x\r\ny</a></xml>",                      # CR normalised by the parser
    b"<xml><a>\x01</a></xml>",                        # control character: refused
    b"<xml><a>&amp;</a></xml>",                       # entity decoded by the parser
    b"<xml><a><b>1</b></a></xml>",                    # nested: refused
    b"<xml>junk<a>1</a></xml>",                       # text between fields: ignored
    b"<xml><a>1</a></xml><b/>",                       # junk after the root: refused
])
def test_edge_cases_go_to_the_parser(doc):
    assert xmlcodec._decode_flat(doc.decode(), "xml") is None
    assert answer(doc) == parser_answer(doc)


def test_a_signed_notify_takes_the_fast_path_with_exact_values():
    params = {"appid": "wx1", "attach": " 示例 a b ", "total_fee": "100", "empty": "",
              "sign": "ABC"}
    body = encode_xml(params)
    assert xmlcodec._decode_flat(body.decode(), "xml") == params
    assert decode_xml(body) == params == parser_answer(body)
