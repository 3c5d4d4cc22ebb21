"""NDEF URI records and Type 2 tag memory images, checked both ways against ndeflib."""

from __future__ import annotations

import ndef
import pytest

from firmware_tools.errors import NdefError
from firmware_tools.formats.ndef import (
    URI_PREFIXES,
    build_type2_image,
    capability_container,
    decode_uri_record,
    encode_uri_record,
    ndef_tlvs,
    parse_capability_container,
    parse_tlvs,
    parse_type2_image,
    tlv_area_length,
)

URLS = [
    "https://id.example.com/01/09521234543213/21/SN1?uid=04E10CDA993C80&sig=abc-_",
    "http://www.example.org/x",
    "https://www.example.org/",
    "tel:+123456",
    "urn:epc:id:sgtin:0614141.107346.2017",
    "ftp://ftp.example.net/f",
    "custom-scheme:thing",
    "https://example.com/" + "a" * 300,  # long record: 4-byte payload length, 3-byte TLV
    "https://example.com/ünïcode",
]


def _ndeflib_bytes(url: str) -> bytes:
    return b"".join(ndef.message_encoder([ndef.UriRecord(url)]))


@pytest.mark.parametrize("url", URLS)
def test_our_record_is_byte_identical_to_ndeflib(url):
    assert encode_uri_record(url) == _ndeflib_bytes(url)


@pytest.mark.parametrize("url", URLS)
def test_ndeflib_decodes_our_record(url):
    (record,) = list(ndef.message_decoder(encode_uri_record(url)))
    assert isinstance(record, ndef.UriRecord)
    assert record.iri == url


@pytest.mark.parametrize("url", URLS)
def test_we_decode_ndeflib_records(url):
    assert decode_uri_record(_ndeflib_bytes(url)) == url


def test_https_abbreviation_is_code_4():
    assert URI_PREFIXES[4] == "https://"
    message = encode_uri_record("https://a.b/c")
    assert message[:4] == bytes((0xD1, 0x01, 0x06, ord("U")))
    assert message[4] == 0x04
    assert message[5:] == b"a.b/c"


def test_capability_container_of_ntag215():
    assert capability_container(496) == bytes.fromhex("E1103E00")
    cc = parse_capability_container(bytes.fromhex("E1103E00"))
    assert (cc.data_area_size, cc.writable) == (496, True)
    with pytest.raises(NdefError, match="magic"):
        parse_capability_container(bytes.fromhex("00103E00"))


@pytest.mark.parametrize("url", URLS)
def test_type2_image_round_trips(url):
    message = encode_uri_record(url)
    image = build_type2_image(message, 872)
    assert parse_type2_image(image) == message
    assert decode_uri_record(parse_type2_image(image)) == url
    # ndeflib decodes the message we lift out of our own image
    assert next(ndef.message_decoder(parse_tlvs(image[4:]))).iri == url


def test_short_and_long_tlv_lengths():
    assert ndef_tlvs(bytes(254), 872)[:2] == bytes((0x03, 0xFE))
    assert ndef_tlvs(bytes(255), 872)[:4] == bytes((0x03, 0xFF, 0x00, 0xFF))
    assert ndef_tlvs(bytes(10), 872)[-1] == 0xFE


def test_terminator_left_out_when_message_fills_the_area():
    tlvs = ndef_tlvs(bytes(142), 144)
    assert len(tlvs) == 144
    assert tlvs[-1] == 0x00


def test_parse_skips_null_lock_and_memory_control_tlvs():
    message = _ndeflib_bytes("https://x.y/z")
    area = bytes((0x00, 0x01, 0x03, 0xA0, 0x10, 0x44, 0x02, 0x03, 0x00, 0x00, 0x00))
    area += bytes((0x03, len(message))) + message + b"\xfe"
    assert parse_tlvs(area) == message


@pytest.mark.parametrize(
    ("area", "words"),
    [
        (bytes((0x03, 0x20, 0xD1)), "claims 32 bytes"),
        (bytes((0xFE,)), "no NDEF TLV"),
        (bytes((0x42, 0x00)), "unknown TLV 0x42"),
        (bytes((0x03,)), "has no length"),
    ],
)
def test_malformed_tlvs_are_refused_in_words(area, words):
    with pytest.raises(NdefError, match=words):
        parse_tlvs(area)


def test_the_reader_stops_exactly_where_the_parser_finds_the_message():
    # A lock control TLV, a long (3-byte length) NDEF TLV and a terminator, read a byte at a
    # time: before the end of the NDEF TLV the reader asks for more; from there both agree.
    message = _ndeflib_bytes("https://id.example.com/" + "x" * 300)
    area = bytes((0x01, 0x03, 0xA0, 0x10, 0x44)) + ndef_tlvs(message, 512)
    end = 5 + 4 + len(message)
    for cut in range(len(area) + 1):
        prefix = area[:cut]
        if cut < end:
            assert tlv_area_length(prefix) is None
            with pytest.raises(NdefError):
                parse_tlvs(prefix)
        else:
            assert tlv_area_length(prefix) == end
            assert parse_tlvs(prefix) == message
    for bad in (bytes((0xFE, 0x03)), bytes((0x42,))):
        with pytest.raises(NdefError):
            tlv_area_length(bad)


@pytest.mark.parametrize(
    ("message", "words"),
    [
        (bytes.fromhex("510102550461"), "MB"),
        (bytes.fromhex("910102550461"), "no record with the ME"),
        (bytes.fromhex("d10109550461"), "claims"),
        (bytes.fromhex("d1010155ff"), "reserved"),
        (bytes.fromhex("d101015404"), "no URI record"),
        (bytes.fromhex("d1010255046100"), "1 bytes after the ME"),
    ],
)
def test_malformed_messages_are_refused_in_words(message, words):
    with pytest.raises(NdefError, match=words):
        decode_uri_record(message)


def test_message_too_long_for_the_area_is_refused():
    with pytest.raises(NdefError, match=r"needs 147 bytes.*holds 144"):
        ndef_tlvs(bytes(145), 144)
