"""Custody events from reads: the JSON item that `POST /v1/events` takes, signed by the device.

`build_event` is pure: the event id, the time-zone offset and the key are arguments.
`new_event` is the edge that draws a UUID4 and reads the device's time zone.

The signature is EIP-712 `CustodyEvent` (contracts_abi.eip712, coincurve: no eth-account
here, whose import alone costs ~31 MB of a 60 MB budget). The item comes from the URL through
the tag library's strict GS1 Digital Link parser. Tag evidence: the URL exactly as read and,
for a chip read with its originality signature, its UID and that signature; the API refuses
one without the other, so a UID read without a signature is left out (the URL carries all the
evidence of a QR label or an NTAG 424 DNA tap).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from contracts_abi import eip712
from firmware_tools.errors import GS1Error
from firmware_tools.formats.gs1 import parse_digital_link
from reader_agent.context import Context
from reader_agent.errors import EventError
from reader_agent.reads import Read

URL_MAX = 2048  # the API's TagEvidence.url limit


def build_event(
    read: Read,
    context: Context,
    *,
    device_key: bytes,
    device_address: str,
    event_id: uuid.UUID,
    time_zone_offset: int,
) -> dict[str, Any]:
    """The signed event body for `read` in `context`; EventError if the read names no item.

    `time_zone_offset` is minutes east of UTC where the read happened. Pure.
    """
    if len(read.url) > URL_MAX:
        raise EventError(f"the tag's URL has {len(read.url)} characters; the API takes {URL_MAX}")
    try:
        link = parse_digital_link(read.url)
    except GS1Error as exc:
        raise EventError(f"not a GS1 Digital Link of a serialized item: {exc}") from None
    chip = bool(read.uid and read.originality_signature)
    uid = read.uid if chip else b""
    signature = read.originality_signature if chip else b""
    event_time = int(read.read_at)  # the device signs whole seconds
    signed = eip712.CustodyEvent(
        event_id=event_id,
        gtin=link.gtin,
        serial=link.serial,
        biz_step=context.biz_step,
        disposition=context.disposition,
        read_point=context.read_point,
        from_party=context.from_party or eip712.ZERO_ADDRESS,
        to_party=context.to_party or eip712.ZERO_ADDRESS,
        event_time=event_time,
        time_zone_offset=time_zone_offset,
        tag_evidence=eip712.tag_evidence_digest(read.url, uid, signature),
        device=device_address,
    )
    try:
        device_signature = eip712.sign_custody_event(device_key, signed)
    except ValueError as exc:  # a time-zone offset or time out of range
        raise EventError(str(exc)) from None
    tag: dict[str, str] = {"url": read.url}
    if chip:
        tag["uid"] = uid.hex().upper()
        tag["originality_signature"] = signature.hex().upper()
    zone = timezone(timedelta(minutes=time_zone_offset))
    return {
        "event_id": str(event_id),
        "gtin": link.gtin,
        "serial": link.serial,
        "biz_step": context.biz_step,
        "disposition": context.disposition,
        "read_point": context.read_point,
        "from_party": context.from_party,
        "to_party": context.to_party,
        "event_time": datetime.fromtimestamp(event_time, zone).isoformat(),
        "device": device_address,
        "tag": tag,
        "signature": "0x" + device_signature.hex(),
    }


def local_offset_minutes(at: float) -> int:
    """Minutes east of UTC of the device's time zone at UTC seconds `at` (DST included)."""
    offset = datetime.fromtimestamp(at, UTC).astimezone().utcoffset()
    return int(offset.total_seconds() // 60) if offset is not None else 0


def new_event(
    read: Read, context: Context, *, device_key: bytes, device_address: str
) -> dict[str, Any]:
    """`build_event` with a fresh UUID4 and the device's own time zone."""
    return build_event(
        read,
        context,
        device_key=device_key,
        device_address=device_address,
        event_id=uuid.uuid4(),
        time_zone_offset=local_offset_minutes(read.read_at),
    )
