"""FreeSWITCH mod_xml_cdr documents, as the dict mod_json_cdr would have written for the call.

mod_xml_cdr writes one ``<cdr core-uuid="...">`` per call leg: ``<variables>`` with one element
per channel variable (its text URL-encoded with encode-values, FreeSWITCH's default), then
``<app_log>``, ``<callflow>`` elements and so on. The result is ``{"variables": {...}, ...}``
with the variables' text as FreeSWITCH wrote it, still URL-encoded: the engine decodes it as it
decodes a JSON CDR's, so the Call is the same. Repeated variable elements (``ARRAY::`` values
such as ``DP_MATCH``) are joined back into the one ``ARRAY::a|:b`` string the JSON has.

The parser is defusedxml's: a document type declaration, entities and external references are
refused before anything is expanded (a "billion laughs" costs nothing), and nesting deeper than
a CDR's is refused too.
"""
from __future__ import annotations

from typing import Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

__all__ = ["XmlCdrError", "cdr_from_xml", "REASONS", "looks_like_xml"]

REASONS = {
    "bad_xml": "not well-formed XML, or not a mod_xml_cdr <cdr> document",
    "xml_dtd": "XML with a DTD or entities (refused unexpanded: a denial-of-service risk)",
}
MAX_DEPTH = 32
"""A CDR nests 6 deep (cdr/callflow/caller_profile/originatee/originatee_caller_profile/x)."""


class XmlCdrError(ValueError):
    """An XML document that is no usable CDR; ``reason`` is one of REASONS, ``line`` is where
    the parser stopped (None when it did not say)."""

    def __init__(self, reason: str, detail: str, line: int | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail, self.line = reason, detail, line


def looks_like_xml(data: bytes) -> bool:
    """Whether a (stripped) content is XML: it starts with ``<``, as every XML document does."""
    return data[:1] == b"<"


def cdr_from_xml(data: bytes) -> dict[str, Any]:
    """The mod_json_cdr-shaped dict of one mod_xml_cdr document; XmlCdrError when it is none."""
    try:
        root = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as error:
        raise XmlCdrError("xml_dtd", f"{type(error).__name__}: a DTD, entity or external "
                                     f"reference, refused without expanding it") from None
    except ParseError as error:
        line = error.position[0] if error.position else None
        raise XmlCdrError("bad_xml", str(error), line) from None
    if root.tag != "cdr":
        raise XmlCdrError("bad_xml", f"the root element is <{root.tag[:40]}>, not <cdr>", 1)
    return _object(root, 0)


def _variables(element: Element) -> dict[str, str]:
    """Channel variables: name -> text as written (URL-encoded); repeated names -> ARRAY::."""
    variables: dict[str, str] = {}
    repeated: dict[str, list[str]] = {}
    for child in element:
        if len(child):
            raise XmlCdrError("bad_xml", f"variable <{child.tag[:40]}> holds elements, not text")
        text = (child.text or "").strip()  # pretty-printed files put whitespace around some
        if child.tag in variables:
            repeated.setdefault(child.tag, [variables[child.tag]]).append(text)
        variables[child.tag] = text
    for name, values in repeated.items():
        variables[name] = "ARRAY::" + "|:".join(v.removeprefix("ARRAY::") for v in values)
    return variables


def _value(element: Element, depth: int) -> Any:
    """An element as JSON: its text when it is a leaf without attributes, else an object of
    its attributes and children (a repeated child becomes a list)."""
    if depth > MAX_DEPTH:
        raise XmlCdrError("bad_xml", f"elements nested deeper than {MAX_DEPTH}")
    if not len(element) and not element.attrib:
        return (element.text or "").strip()
    return _object(element, depth)


def _object(element: Element, depth: int) -> dict[str, Any]:
    groups: dict[str, list[Any]] = {}
    for child in element:
        value = _variables(child) if depth == 0 and child.tag == "variables" \
            else _value(child, depth + 1)
        groups.setdefault(child.tag, []).append(value)
    value = dict(element.attrib)
    value.update({tag: values[0] if len(values) == 1 else values for tag, values in groups.items()})
    return value
