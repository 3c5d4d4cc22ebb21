"""The reader agent against the API under test: events built by the agent's own code, and what
the API stored of them."""

from __future__ import annotations

import time
import uuid

import sqlalchemy as sa

from reader_agent.context import Context
from reader_agent.events import build_event
from reader_agent.reads import Read
from tests.integration.api_support import Api
from tests.integration.events_support import Reader, World

DOCK = Context("receiving", "in_progress", "urn:epc:id:sgln:9506000.13435.0")


def agent_event(world: World, n: int, reader: Reader | None = None, **read) -> dict:
    """What the agent records for a fresh NTAG 424 DNA tap of item n, read now."""
    reader = reader or world.reader
    return build_event(
        Read(url=world.tap(n), source="nfc:pn532_uart:/dev/ttyUSB0", read_at=time.time(), **read),
        DOCK,
        device_key=reader.key,
        device_address=reader.address,
        event_id=uuid.uuid4(),
        time_zone_offset=60,
    )


def stored_event_ids(api: Api, device: str) -> list[str]:
    """The event ids the API stored from `device`, in the order it stored them."""
    engine = api.app.extensions["provenance"].engine
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT event_id FROM custody_event WHERE device = :device ORDER BY id"),
            {"device": device},
        )
        return [row[0] for row in rows]
