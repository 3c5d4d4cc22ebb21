"""EPCIS 2.0 capture: the events of a received EPCISDocument read into what is stored.

Pure: no I/O; the document has already passed GS1's JSON schema.

Source: EPCIS 2.0 §8.2.2 (capture interface), §12.7 (REST binding: 202 with a capture job,
the `GS1-Capture-Error-Behaviour` header) and CBV 2.0 §8.9 (event hash ID).

- Each event gets our own GS1 event hash ID, computed over the event as received with its
  document's `@context`; its SHA-256 is the event's Merkle leaf digest.
- A received `eventID` is kept as given (exported as `prov:receivedEventID`), and the event is
  stored and exported under our hash ID. One that is a hash ID (`ni:///sha-256;...`) other
  than ours is a warning on the job, naming both: GS1's own example documents state IDs
  their events do not hash to (GS1's reference vectors agree with ours), and refusing them
  would refuse the standard's examples.
- An EPC written as an SGTIN (EPC URI or GS1 Digital Link) that does not parse (a wrong
  check digit, a partition that adds up wrong) makes the event bad: it names an item that
  cannot exist. The job's error behaviour then keeps all or none, or the good ones.
- `prov:anchoring` is left out of the hash as on export and dropped from what is stored: it is
  the anchoring of whoever sent it, and ours replaces it on export.
- Event types this service has no rules for (extension types) are stored too: they must export
  again unchanged.
- SGTINs, as EPC URIs or serialized Digital Links, in `epcList`, `parentID`, `childEPCs`,
  `inputEPCList` and `outputEPCList` are indexed (MATCH_epc, an item's history). Quantity
  lists name classes (`epcClass`), not items, and are not.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from firmware_tools.formats.epc import SGTIN_PREFIX
from provenance_api.epcis import query
from provenance_api.epcis.event_hash import (
    CBV,
    context_prefixes,
    event_hash_id,
    expand_term,
    normalise_time,
)
from provenance_api.epcis.export import CONTEXT as EXPORT_CONTEXT
from provenance_api.epcis.export import EPCIS_CONTEXT, HASH_IGNORE

HEADER = "GS1-Capture-Error-Behaviour"
ROLLBACK = "rollback"
PROCEED = "proceed"
BEHAVIOURS = (ROLLBACK, PROCEED)
HASH_PREFIX = "ni:///sha-256;"
EPC_FIELDS = ("epcList", "childEPCs", "inputEPCList", "outputEPCList")
BIZ_STEP_MAX = 512
SERIAL_MAX = 20


@dataclasses.dataclass(frozen=True)
class CapturedEvent:
    """One good event, as it is stored."""

    index: int
    hash_id: str
    digest: bytes
    received_event_id: str | None
    event_type: str
    event_time_ms: int
    time_zone_offset: str
    biz_step: str | None
    event: dict[str, Any]
    context: list[Any]
    epcs: list[tuple[str, str, str]]  # (EPC as given, GTIN-14, serial)
    warning: str | None = None


@dataclasses.dataclass(frozen=True)
class CaptureError:
    """One bad event: its place in the document, the eventID it came with, what is wrong."""

    index: int
    event_id: str | None
    message: str

    def as_json(self) -> dict[str, Any]:
        """The job's JSON form of the error."""
        return {"index": self.index, "eventID": self.event_id, "message": self.message}


def error_behaviour(header: str | None) -> str:
    """The `GS1-Capture-Error-Behaviour` asked for; `rollback` when absent.

    >>> error_behaviour(None), error_behaviour(" Proceed ")
    ('rollback', 'proceed')
    """
    if header is None:
        return ROLLBACK
    value = header.strip().lower()
    if value not in BEHAVIOURS:
        raise ValueError(f"{HEADER} must be one of {', '.join(BEHAVIOURS)}, not {header[:40]!r}")
    return value


def extra_context(context: Any) -> list[Any]:
    """The document context entries an event needs beyond the standard EPCIS context.

    >>> extra_context(["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",
    ...                {"example": "http://ns.example.com/epcis/"}])
    [{'example': 'http://ns.example.com/epcis/'}]
    """
    entries = context if isinstance(context, list) else [context]
    return [entry for entry in entries if entry is not None and entry != EPCIS_CONTEXT]


def digest_of(hash_id: str) -> bytes:
    """The 32 bytes of SHA-256 inside an event hash ID.

    >>> digest_of("ni:///sha-256;" + "ab" * 32 + "?ver=CBV2.0") == bytes([0xAB] * 32)
    True
    """
    hexdigest = hash_id.removeprefix(HASH_PREFIX).partition("?")[0]
    return bytes.fromhex(hexdigest)


def is_hash_id_of(event_id: str, digest: bytes) -> bool:
    """Whether `event_id` is a hash ID (`ni:///sha-256;`) of `digest`, in any letter case.

    >>> is_hash_id_of("ni:///sha-256;" + "AB" * 32 + "?ver=CBV2.0", bytes([0xAB] * 32))
    True
    >>> is_hash_id_of("ni:///sha-256;not-hex", bytes(32)), is_hash_id_of("urn:uuid:x", bytes(32))
    (False, False)
    """
    stated = event_id.removeprefix(HASH_PREFIX).partition("?")[0]
    return event_id.startswith(HASH_PREFIX) and stated.lower() == digest.hex()


def biz_step_name(value: Any, context: Any) -> str | None:
    """A CBV business step as its short name; another vocabulary's as its full URI.

    >>> biz_step_name("urn:epcglobal:cbv:bizstep:shipping", None)
    'shipping'
    >>> biz_step_name("https://ref.gs1.org/cbv/BizStep-receiving", None)
    'receiving'
    >>> biz_step_name("http://epcis.example.org/hc/bizstep/summarising_discharge", None)
    'http://epcis.example.org/hc/bizstep/summarising_discharge'
    """
    return term_name(value, context, CBV + "BizStep-")


def term_name(value: Any, context: Any, vocabulary: str) -> str | None:
    """A CBV term of `vocabulary` (`https://ref.gs1.org/cbv/Disp-`, ...) as its short name,
    another vocabulary's as its full URI; None when absent or longer than 512 characters.

    >>> term_name("urn:epcglobal:cbv:disp:in_transit", None, CBV + "Disp-")
    'in_transit'
    """
    if not isinstance(value, str) or not value.strip():
        return None
    name = expand_term(value, context_prefixes(context), vocabulary).removeprefix(vocabulary)
    return name if len(name) <= BIZ_STEP_MAX else None


def _epoch_ms(text: str) -> int | None:
    normal = normalise_time(text)
    try:
        moment = datetime.strptime(normal, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        return None
    return int(moment.timestamp()) * 1000 + moment.microsecond // 1000


def _epcs(event: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The SGTINs the event names, each once, in the order they appear.

    Raises ValueError naming an EPC written as an SGTIN that is none.
    """
    named: list[Any] = [event["parentID"]] if "parentID" in event else []
    for field in EPC_FIELDS:
        value = event.get(field)
        named += value if isinstance(value, list) else []
    found: dict[str, tuple[str, str, str]] = {}
    for epc in named:
        if not isinstance(epc, str) or epc in found:
            continue
        try:
            gtin, serial = query.item_of_epc(epc)
        except ValueError as exc:
            if _looks_like_sgtin(epc):
                raise ValueError(f"EPC {epc[:120]!r} is not a valid SGTIN: {exc}") from None
            continue  # another kind of EPC (SSCC, GIAI, ...): stored, not indexed
        if serial and len(serial) <= SERIAL_MAX:
            found[epc] = (epc, gtin, serial)
    return list(found.values())


def _looks_like_sgtin(epc: str) -> bool:
    """Whether `epc` is written as an SGTIN: an SGTIN EPC URI, or a Digital Link with a GTIN
    and a serial (one with a GTIN alone names a class of items, which is not indexed).

    >>> _looks_like_sgtin("urn:epc:id:sgtin:x"), _looks_like_sgtin("https://d.example/01/1/21/2")
    (True, True)
    >>> _looks_like_sgtin("urn:epc:id:sscc:4012345.0000000001")
    False
    >>> _looks_like_sgtin("https://id.gs1.org/01/70614141123451")
    False
    """
    if epc.startswith(SGTIN_PREFIX):
        return True
    return epc.startswith(("https://", "http://")) and "/01/" in epc and "/21/" in epc


def read_event(index: int, event: Any, context: Any) -> CapturedEvent | CaptureError:
    """One received event, checked and read into what is stored."""
    given = event.get("eventID") if isinstance(event, dict) else None
    given = given if isinstance(given, str) else None
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        return CaptureError(index, given, "an event must be a JSON object with a `type`")
    kept = {key: value for key, value in event.items() if key not in HASH_IGNORE}
    try:
        hash_id = event_hash_id(kept, context, HASH_IGNORE)
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        return CaptureError(index, given, f"the event hash ID cannot be computed: {exc}")
    digest = digest_of(hash_id)
    warning = None
    if given is not None and given.startswith(HASH_PREFIX) and not is_hash_id_of(given, digest):
        warning = (
            f"eventID {given} is not this event's hash ID: GS1's event hash algorithm gives"
            f" {hash_id}, under which it is stored and exported (yours is kept as"
            " prov:receivedEventID)"
        )
    try:
        epcs = _epcs(event)
    except ValueError as exc:
        return CaptureError(index, given, str(exc))
    when = event.get("eventTime")
    event_time_ms = _epoch_ms(when) if isinstance(when, str) else None
    if event_time_ms is None:
        return CaptureError(index, given, "eventTime must be an xsd:dateTimeStamp")
    offset = event.get("eventTimeZoneOffset")
    return CapturedEvent(
        index=index,
        hash_id=hash_id,
        digest=digest,
        received_event_id=given,
        event_type=event["type"][:200],
        event_time_ms=event_time_ms,
        time_zone_offset=offset if isinstance(offset, str) and len(offset) <= 6 else "+00:00",
        biz_step=biz_step_name(event.get("bizStep"), context),
        event=kept,
        context=extra_context(context),
        epcs=epcs,
        warning=warning,
    )


def read_document(
    document: dict[str, Any],
) -> tuple[list[CapturedEvent], list[CaptureError]]:
    """The good and the bad events of a schema-valid EPCISDocument, in document order.

    An event that repeats an earlier one of the same document (the same hash ID) is left out:
    it is the same event, captured once.
    """
    context = document.get("@context")
    events = event_list(document)
    good: list[CapturedEvent] = []
    bad: list[CaptureError] = []
    seen: set[str] = set()
    for index, event in enumerate(events):
        read = read_event(index, event, context)
        if isinstance(read, CaptureError):
            bad.append(read)
        elif read.hash_id not in seen:
            seen.add(read.hash_id)
            good.append(read)
    return good, bad


def event_list(document: dict[str, Any]) -> list[Any]:
    """The document's `epcisBody.eventList`; empty when it has none (or not as a list).

    >>> event_list({"epcisBody": [None]})
    []
    """
    body = document.get("epcisBody")
    events = body.get("eventList") if isinstance(body, dict) else None
    return events if isinstance(events, list) else []


def event_count(document: dict[str, Any]) -> int:
    """How many events the document holds."""
    return len(event_list(document))


def exported(
    event: dict[str, Any],
    context: Sequence[Any],
    anchoring: dict[str, Any],
    recorded: datetime,
    document_context: Any = EXPORT_CONTEXT,
) -> dict[str, Any]:
    """A captured event as exported: as received, its hash ID (recomputed) as `eventID`, the
    time we captured it as `recordTime`, and our `prov:anchoring`.

    Its own context entries (custom prefixes) travel with it as an event-level `@context`,
    which the hash leaves out, so that a document mixing several senders' events stays valid
    and each event hashes as it did when captured. `recordTime` is the capturing repository's
    to set (EPCIS 2.0 §7.4.1: ignored when presented to the capture interface), and the hash
    leaves it out too.
    """
    body: dict[str, Any] = {"@context": list(context)} if context else {}
    body.update((key, value) for key, value in event.items() if key != "eventID")
    moment = recorded if recorded.tzinfo is not None else recorded.replace(tzinfo=UTC)
    body["recordTime"] = (
        moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )
    hash_id = event_hash_id(body, hash_context(document_context, body), HASH_IGNORE)
    return {"eventID": hash_id, **body, HASH_IGNORE[0]: anchoring}


def hash_context(document_context: Any, event: dict[str, Any]) -> list[Any]:
    """The context an exported event is hashed with: its document's, then its own."""
    entries = document_context if isinstance(document_context, list) else [document_context]
    own = event.get("@context", [])
    return list(entries) + (own if isinstance(own, list) else [own])
