"""A supplier with NTAG 424 DNA items and a SUN key, a carrier with a reader, and signed events.

Events are built and signed here from the EIP-712 type directly (not through the service's
own conversion), so that a test fails when the API reads a field differently from a device.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from eth_account import Account

from contracts_abi import eip712
from provenance_api.schemas import Role
from tests.fakes.sun_tags import sun_url
from tests.integration.api_support import GTIN, Api

MASTER = bytes.fromhex("5A" * 16)


def uid_of(n: int) -> bytes:
    """The 7-byte chip UID of item n (manufacturer code 04h)."""
    return b"\x04" + n.to_bytes(6, "big")


def serial_of(n: int) -> str:
    return f"S{n}"


@dataclass
class Reader:
    """A registered reader device: its key and address."""

    key: bytes
    address: str


@dataclass
class World:
    """Who posts events and what about: a supplier's items, a carrier and its reader."""

    api: Api
    supplier: str
    carrier: str
    reader: Reader
    items: int
    counters: dict[int, int] = field(default_factory=dict)

    def reader_for(self, key: str) -> Reader:
        """A new reader registered to the organization of API key `key`."""
        account = Account.create()
        body = {"address": account.address, "name": "Dock door"}
        answer = self.api.call("POST", "/v1/devices", key, json=body)
        assert answer.status_code == 201, answer.get_json()
        return Reader(bytes(account.key), account.address)

    def tap(self, n: int, counter: int | None = None, **where: Any) -> str:
        """A fresh SUN tap of item n's tag (its next counter), or at `counter`."""
        if counter is None:
            counter = self.counters.get(n, 0) + 1
        self.counters[n] = max(counter, self.counters.get(n, 0))
        where.setdefault("gtin", GTIN)
        where.setdefault("serial", serial_of(n))
        return sun_url(MASTER, uid_of(n), counter, **where)

    def event(self, n: int, reader: Reader | None = None, **fields: Any) -> dict[str, Any]:
        """A signed event about item n with a fresh tap; `fields` override before signing."""
        reader = reader or self.reader
        body: dict[str, Any] = {
            "event_id": str(uuid.uuid4()),
            "gtin": GTIN,
            "serial": serial_of(n),
            "biz_step": "receiving",
            "disposition": "in_progress",
            "read_point": "urn:epc:id:sgln:9506000.13435.0",
            "from_party": None,
            "to_party": None,
            "event_time": _now_local(),
            "device": reader.address,
        }
        body.update(fields)
        if "tag" not in body:
            body["tag"] = {"url": self.tap(n)}
        body["signature"] = "0x" + sign(reader.key, body).hex()
        return body

    def post(self, events: list[dict[str, Any]], key: str | None = None):
        return self.api.call("POST", "/v1/events", key or self.carrier, json={"events": events})


def _now_local() -> str:
    here = timezone(timedelta(hours=1))
    return datetime.now(here).replace(microsecond=0).isoformat()


def sign(key: bytes, body: dict[str, Any]) -> bytes:
    """A device's signature over the event `body` states (EIP-712 `CustodyEvent`)."""
    moment = datetime.fromisoformat(body["event_time"])
    offset = moment.utcoffset()
    assert offset is not None
    tag = body["tag"]
    event = eip712.CustodyEvent(
        event_id=uuid.UUID(body["event_id"]),
        gtin=body["gtin"],
        serial=body["serial"],
        biz_step=body["biz_step"],
        disposition=body["disposition"],
        read_point=body["read_point"],
        from_party=body["from_party"] or eip712.ZERO_ADDRESS,
        to_party=body["to_party"] or eip712.ZERO_ADDRESS,
        event_time=int(moment.timestamp()),
        time_zone_offset=int(offset.total_seconds() // 60),
        tag_evidence=eip712.tag_evidence_digest(
            tag["url"],
            bytes.fromhex(tag.get("uid") or ""),
            bytes.fromhex(tag.get("originality_signature") or ""),
        ),
        device=body["device"],
    )
    return eip712.sign_custody_event(key, event)


def make_world(api: Api, items: int = 5) -> World:
    """A supplier with `items` NTAG 424 DNA items under MASTER, and a carrier with a reader."""
    supplier = api.key(Role.SUPPLIER)
    created = api.call("POST", "/v1/products", supplier, json={"gtin": GTIN, "name": "Tea"})
    assert created.status_code == 201, created.get_json()
    sun = api.call("POST", "/v1/sun-keys", supplier, json={"master_key": MASTER.hex()})
    assert sun.status_code == 201, sun.get_json()
    rows = [
        {"gtin": GTIN, "serial": serial_of(n), "tag": "ntag424", "uid": uid_of(n).hex()}
        for n in range(1, items + 1)
    ]
    registered = api.call("POST", "/v1/items", supplier, json={"items": rows})
    assert registered.get_json()["created"] == items, registered.get_json()
    carrier = api.key(Role.CARRIER)
    world = World(api, supplier, carrier, Reader(b"", ""), items)
    world.reader = world.reader_for(carrier)
    return world
