"""EPCIS 2.0 query parameters (REST binding) read into plain values, strictly.

Pure: no I/O; every error is a ValueError that says what is wrong with the one parameter.

Source: EPCIS 2.0 §8.2.7.1 (SimpleEventQuery: eventType, GE_eventTime, LT_eventTime,
EQ_bizStep, MATCH_epc) and §12.7.3 (REST paging: perPage, nextPageToken).
"""

from __future__ import annotations

import base64
import binascii

from contracts_abi.cbv import BIZ_STEPS
from firmware_tools.errors import GS1Error
from firmware_tools.formats.epc import SGTIN_PREFIX, parse_sgtin_uri
from firmware_tools.formats.gs1 import parse_digital_link

EVENT_TYPES = (
    "ObjectEvent",
    "AggregationEvent",
    "TransactionEvent",
    "TransformationEvent",
    "AssociationEvent",
)
# The forms a CBV business step may take: bare, CBV 1.x URN, CBV 2.0 web URI.
_BIZ_STEP_PREFIXES = (
    "urn:epcglobal:cbv:bizstep:",
    "https://ref.gs1.org/cbv/BizStep-",
    "https://gs1.org/voc/BizStep-",
)


def event_types(text: str) -> set[str]:
    """A comma-separated list of EPCIS event types.

    >>> sorted(event_types("ObjectEvent,AggregationEvent"))
    ['AggregationEvent', 'ObjectEvent']
    """
    types = {part.strip() for part in text.split(",")}
    unknown = sorted(types - set(EVENT_TYPES))
    if unknown:
        raise ValueError(f"unknown event type {unknown[0]!r}; one of {', '.join(EVENT_TYPES)}")
    return types


def biz_steps(text: str) -> set[str]:
    """A comma-separated list of CBV business steps, each as its short name.

    >>> sorted(biz_steps("shipping,https://ref.gs1.org/cbv/BizStep-receiving"))
    ['receiving', 'shipping']
    >>> biz_steps("urn:epcglobal:cbv:bizstep:commissioning")
    {'commissioning'}
    """
    names = set()
    for part in text.split(","):
        name = part.strip()
        for prefix in _BIZ_STEP_PREFIXES:
            name = name.removeprefix(prefix)
        if name not in BIZ_STEPS:
            raise ValueError(f"{part.strip()!r} is not a CBV 2.0 business step")
        names.add(name)
    return names


def item_of_epc(text: str) -> tuple[str, str]:
    """The (GTIN-14, serial) of an SGTIN EPC URI or a serialized GS1 Digital Link URI.

    >>> item_of_epc("urn:epc:id:sgtin:9506000.013435.S1")
    ('09506000134352', 'S1')
    >>> item_of_epc("https://id.gs1.org/01/09506000134352/21/S1")
    ('09506000134352', 'S1')
    """
    try:
        if text.startswith(SGTIN_PREFIX):
            return parse_sgtin_uri(text)
        link = parse_digital_link(text)
    except GS1Error as exc:
        raise ValueError(f"not an SGTIN EPC URI or a GS1 Digital Link: {exc}") from None
    return link.gtin, link.serial


def page_token(custody_after: int, captured_after: int) -> str:
    """The opaque token of the next page: the last row id shown of each kind of event.

    Device-signed and captured events are stored apart, each paged by row id; a page merges
    the two, so the token carries one position per kind.

    >>> page_token(42, 7), page_after(page_token(42, 7))
    ('NDIuNw', (42, 7))
    """
    text = f"{custody_after}.{captured_after}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def page_after(token: str) -> tuple[int, int]:
    """The (custody, captured) row ids a `page_token` stands for; a bare id (the tokens given
    out before captured events existed) is a custody position.

    >>> page_after("NDI")
    (42, 0)
    """
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    custody, dot, captured = text.partition(".")
    parts = [custody, captured] if dot else [custody, "0"]
    if not all(part.isdigit() and len(part) <= 18 for part in parts):
        raise ValueError("not a page token this API gave out")
    return int(parts[0]), int(parts[1])
