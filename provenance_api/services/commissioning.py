"""An item's commissioning event: its registration, signed by the supplier like a device event.

Pure: no I/O; the supplier's key, the salt and the event id are arguments.

The event is a `CustodyEvent` (contracts_abi.eip712) that the supplier's own address signs as
its `device`: `commissioning` / `active`, from nobody to the supplier, at the registration
time. Its tag evidence is the digest of an empty URL (nothing was read) and, for an NFC item,
the chip UID, so the supplier's signature also binds the chip to the item. It is stored and
anchored like every custody event: one Merkle leaf, no transaction of its own.
"""

from __future__ import annotations

import uuid
from datetime import UTC

from contracts_abi import eip712
from provenance_api.services import custody_rules
from provenance_api.services.ports import NewCustodyEvent, NewItem, new_custody_event

BIZ_STEP = custody_rules.COMMISSIONING
DISPOSITION = "active"
TAG_VERDICT = "not_read"  # no tag was read: the supplier vouches for the item and its chip


def commissioning_event(
    item: NewItem,
    item_id: int,
    supplier: str,
    private_key: bytes,
    *,
    event_id: uuid.UUID,
    salt: bytes,
) -> NewCustodyEvent:
    """The supplier-signed commissioning event of `item` (stored as `item_id`)."""
    uid = bytes.fromhex(item.uid) if item.uid is not None else b""
    evidence = eip712.tag_evidence_digest("", uid)
    signed = eip712.CustodyEvent(
        event_id=event_id,
        gtin=item.gtin,
        serial=item.serial,
        biz_step=BIZ_STEP,
        disposition=DISPOSITION,
        read_point="",
        from_party=eip712.ZERO_ADDRESS,
        to_party=supplier,
        event_time=int(item.commissioned_at.astimezone(UTC).timestamp()),
        time_zone_offset=0,
        tag_evidence=evidence,
        device=supplier,
    )
    digest = eip712.custody_event_digest(signed)
    return new_custody_event(
        signed,
        item_id=item_id,
        organization_id=item.organization_id,
        party=supplier,
        tag_url="",
        tag_uid=uid,
        tag_originality_signature=b"",
        signature=eip712.sign_digest(private_key, digest),
        digest=digest,
        salt=salt,
        tag_verdict=TAG_VERDICT,
        tag_codes=[],
        flags=[],
        received_at=item.commissioned_at,
    )
