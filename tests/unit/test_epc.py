"""SGTIN EPC URIs both ways, and their GS1 Digital Links."""

import pytest

from firmware_tools.errors import GS1Error
from firmware_tools.formats.epc import (
    digital_link_to_sgtin_uri,
    escape_serial,
    parse_sgtin_uri,
    sgtin_uri,
    sgtin_uri_to_digital_link,
    unescape_serial,
)
from firmware_tools.formats.gs1 import CSET82
from provenance_api.epcis.canonical_uri import canonical_uri

# TDS 2.0 §6.3.1 examples and the EPC URIs of GS1's event hash vectors.
KNOWN = [
    ("00614141123452", "400", 7, "urn:epc:id:sgtin:0614141.012345.400"),
    ("04012345111118", "9876", 7, "urn:epc:id:sgtin:4012345.011111.9876"),
    ("04150567890128", "987654", 12, "urn:epc:id:sgtin:415056789012.0.987654"),
    ("80614141123458", '6789/&%"!?()', 7, "urn:epc:id:sgtin:0614141.812345.6789%2F%26%25%22!%3F()"),
    ("10614141073464", "2017", 7, "urn:epc:id:sgtin:0614141.107346.2017"),
    ("09521234543213", "A<B>C", 6, "urn:epc:id:sgtin:952123.0454321.A%3CB%3EC"),
]


@pytest.mark.parametrize(("gtin", "serial", "length", "uri"), KNOWN)
def test_known_sgtin_uris(gtin, serial, length, uri):
    assert sgtin_uri(gtin, serial, length) == uri
    assert parse_sgtin_uri(uri) == (gtin, serial)


@pytest.mark.parametrize("length", range(6, 13))
def test_round_trip_every_company_prefix_length(length):
    uri = sgtin_uri("95012345678903", "S-1.2", length)
    assert uri.count(".") == 3  # the serial's own dot stays in the serial
    assert len(uri.split(":")[-1].split(".")[0]) == length
    assert parse_sgtin_uri(uri) == ("95012345678903", "S-1.2")


def test_round_trip_every_character_of_set_82():
    serials = ["".join(sorted(CSET82))[i : i + 20] for i in range(0, len(CSET82), 20)]
    for serial in serials:
        uri = sgtin_uri("04012345111118", serial, 7)
        assert parse_sgtin_uri(uri) == ("04012345111118", serial)
        assert unescape_serial(escape_serial(serial)) == serial


def test_short_gtins_are_padded():
    assert sgtin_uri("96385074", "1", 6) == "urn:epc:id:sgtin:000009.0638507.1"
    assert parse_sgtin_uri("urn:epc:id:sgtin:000009.0638507.1") == ("00000096385074", "1")


@pytest.mark.parametrize(
    ("gtin", "serial", "length", "message"),
    [
        ("04012345111117", "1", 7, "wrong check digit 7, it should be 8"),
        ("04012345111", "1", 7, "has 11 digits"),
        ("04012345111118", "1", 5, "must be 6..12"),
        ("04012345111118", "1", 13, "must be 6..12"),
        ("04012345111118", "", 7, "is empty"),
        ("04012345111118", "A" * 21, 7, "has 21 characters; at most 20"),
        ("04012345111118", "A B", 7, "character ' ' at position 2"),
        ("04012345111118", "A#B", 7, "character '#' at position 2"),
        ("04012345111118", "Ä", 7, "character 'Ä' at position 1"),
    ],
)
def test_sgtin_uri_refuses(gtin, serial, length, message):
    with pytest.raises(GS1Error, match=message.replace("(", r"\(")):
        sgtin_uri(gtin, serial, length)


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("urn:epc:id:sscc:4012345.0000000111", "is not an SGTIN EPC URI"),
        ("urn:epc:id:sgtin:4012345.011111", "must have CompanyPrefix.IndicatorItemRef.Serial"),
        ("urn:epc:id:sgtin:4012345.01111.1", "12 digits; they must have 13"),
        ("urn:epc:id:sgtin:40123.0111111.1", "must be 6..12"),
        ("urn:epc:id:sgtin:4012345.01111A.1", "must be digits"),
        ("urn:epc:id:sgtin:4012345.011111.A/B", "'/' must be written %2F"),
        ("urn:epc:id:sgtin:4012345.011111.A%21", "escape %21 is not one of"),
        ("urn:epc:id:sgtin:4012345.011111.A%2", "'%' must start an escape"),
        ("urn:epc:id:sgtin:4012345.011111.A%20B", "escape %20 is not one of"),
        ("urn:epc:id:sgtin:4012345.011111.", "is empty"),
        ("urn:epc:id:sgtin:4012345.011111." + "9" * 21, "at most 20"),
    ],
)
def test_parse_sgtin_uri_refuses(uri, message):
    with pytest.raises(GS1Error, match=message):
        parse_sgtin_uri(uri)


def test_lowercase_escapes_are_read():
    assert parse_sgtin_uri("urn:epc:id:sgtin:4012345.011111.a%2fb") == ("04012345111118", "a/b")


def test_digital_link_round_trip():
    uri = "urn:epc:id:sgtin:0614141.812345.6789%2F%26%25%22!%3F()"
    link = sgtin_uri_to_digital_link(uri)
    assert link == "https://id.gs1.org/01/80614141123458/21/6789%2F%26%25%22%21%3F%28%29"
    assert digital_link_to_sgtin_uri(link, 7) == uri


def test_digital_link_on_another_host_with_lot_and_query():
    link = "https://brand.example.com/01/04012345111118/10/L1/21/9876?17=261231&sig=x"
    assert digital_link_to_sgtin_uri(link, 7) == "urn:epc:id:sgtin:4012345.011111.9876"
    assert sgtin_uri_to_digital_link(
        "urn:epc:id:sgtin:4012345.011111.9876", "brand.example.com"
    ) == ("https://brand.example.com/01/04012345111118/21/9876")


def test_digital_link_without_serial_is_not_an_sgtin():
    with pytest.raises(GS1Error, match="no serial"):
        digital_link_to_sgtin_uri("https://id.gs1.org/01/04012345111118/10/L1", 7)


@pytest.mark.parametrize("serial", ["9876", "a'b!(c)*+,:;=", 'x"%&/<>?', "Lot.1_2-3"])
def test_event_hash_sees_one_identifier_in_either_form(serial):
    uri = sgtin_uri("04012345111118", serial, 7)
    assert canonical_uri(uri) == canonical_uri(sgtin_uri_to_digital_link(uri))
