"""WeChat's flat ``<xml>`` documents: CDATA encoding and a hardened, size-limited decoder."""

import re
import xml.etree.ElementTree as ET
from typing import Mapping, Optional, Union

import defusedxml
import defusedxml.ElementTree as DET

# Notifies and API replies are a few KiB; anything bigger is refused before parsing.
MAX_XML_BYTES = 64 * 1024


EMPTY, NOT_UTF8, INVALID = "empty", "not_utf8", "invalid"


class XMLError(ValueError):
    """The body is not an acceptable WeChat XML document; ``str(e)`` says why.

    ``reason`` is EMPTY, NOT_UTF8 or INVALID (anything else), for a caller that
    answers those apart (the simulator, as WeChat: POST_DATA_EMPTY, NOT_UTF8).
    """

    def __init__(self, message: str, reason: str = INVALID):
        super().__init__(message)
        self.reason = reason


def _cdata(text: str) -> str:
    # "]]>" cannot appear inside one CDATA section: split it across two.
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def encode_xml(params: Mapping[str, object]) -> bytes:
    """Encode a flat mapping as WeChat XML (UTF-8); strings in CDATA, integers bare.

    Names must be simple element names; values are written as received so the
    signature computed over them still matches.
    """
    parts = ["<xml>"]
    for name, value in params.items():
        if value is None:
            continue
        if not name.replace("_", "a").isalnum() or not name[0].isalpha():
            raise XMLError(f"bad element name {name!r}")
        text = str(value)
        body = text if text.isdigit() and text.isascii() else _cdata(text)
        parts.append(f"<{name}>{body}</{name}>")
    parts.append("</xml>")
    return "".join(parts).encode("utf-8")


def _has_declarations(body: bytes) -> bool:
    """True when ``<!`` appears other than as a CDATA opener (a DTD, comment, ...)."""
    start = body.find(b"<!")
    while start != -1:
        if not body.startswith(b"<![CDATA[", start):
            return True
        start = body.find(b"<!", start + 9)
    return False


def _parse(body: bytes) -> ET.Element:
    # A document with no "<!" but CDATA openers cannot carry a DTD, an entity
    # declaration or an ATTLIST, so the C parser (with the encoding forced to
    # UTF-8, whatever the XML declaration claims) is safe for it and ~5x faster
    # than defusedxml's pure-Python parser. Anything else goes through
    # defusedxml, which refuses every declaration.
    if _has_declarations(body):
        return DET.fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    parser = ET.XMLParser(encoding="utf-8")
    parser.feed(body)
    return parser.close()


# The flat shape WeChat and tornpay write: ``<root>``, then elements of one
# CDATA section (no "]") or of plain text (no markup, entity or "]"),
# separated by spaces, tabs or newlines.
_NAME = r"[A-Za-z_][A-Za-z0-9_]{0,63}"
_FIELD = re.compile(rf"<({_NAME})>(?:<!\[CDATA\[([^\]]*)\]\]>|([^<&\]]*))</\1>")
_FLAT = {root: re.compile(rf"<{root}>(?:[ \t\n]*<({_NAME})>(?:<!\[CDATA\[[^\]]*\]\]>|[^<&\]]*)"
                          rf"</\1>)*[ \t\n]*</{root}>[ \t\n]*")
         for root in ("xml", "root")}
# What an XML parser refuses (control characters, U+FFFE, U+FFFF) or rewrites
# (a CR it normalises): a body with any takes the parser's path.
_UNUSUAL = re.compile("[\x00-\x08\x0b-\x1f\ufffe\uffff]")


def _decode_flat(text: str, root: str) -> Optional[dict]:
    """The fields of a document in the flat shape, or None for anything else.

    Only a shape whose parse is certain is taken here, ~2x faster than the C
    parser and the checks on its tree (tests/test_xml_fastpath.py compares the
    two); anything else, every refusal included, goes to the parser.
    """
    shape = _FLAT.get(root)
    if shape is None or _UNUSUAL.search(text) is not None or shape.fullmatch(text) is None:
        return None
    found = _FIELD.findall(text, len(root) + 2)  # inside the root only
    fields = {name: cdata or plain for name, cdata, plain in found}
    return fields if len(fields) == len(found) else None  # a duplicate: the parser says so


def decode_xml(body: Union[bytes, str], root: str = "xml", limit: int = MAX_XML_BYTES) -> dict:
    """Decode a flat WeChat XML document into ``{name: str}``.

    Refuses, with :class:`XMLError`: bodies over ``limit`` bytes, empty or
    non-UTF-8 bodies, any DTD (DOCTYPE, ENTITY, ATTLIST), undeclared entities,
    a root other than ``root``, attributes, nested elements and duplicated
    fields. Values keep their exact text (no stripping) because the signature
    is computed over exactly what was sent.
    """
    if isinstance(body, str):
        body = body.encode("utf-8")
    if len(body) > limit:
        raise XMLError(f"body larger than {limit} bytes")
    if not body.strip():
        raise XMLError("empty body", EMPTY)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise XMLError("body is not UTF-8", NOT_UTF8) from None
    if b"\x00" in body:
        raise XMLError("body contains NUL bytes")
    flat = _decode_flat(text, root)
    if flat is not None:
        return flat
    try:
        element = _parse(body)
    except defusedxml.DTDForbidden:
        raise XMLError("DTD (DOCTYPE) is not allowed") from None
    except defusedxml.EntitiesForbidden:
        raise XMLError("entities are not allowed") from None
    except defusedxml.DefusedXmlException as exc:
        raise XMLError(f"forbidden XML construct: {type(exc).__name__}") from None
    except ET.ParseError as exc:
        raise XMLError(f"malformed XML: {exc}") from None
    if element.tag != root:
        raise XMLError(f"root element must be <{root}>")
    if element.attrib:
        raise XMLError(f"attributes are not allowed on <{root}>")
    fields: dict = {}
    for child in element:
        name = child.tag
        if not isinstance(name, str):
            raise XMLError("unexpected XML node")
        if len(child):
            raise XMLError(f"field {name!r} must not contain elements")
        if child.attrib:
            raise XMLError(f"field {name!r} must not have attributes")
        if name in fields:
            raise XMLError(f"field {name!r} is duplicated")
        fields[name] = child.text or ""
    return fields
