"""Events the reader agent builds: what the body states is exactly what the device signed."""

from __future__ import annotations

import uuid

import pytest

from contracts_abi import eip712
from provenance_api.schemas import EventCreate
from reader_agent.context import Context
from reader_agent.errors import EventError
from reader_agent.events import build_event, local_offset_minutes, new_event
from reader_agent.reads import Read
from tests.integration.events_support import sign

KEY = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
DEVICE = eip712.address_of_private_key(KEY)
OTHER = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"
URL = "https://id.example.com/01/09506000134352/21/S%2F1?sig=abc"
EVENT_ID = uuid.UUID("6f1c7a4e-1c55-4b8e-9a57-0c6a3e1f2b11")
CONTEXT = Context("shipping", "in_transit", "urn:epc:id:sgln:9506000.13435.0", to_party=OTHER)


def built(read: Read, offset: int = 60, context: Context = CONTEXT) -> dict:
    return build_event(
        read,
        context,
        device_key=KEY,
        device_address=DEVICE,
        event_id=EVENT_ID,
        time_zone_offset=offset,
    )


def test_a_qr_read_becomes_the_body_the_api_takes_signed_over_what_it_states() -> None:
    body = built(Read(URL, "serial:/dev/ttyACM0", 1_790_000_000.9))
    assert body == {
        "event_id": str(EVENT_ID),
        "gtin": "09506000134352",
        "serial": "S/1",
        "biz_step": "shipping",
        "disposition": "in_transit",
        "read_point": "urn:epc:id:sgln:9506000.13435.0",
        "from_party": None,
        "to_party": OTHER,
        "event_time": "2026-09-21T15:13:20+01:00",  # 1_790_000_000 s, in UTC+01:00
        "device": DEVICE,
        "tag": {"url": URL},
        "signature": body["signature"],
    }
    # An independent signer (tests/integration/events_support) reads the body as the API does.
    assert body["signature"] == "0x" + sign(KEY, body).hex()
    parsed = EventCreate.model_validate(body)
    assert parsed.event_time.timestamp() == 1_790_000_000


def test_a_chip_read_carries_its_uid_and_originality_signature() -> None:
    uid, signature = bytes.fromhex("04A1B2C3D4E5F6"), bytes(range(32))
    body = built(Read(URL, "nfc:pn532_uart:/dev/ttyUSB0", 1_790_000_000, uid, signature))
    assert body["tag"] == {
        "url": URL,
        "uid": "04A1B2C3D4E5F6",
        "originality_signature": signature.hex().upper(),
    }
    assert body["signature"] == "0x" + sign(KEY, body).hex()
    EventCreate.model_validate(body)


def test_a_uid_without_its_signature_is_not_evidence_the_api_takes() -> None:
    body = built(Read(URL, "nfc:x", 1_790_000_000, uid=bytes.fromhex("04A1B2C3D4E5F6")))
    assert body["tag"] == {"url": URL}
    assert body["signature"] == "0x" + sign(KEY, body).hex()


@pytest.mark.parametrize("offset", [-600, -330, 0, 345, 840])
def test_the_offset_goes_into_the_time_and_the_signature(offset: int) -> None:
    body = built(Read(URL, "camera:0", 1_790_000_000), offset=offset)
    parsed = EventCreate.model_validate(body)
    assert parsed.event_time.utcoffset().total_seconds() == offset * 60
    assert body["signature"] == "0x" + sign(KEY, body).hex()


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("https://id.example.com/01/09506000134352", "no serial"),
        ("https://id.example.com/01/09506000134353/21/S1", "check digit"),
        ("hello", "https://"),
        ("https://id.example.com/01/09506000134352/21/" + "x" * 2100, "characters"),
    ],
)
def test_a_read_that_names_no_serialized_item_is_refused_at_once(url: str, words: str) -> None:
    with pytest.raises(EventError, match=words):
        built(Read(url, "serial:/dev/ttyACM0", 1_790_000_000))


def test_an_offset_beyond_14_hours_is_refused() -> None:
    with pytest.raises(EventError, match="minutes"):
        built(Read(URL, "camera:0", 1_790_000_000), offset=900)


def test_new_event_draws_a_fresh_uuid4_and_the_local_offset() -> None:
    read = Read(URL, "camera:0", 1_790_000_000)
    first = new_event(read, CONTEXT, device_key=KEY, device_address=DEVICE)
    second = new_event(read, CONTEXT, device_key=KEY, device_address=DEVICE)
    assert uuid.UUID(first["event_id"]).version == 4
    assert first["event_id"] != second["event_id"]
    offset = EventCreate.model_validate(first).event_time.utcoffset().total_seconds()
    assert offset == local_offset_minutes(read.read_at) * 60
