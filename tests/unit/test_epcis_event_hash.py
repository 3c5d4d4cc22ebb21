"""The EPCIS event hash against every vector of GS1's reference prototype, and its rules."""

import json
from pathlib import Path

import pytest

from provenance_api.epcis.canonical_uri import canonical_uri
from provenance_api.epcis.event_hash import (
    event_hash_id,
    hash_id,
    normalise_time,
    prehash,
)

VECTOR_DIR = Path(__file__).parent.parent / "vectors" / "epcis-hash"

# Three lines of the .prehashes files disagree with the hash ID next to them (the hash of the
# line is not the listed hash): our pre-hash string hashes to the listed hash ID, so the
# line is what is wrong, not the algorithm.
BROKEN_PREHASH_LINES = {
    ("epcisDocWithCustomSchemaInContext", 1): (
        "epcisDocWithCustomSchemaInContext.prehashes line 2 is a reordered copy of line 1 "
        "(bizStep shipping, epc 2017, {…}myField before bizTransactionList, which breaks the "
        "rule that user extensions come last); it does not hash to the listed hash ID, which "
        "our pre-hash string of event 2 (receiving, desadv + po, myField2) does"
    ),
    ("epcisDocWithDefaultSchemaInContext", 1): (
        "epcisDocWithDefaultSchemaInContext.prehashes line 2 is cut off inside the desadv "
        "bizTransaction and lacks the po one; it does not hash to the listed hash ID, which "
        "our complete pre-hash string does"
    ),
    ("epcisDocWithAllGS1Keys", 0): (
        "epcisDocWithAllGS1Keys.prehashes is garbled (fragments such as 'epc=httpspc=' and "
        "'235=https://AB12' spliced in); it does not hash to the listed hash ID, which our "
        "pre-hash string does"
    ),
}
# Cases where the vector and the specification disagree and the code follows the
# specification: both the pre-hash line and the hash ID are expected to differ.
_SOURCE_BEFORE_DESTINATION = (
    "{stem} event {n} lists destinationList before sourceList; the canonical property order "
    "(CBV 2.0 §8.9, the prototype's own table and code) puts sourceList (21) before "
    "destinationList (22)"
)
SPEC_DISAGREEMENTS = {
    (stem, index): _SOURCE_BEFORE_DESTINATION.format(stem=stem, n=index + 1)
    for stem, index in (
        ("ReferenceEventHashAlgorithm3", 0),
        ("epcisDocWithShippingAndTransportingEvent", 0),
        ("epcisDocWithVariousEventTypes", 0),
        ("epcisDocWithVariousEventTypes", 1),
    )
}


def _events(document: dict) -> tuple[list[dict], list[str]]:
    """The events of an EPCIS document or query document, and its ignored fields."""
    body = document["epcisBody"]
    # The vectors' repository-x:ignoreFields: a repository's own fields that the
    # capturing party asks to be left out of the hash.
    ignore = document.get("repository-x:ignoreFields", [])
    if "queryResults" in body:
        ignore = body["queryResults"].get("repository-x:ignoreFields", ignore)
        return body["queryResults"]["resultsBody"]["eventList"], ignore
    if "eventList" in body:
        return body["eventList"], ignore
    return [body["event"]], ignore


def _cases(kind: str) -> list:
    cases = []
    for path in sorted(VECTOR_DIR.glob("*.jsonld")):
        expected_path = path.with_suffix("." + kind)
        if not expected_path.exists():
            continue
        lines = expected_path.read_text(encoding="utf-8").splitlines()
        document = json.loads(path.read_text(encoding="utf-8"))
        events, _ = _events(document)
        assert len(lines) == len(events), f"{expected_path.name}: one line per event"
        for index in range(len(events)):
            marks = []
            reason = SPEC_DISAGREEMENTS.get((path.stem, index))
            if reason is None and kind == "prehashes":
                reason = BROKEN_PREHASH_LINES.get((path.stem, index))
            if reason:
                marks.append(pytest.mark.xfail(strict=True, reason=reason))
            cases.append(pytest.param(path.stem, index, marks=marks, id=f"{path.stem}-{index}"))
    return cases


def _load(stem: str, index: int, kind: str) -> tuple[dict, object, list[str], str]:
    document = json.loads((VECTOR_DIR / f"{stem}.jsonld").read_text(encoding="utf-8"))
    events, ignore = _events(document)
    expected = (VECTOR_DIR / f"{stem}.{kind}").read_text(encoding="utf-8").splitlines()[index]
    return events[index], document.get("@context"), ignore, expected


@pytest.mark.parametrize(("stem", "index"), _cases("prehashes"))
def test_prehash_matches_vector(stem, index):
    event, context, ignore, expected = _load(stem, index, "prehashes")
    assert prehash(event, context, ignore) == expected


@pytest.mark.parametrize(("stem", "index"), _cases("hashes"))
def test_hash_id_matches_vector(stem, index):
    event, context, ignore, expected = _load(stem, index, "hashes")
    assert event_hash_id(event, context, ignore) == expected


def test_every_vector_file_is_used():
    stems = {p.stem for p in VECTOR_DIR.glob("*.jsonld")}
    assert stems == {p.stem for p in VECTOR_DIR.glob("*.hashes")}
    assert len(_cases("hashes")) == 43
    assert len(_cases("prehashes")) == 42


def test_broken_vector_lines_do_not_hash_to_their_listed_ids():
    """The xfailed pre-hash lines are inconsistent with their own hash files."""
    for stem, index in BROKEN_PREHASH_LINES:
        lines = (VECTOR_DIR / f"{stem}.prehashes").read_text(encoding="utf-8").splitlines()
        hashes = (VECTOR_DIR / f"{stem}.hashes").read_text(encoding="utf-8").splitlines()
        assert hash_id(lines[index]) != hashes[index]


def _event(**fields) -> dict:
    base = {
        "type": "ObjectEvent",
        "eventTime": "2024-05-01T10:00:00.000Z",
        "eventTimeZoneOffset": "+00:00",
        "action": "OBSERVE",
        "epcList": ["urn:epc:id:sgtin:4012345.011111.1"],
    }
    return base | fields


def test_field_order_in_the_document_does_not_matter():
    event = _event(bizStep="shipping", disposition="in_transit")
    reordered = dict(reversed(list(event.items())))
    assert prehash(event) == prehash(reordered)


def test_list_order_does_not_matter():
    one = _event(epcList=["urn:epc:id:sgtin:4012345.011111.1", "urn:epc:id:sgtin:4012345.011111.2"])
    two = _event(epcList=["urn:epc:id:sgtin:4012345.011111.2", "urn:epc:id:sgtin:4012345.011111.1"])
    assert event_hash_id(one) == event_hash_id(two)


def test_epc_uri_and_digital_link_hash_the_same():
    epc = _event(epcList=["urn:epc:id:sgtin:4012345.011111.1"])
    link = _event(epcList=["https://brand.example.com/01/04012345111118/21/1?s=x"])
    assert event_hash_id(epc) == event_hash_id(link)


def test_bare_term_cbv_urn_and_web_uri_hash_the_same():
    texts = {
        prehash(_event(bizStep=step))
        for step in (
            "shipping",
            "urn:epcglobal:cbv:bizstep:shipping",
            "https://ref.gs1.org/cbv/BizStep-shipping",
            "cbv:BizStep-shipping",
        )
    }
    assert len(texts) == 1
    assert "bizStep=https://ref.gs1.org/cbv/BizStep-shipping" in texts.pop()


def test_time_zone_and_precision_do_not_matter():
    a = _event(eventTime="2024-05-01T12:00:00+02:00")
    b = _event(eventTime="2024-05-01T10:00:00.0000Z")
    assert event_hash_id(a) == event_hash_id(b)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("2023-01-18T11:04:03.1415Z", "2023-01-18T11:04:03.142Z"),
        ("2023-01-18T11:04:03.1414999Z", "2023-01-18T11:04:03.141Z"),
        ("2023-12-31T23:59:59.9995Z", "2024-01-01T00:00:00.000Z"),
        ("2023-01-01T00:30:00-01:30", "2023-01-01T02:00:00.000Z"),
        ("2023-01-01T00:30:00.5+00:00", "2023-01-01T00:30:00.500Z"),
    ],
)
def test_normalise_time(given, expected):
    assert normalise_time(given) == expected


def test_numbers_lose_trailing_zeros():
    event = _event(
        epcList=[],
        quantityList=[
            {"epcClass": "urn:epc:class:lgtin:4012345.012345.L1", "quantity": 2.50, "uom": "KGM"}
        ],
    )
    assert "quantity=2.5uom=KGM" in prehash(event)
    assert "epcList" not in prehash(event)  # an empty list is left out


def test_ignored_fields_do_not_change_the_hash():
    plain = _event()
    noted = _event(
        eventID="urn:uuid:0f7e1c1a-0000-4000-8000-000000000000",
        recordTime="2024-05-02T00:00:00Z",
        errorDeclaration={"declarationTime": "2024-05-03T00:00:00Z"},
    )
    assert event_hash_id(plain) == event_hash_id(noted)


def test_a_changed_value_changes_the_hash():
    assert event_hash_id(_event(action="ADD")) != event_hash_id(_event(action="OBSERVE"))


def test_user_extensions_come_last_sorted_and_namespaced():
    context = [{"ex": "https://ns.example.com/epcis/"}]
    event = _event(**{"ex:b": "2", "ex:a": {"ex:z": [3, 1]}, "bizStep": "shipping"})
    text = prehash(event, context)
    assert text.endswith(
        "bizStep=https://ref.gs1.org/cbv/BizStep-shipping"
        "{https://ns.example.com/epcis/}a"
        "{https://ns.example.com/epcis/}z=1{https://ns.example.com/epcis/}z=3"
        "{https://ns.example.com/epcis/}b=2"
    )


def test_extension_in_read_point_follows_its_id():
    context = [{"ex": "https://ns.example.com/epcis/"}]
    event = _event(readPoint={"ex:door": "3", "id": "urn:epc:id:sgln:4012345.00005.0"})
    assert (
        "readPointid=https://id.gs1.org/414/4012345000054{https://ns.example.com/epcis/}door=3"
        in prehash(event, context)
    )


def test_source_type_comes_before_its_value():
    event = _event(sourceList=[{"source": "urn:epc:id:pgln:4012345.00000", "type": "owning_party"}])
    assert (
        "sourceListtype=https://ref.gs1.org/cbv/SDT-owning_partysource=https://id.gs1.org/417/4012345000009"
        in prehash(event)
    )


def test_hash_id_form():
    assert hash_id("") == (
        "ni:///sha-256;e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855?ver=CBV2.0"
    )


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        (
            "https://id.gs1.org/01/09780345418913/22/344/10/1223/21/765tz",
            "https://id.gs1.org/01/09780345418913/21/765tz",
        ),
        (
            "http://example.de/01/040123451234/cpv/344/lot/ABD",
            "https://id.gs1.org/01/00040123451234/10/ABD",
        ),
        ("https://example.co.uk/party/4226350800008", "https://id.gs1.org/417/4226350800008"),
        (
            "https://fashion-corp.com/8006/040123451234560102/10/Lot-123/21/ser987",
            "https://id.gs1.org/8006/040123451234560102/21/ser987",
        ),
        ("urn:epc:idpat:itip:4012345.012345.01.02.*", "https://id.gs1.org/8006/040123451234560102"),
        ("urn:epc:idpat:cpi:4012345.AB12.*", "https://id.gs1.org/8010/4012345AB12"),
        ("urn:epc:id:sscc:4012345.0000000011", "https://id.gs1.org/00/040123450000000115"),
    ],
)
def test_canonical_uri(uri, expected):
    assert canonical_uri(uri) == expected


@pytest.mark.parametrize(
    "uri",
    [
        "http://transaction.acme.com/po/12345678",
        "http://id.gs1.org/99/9780345418913",
        "http://id.gs1.org/01/9780345418913/99/utfgf",
        "http://example.de/01/97803",
        "geo:50.9,6.9",
        "urn:epc:id:sgtin:4012345.011111",
        "urn:epc:id:sgtin:40123.0111111.1",
        "urn:epc:class:sgtin:4012345.011111.1",
    ],
)
def test_not_a_gs1_identifier(uri):
    assert canonical_uri(uri) is None


def test_ilmd_sorted_before_user_extensions():
    context = [{"ex": "https://ns.example.com/epcis/"}]
    event = _event(
        action="ADD",
        ilmd={"ex:lot": "L1", "cbvmda:bestBeforeDate": "2025-01-01"},
        **{"ex:note": "n"},
    )
    assert prehash(event, context).endswith(
        "ilmd{https://ns.example.com/epcis/}lot=L1{urn:epcglobal:cbv:mda:}bestBeforeDate=2025-01-01"
        "{https://ns.example.com/epcis/}note=n"
    )
