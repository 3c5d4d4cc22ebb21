"""Suppliers' NTAG 424 DNA SUN master keys, held by the API and never shown again.

Each key is sealed by the key box with (organization, epoch) as authenticated data, so a
sealed key copied onto another supplier's row, or another epoch, does not open. Epochs are
numbered from 1 upward; the highest is current, the older ones stay to verify older tags.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from firmware_tools.chips.ntag424.sun import KeyEpoch
from provenance_api.keys import KeyBox
from provenance_api.models import SunKey
from provenance_api.schemas import SunKeyList, SunKeyPublic
from provenance_api.services.errors import Conflict, InvalidInput
from provenance_api.services.ports import UnitOfWork

MASTER_KEY_BYTES = 16
MAX_EPOCHS = 100
ATTEMPTS = 10  # each clash means another request added an epoch: progress was made


def sealing_context(organization_id: int, epoch: int) -> str:
    """The authenticated data a SUN key is sealed under."""
    return f"sun-key:{organization_id}:{epoch}"


def create_sun_key(
    uow: UnitOfWork, keybox: KeyBox, organization_id: int, master_key_hex: str | None = None
) -> SunKeyPublic:
    """A new current epoch from `master_key_hex` (32 hex digits), or from a fresh random key."""
    if master_key_hex is None:
        master_key = secrets.token_bytes(MASTER_KEY_BYTES)
    else:
        master_key = _parse(master_key_hex)
    for attempt in range(ATTEMPTS):
        try:
            return _add_epoch(uow, keybox, organization_id, master_key)
        except Conflict:
            # Another request took the same epoch number at the same time: take the next.
            if attempt == ATTEMPTS - 1:
                raise Conflict("other requests kept adding SUN keys; send it again") from None
    raise AssertionError("unreachable")


def _add_epoch(
    uow: UnitOfWork, keybox: KeyBox, organization_id: int, master_key: bytes
) -> SunKeyPublic:
    with uow:
        epochs = uow.sun_keys.epochs(organization_id)
        if len(epochs) >= MAX_EPOCHS:
            raise Conflict(
                f"at most {MAX_EPOCHS} SUN key epochs per supplier",
                {"master_key": "too many epochs"},
            )
        number = epochs[-1].epoch + 1 if epochs else 1
        sealed = keybox.seal(master_key, sealing_context(organization_id, number))
        row = uow.sun_keys.add(
            SunKey(organization_id=organization_id, epoch=number, sealed_key=sealed)
        )
        public = SunKeyPublic(epoch=row.epoch, created_at=row.created_at, current=True)
        uow.commit()
    return public


def list_sun_keys(uow: UnitOfWork, organization_id: int) -> SunKeyList:
    """The organization's epochs, oldest first; never the keys."""
    with uow:
        rows = list(uow.sun_keys.epochs(organization_id))
        last = rows[-1].epoch if rows else None
        return SunKeyList(
            items=[
                SunKeyPublic(epoch=row.epoch, created_at=row.created_at, current=row.epoch == last)
                for row in rows
            ]
        )


def key_epochs(uow: UnitOfWork, keybox: KeyBox, organization_id: int) -> list[KeyEpoch]:
    """The organization's SUN key epochs for verification, oldest first (the last is current).

    A sealed key that does not open for this organization and epoch raises KeyBoxError.
    """
    with uow:
        return open_epochs(keybox, uow.sun_keys.epochs(organization_id))


def open_epochs(keybox: KeyBox, rows: Sequence[SunKey]) -> list[KeyEpoch]:
    """Key epochs from stored rows (read inside the caller's unit of work), in their order."""
    return [
        KeyEpoch.from_master(
            keybox.open(row.sealed_key, sealing_context(row.organization_id, row.epoch)),
            row.epoch,
        )
        for row in rows
    ]


def _parse(master_key_hex: str) -> bytes:
    try:
        key = bytes.fromhex(master_key_hex)
    except ValueError:
        key = b""
    if len(key) != MASTER_KEY_BYTES:
        raise InvalidInput(
            "the master key must be 16 bytes as 32 hex digits", {"master_key": "not 32 hex digits"}
        )
    if key == bytes(MASTER_KEY_BYTES):
        # The factory default of every NTAG 424 DNA: anyone could forge taps under it.
        raise InvalidInput(
            "the all-zero key is the chip's factory default", {"master_key": "factory default key"}
        )
    return key
