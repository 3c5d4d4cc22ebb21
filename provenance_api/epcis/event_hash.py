"""GS1's EPCIS event hash ID: the canonical pre-hash string of an event and its `ni:` URI.

Pure: no I/O.

Source: CBV 2.0 §8.9 "EPCIS event hash ID" and the algorithm description of GS1's
reference prototype (RalphTro/epcis-event-hash-generator). In short:

- fields in the canonical property order below, concatenated without separators, each
  value as `key=value`, a parent's name before its children;
- list children (`epc`, quantity elements, business transactions, sensor elements and
  reports, ...) and user extensions sorted by code point; a type (business transaction
  type, source/destination type) comes before the value it qualifies;
- timestamps in UTC with milliseconds, the 4th fraction digit rounding half up;
- numbers without trailing zeros; values stripped of surrounding whitespace;
- bare CBV terms (`shipping`), CBV URNs (`urn:epcglobal:cbv:bizstep:shipping`) and
  CURIEs (`gs1:Temperature`) expanded to web URIs;
- EPC URIs and Digital Link URIs as constrained canonical Digital Links
  (see `canonical_uri`);
- user extensions as `{namespace}localName`, after the standard fields of the event or
  of the field with an extension point (readPoint, bizLocation, sensorElement,
  sensorMetadata, sensorReport) that holds them;
- left out: `eventID`, `recordTime`, `errorDeclaration` and `rdfs:comment`, and whatever
  the caller lists in `ignore` (a repository's own bookkeeping fields);
- SHA-256 of the UTF-8 pre-hash string, as `ni:///sha-256;<hex>?ver=CBV2.0` (RFC 6920).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from provenance_api.epcis.canonical_uri import canonical_uri

HASH_VERSION = "CBV2.0"
CBV = "https://ref.gs1.org/cbv/"
GS1_VOC = "https://gs1.org/voc/"

# Prefixes that the standard EPCIS 2.0 JSON-LD context defines (epcis-context.jsonld).
STANDARD_PREFIXES = {
    "epcis": "https://ref.gs1.org/epcis/",
    "cbv": CBV,
    "cbvmda": "urn:epcglobal:cbv:mda:",
    "gs1": GS1_VOC,
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "owl": "http://www.w3.org/2002/07/owl#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "dcterms": "http://purl.org/dc/terms/",
}
# Fields that never enter the pre-hash string: identity and bookkeeping of the event
# rather than what happened, and comments.
IGNORED_FIELDS = frozenset(
    {"eventID", "recordTime", "errorDeclaration", "rdfs:comment", "comment", "@context"}
)

# CBV 1.x URNs and their CBV 2.0 web URI equivalents.
_CBV_URNS = (
    ("urn:epcglobal:cbv:bizstep:", CBV + "BizStep-"),
    ("urn:epcglobal:cbv:disp:", CBV + "Disp-"),
    ("urn:epcglobal:cbv:btt:", CBV + "BTT-"),
    ("urn:epcglobal:cbv:sdt:", CBV + "SDT-"),
    ("urn:epcglobal:cbv:er:", CBV + "ER-"),
)
_TIME_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})"
)

Prefixes = Mapping[str, str]


def context_prefixes(context: Any) -> dict[str, str]:
    """The CURIE prefixes of a JSON-LD `@context` value, on top of the standard ones."""
    prefixes = dict(STANDARD_PREFIXES)
    entries = context if isinstance(context, list) else [context]
    for entry in entries:
        if not isinstance(entry, dict):
            continue  # a remote context by URL: only the standard one is known
        for name, definition in entry.items():
            if name.startswith("@"):
                continue
            if isinstance(definition, dict):
                definition = definition.get("@id")
            if isinstance(definition, str) and definition.endswith(("/", "#", ":")):
                prefixes[name] = definition
    return prefixes


def normalise_time(text: str) -> str:
    """An xsd:dateTimeStamp in UTC with milliseconds, the 4th fraction digit rounding half up.

    >>> normalise_time("2023-02-02T12:04:03.1415+01:00")
    '2023-02-02T11:04:03.142Z'
    >>> normalise_time("2020-03-04T11:00:30+01:00")
    '2020-03-04T10:00:30.000Z'
    """
    match = _TIME_RE.fullmatch(text.strip())
    if match is None:
        return text.strip()
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, offset = match.group(7) or "", match.group(8)
    millis = int(fraction[:3].ljust(3, "0"))
    if len(fraction) > 3 and fraction[3] >= "5":
        millis += 1
    moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    moment += timedelta(milliseconds=millis)
    if offset != "Z":
        sign = 1 if offset[0] == "+" else -1
        moment -= sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6]))
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _number(value: int | float) -> str:
    """A JSON number without trailing zeros or exponent: 452.0 -> '452', 0.10 -> '0.1'."""
    if isinstance(value, int):
        return str(value)
    text = format(Decimal(repr(value)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _expand_curie(text: str, prefixes: Prefixes) -> str:
    """`prefix:local` with `prefix` defined in the context, as a full URI."""
    prefix, colon, local = text.partition(":")
    if colon and prefix in prefixes and not local.startswith("//"):
        return prefixes[prefix] + local
    return text


def _value(value: Any, prefixes: Prefixes, vocabulary: str | None = None) -> str:
    """A scalar value in its canonical pre-hash form."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _number(value)
    if isinstance(value, dict) and "@value" in value:
        return _value(value["@value"], prefixes, vocabulary)
    text = str(value).strip()
    if vocabulary is not None and text and ":" not in text:
        return vocabulary + text  # a bare CBV or GS1 vocabulary term
    for urn, web in _CBV_URNS:
        if text.startswith(urn):
            return web + text[len(urn) :]
    text = _expand_curie(text, prefixes)
    return canonical_uri(text) or text


def expand_term(value: Any, prefixes: Prefixes, vocabulary: str | None = None) -> str:
    """A vocabulary value (bare CBV term, CBV URN, CURIE) as the web URI the hash uses.

    >>> expand_term("urn:epcglobal:cbv:bizstep:shipping", STANDARD_PREFIXES)
    'https://ref.gs1.org/cbv/BizStep-shipping'
    """
    return _value(value, prefixes, vocabulary)


def _extension_key(key: str, prefixes: Prefixes) -> str:
    """A user extension's name as `{namespace}localName`."""
    prefix, colon, local = key.partition(":")
    if colon and prefix in prefixes and not local.startswith("//"):
        return "{" + prefixes[prefix] + "}" + local
    if key.startswith(("http://", "https://", "urn:")):
        cut = max(key.rfind("/"), key.rfind("#"), key.rfind(":")) + 1
        return "{" + key[:cut] + "}" + key[cut:]
    return key


def _extension(key: str, value: Any, prefixes: Prefixes) -> list[str]:
    """One pre-hash string per value of a user extension element (a list repeats the key)."""
    if isinstance(value, list):
        return [text for item in value for text in _extension(key, item, prefixes)]
    name = _extension_key(key, prefixes)
    if isinstance(value, dict) and "@value" not in value:
        return [name + "".join(_extensions(value, prefixes, ()))]
    text = _value(value, prefixes)
    return [name + "=" + text if text else name]


def _extensions(
    fields: Mapping[str, Any], prefixes: Prefixes, standard: Iterable[str]
) -> list[str]:
    """The sorted pre-hash strings of the fields of `fields` that are not `standard`."""
    # Inside a standard structure "type" is standard too (sensorReport); in an extension it is not.
    skip = (set(standard) | IGNORED_FIELDS | {"type"}) if standard else IGNORED_FIELDS
    texts = []
    for key, value in fields.items():
        if key not in skip and not key.startswith("@"):
            texts.extend(_extension(key, value, prefixes))
    return sorted(texts)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _scalar(name: str, vocabulary: str | None = None) -> Callable[[Any, Prefixes], str]:
    def render(value: Any, prefixes: Prefixes) -> str:
        texts = sorted(f"{name}={_value(v, prefixes, vocabulary)}" for v in _as_list(value))
        return "".join(texts)

    return render


def _time(name: str) -> Callable[[Any, Prefixes], str]:
    return lambda value, prefixes: f"{name}={normalise_time(str(value))}"


def _epcs(name: str) -> Callable[[Any, Prefixes], str]:
    def render(value: Any, prefixes: Prefixes) -> str:
        texts = sorted(f"epc={_value(v, prefixes)}" for v in _as_list(value))
        return name + "".join(texts) if texts else ""

    return render


def _record(
    name: str, fields: list[tuple[str, Callable[[Any, Prefixes], str]]], extensible: bool
) -> Callable[[Any, Prefixes], str]:
    """A structure: its name, its fields in order, then (if `extensible`) its user extensions."""

    def render(value: Any, prefixes: Prefixes) -> str:
        if not isinstance(value, dict):
            return ""
        texts = [field(value[key], prefixes) for key, field in fields if key in value]
        if extensible:
            texts += _extensions(value, prefixes, [key for key, _ in fields])
        body = "".join(texts)
        return name + body if body else ""

    return render


def _list(name: str, item: Callable[[Any, Prefixes], str]) -> Callable[[Any, Prefixes], str]:
    """A list field: its name once, then its items' strings sorted."""

    def render(value: Any, prefixes: Prefixes) -> str:
        texts = sorted(text for v in _as_list(value) if (text := item(v, prefixes)))
        return name + "".join(texts) if texts else ""

    return render


def _typed(name: str, vocabulary: str) -> Callable[[Any, Prefixes], str]:
    """A business transaction, source or destination: `type=...` first, then the value."""
    fields = [("type", _scalar("type", vocabulary)), (name, _scalar(name))]
    return _record("", fields, extensible=False)


_QUANTITY = _record(
    "quantityElement",
    [("epcClass", _scalar("epcClass")), ("quantity", _scalar("quantity")), ("uom", _scalar("uom"))],
    extensible=False,
)
_SENSOR_METADATA = _record(
    "sensorMetadata",
    [
        ("time", _time("time")),
        ("startTime", _time("startTime")),
        ("endTime", _time("endTime")),
        ("deviceID", _scalar("deviceID")),
        ("deviceMetadata", _scalar("deviceMetadata")),
        ("rawData", _scalar("rawData")),
        ("dataProcessingMethod", _scalar("dataProcessingMethod")),
        ("bizRules", _scalar("bizRules")),
    ],
    extensible=True,
)
_SENSOR_REPORT = _record(
    "sensorReport",
    [
        ("type", _scalar("type", GS1_VOC)),
        ("exception", _scalar("exception", GS1_VOC)),
        ("deviceID", _scalar("deviceID")),
        ("deviceMetadata", _scalar("deviceMetadata")),
        ("rawData", _scalar("rawData")),
        ("dataProcessingMethod", _scalar("dataProcessingMethod")),
        ("time", _time("time")),
        ("microorganism", _scalar("microorganism")),
        ("chemicalSubstance", _scalar("chemicalSubstance")),
        ("value", _scalar("value")),
        ("component", _scalar("component", CBV + "Comp-")),
        ("stringValue", _scalar("stringValue")),
        ("booleanValue", _scalar("booleanValue")),
        ("hexBinaryValue", _scalar("hexBinaryValue")),
        ("uriValue", _scalar("uriValue")),
        ("minValue", _scalar("minValue")),
        ("maxValue", _scalar("maxValue")),
        ("meanValue", _scalar("meanValue")),
        ("sDev", _scalar("sDev")),
        ("percRank", _scalar("percRank")),
        ("percValue", _scalar("percValue")),
        ("uom", _scalar("uom")),
        ("coordinateReferenceSystem", _scalar("coordinateReferenceSystem")),
    ],
    extensible=True,
)


def _sensor_element(value: Any, prefixes: Prefixes) -> str:
    """A sensor element: its metadata, its reports sorted, then its user extensions."""
    if not isinstance(value, dict):
        return ""
    texts = []
    if "sensorMetadata" in value:
        texts.append(_SENSOR_METADATA(value["sensorMetadata"], prefixes))
    reports = [_SENSOR_REPORT(r, prefixes) for r in _as_list(value.get("sensorReport", []))]
    texts += sorted(reports)
    texts += _extensions(value, prefixes, ["sensorMetadata", "sensorReport"])
    body = "".join(texts)
    return "sensorElement" + body if body else ""


def _persistent_disposition(value: Any, prefixes: Prefixes) -> str:
    sets, unsets = [], []
    for item in _as_list(value):
        if isinstance(item, dict):
            sets += [_value(v, prefixes, CBV + "Disp-") for v in _as_list(item.get("set", []))]
            unsets += [_value(v, prefixes, CBV + "Disp-") for v in _as_list(item.get("unset", []))]
    texts = [f"set={v}" for v in sorted(sets)] + [f"unset={v}" for v in sorted(unsets)]
    return "persistentDisposition" + "".join(texts) if texts else ""


def _ilmd(value: Any, prefixes: Prefixes) -> str:
    texts = _extensions(value, prefixes, ()) if isinstance(value, dict) else []
    return "ilmd" + "".join(texts) if texts else ""


def _location(name: str) -> Callable[[Any, Prefixes], str]:
    return _record(name, [("id", _scalar("id"))], extensible=True)


# CBV 2.0 §8.9.2: the canonical property order, common to all five event types.
CANONICAL_ORDER: list[tuple[str, Callable[[Any, Prefixes], str]]] = [
    ("eventTime", _time("eventTime")),
    ("eventTimeZoneOffset", _scalar("eventTimeZoneOffset")),
    ("certificationInfo", _scalar("certificationInfo")),
    ("parentID", _scalar("parentID")),
    ("epcList", _epcs("epcList")),
    ("inputEPCList", _epcs("inputEPCList")),
    ("childEPCs", _epcs("childEPCs")),
    ("quantityList", _list("quantityList", _QUANTITY)),
    ("childQuantityList", _list("childQuantityList", _QUANTITY)),
    ("inputQuantityList", _list("inputQuantityList", _QUANTITY)),
    ("outputEPCList", _epcs("outputEPCList")),
    ("outputQuantityList", _list("outputQuantityList", _QUANTITY)),
    ("action", _scalar("action")),
    ("transformationID", _scalar("transformationID")),
    ("bizStep", _scalar("bizStep", CBV + "BizStep-")),
    ("disposition", _scalar("disposition", CBV + "Disp-")),
    ("persistentDisposition", _persistent_disposition),
    ("readPoint", _location("readPoint")),
    ("bizLocation", _location("bizLocation")),
    ("bizTransactionList", _list("bizTransactionList", _typed("bizTransaction", CBV + "BTT-"))),
    ("sourceList", _list("sourceList", _typed("source", CBV + "SDT-"))),
    ("destinationList", _list("destinationList", _typed("destination", CBV + "SDT-"))),
    ("sensorElementList", _list("sensorElementList", _sensor_element)),
    ("ilmd", _ilmd),
]
_STANDARD_FIELDS = [name for name, _ in CANONICAL_ORDER]


def prehash(event: Mapping[str, Any], context: Any = None, ignore: Iterable[str] = ()) -> str:
    """The canonical pre-hash string of an EPCIS 2.0 JSON-LD event.

    `context` is the document's `@context` (for the prefixes of CURIEs and user
    extensions); `ignore` names further top-level fields to leave out, as written.

    >>> prehash({"type": "ObjectEvent", "eventTime": "2020-04-01T15:00:00+01:00",
    ...          "eventTimeZoneOffset": "+01:00", "action": "OBSERVE", "bizStep": "shipping",
    ...          "epcList": ["urn:epc:id:sgtin:4012345.011111.9876"]})
    ... # doctest: +NORMALIZE_WHITESPACE
    'eventType=ObjectEventeventTime=2020-04-01T14:00:00.000ZeventTimeZoneOffset=+01:00epcListepc=https://id.gs1.org/01/04012345111118/21/9876action=OBSERVEbizStep=https://ref.gs1.org/cbv/BizStep-shipping'
    """
    prefixes = context_prefixes(context)
    fields = {key: value for key, value in event.items() if key not in set(ignore)}
    texts = ["eventType=" + str(event["type"]).strip()]
    texts += [render(fields[name], prefixes) for name, render in CANONICAL_ORDER if name in fields]
    texts += _extensions(fields, prefixes, _STANDARD_FIELDS)
    return "".join(texts)


def hash_id(prehash_string: str) -> str:
    """The event hash ID of a pre-hash string: `ni:///sha-256;<hex>?ver=CBV2.0`."""
    digest = hashlib.sha256(prehash_string.encode("utf-8")).hexdigest()
    return f"ni:///sha-256;{digest}?ver={HASH_VERSION}"


def event_hash_id(event: Mapping[str, Any], context: Any = None, ignore: Iterable[str] = ()) -> str:
    """The event hash ID of an EPCIS 2.0 JSON-LD event (see `prehash`)."""
    return hash_id(prehash(event, context, ignore))
