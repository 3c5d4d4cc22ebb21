"""Reader devices: an organization registers its readers' addresses, and revokes them.

The database decides at once: a revoked device is refused from the moment its revocation
commits. The chain follows: registration and revocation are owed to CustodyLedger through the
ledger port in the same transaction, one write per device and action (idempotency keys
`device:<address>:register` and `device:<address>:revoke`). An address is registered once,
ever: CustodyLedger refuses to register a device twice, and a revoked key may have leaked, so
a device that needs a new start needs a new key.
"""

from __future__ import annotations

from provenance_api.models import Device, utcnow
from provenance_api.schemas import DeviceCreate, DevicePage, DevicePublic, DeviceStatus, as_utc
from provenance_api.services.errors import Conflict, Forbidden, NotFound
from provenance_api.services.ports import ChainState, UnitOfWork

LEDGER = "CustodyLedger"


def register_key(address: str) -> str:
    """Idempotency key of the on-chain registration of `address`."""
    return f"device:{address}:register"


def revoke_key(address: str) -> str:
    """Idempotency key of the on-chain revocation of `address`."""
    return f"device:{address}:revoke"


def register_device(uow: UnitOfWork, organization_id: int, data: DeviceCreate) -> DevicePublic:
    """Register `data.address` to the organization and owe its on-chain registration."""
    with uow:
        existing = uow.devices.get(data.address)
        if existing is not None:
            raise _refusal(existing, organization_id)
        organization = uow.organizations.get(organization_id)
        if organization is None:
            raise NotFound(f"no organization {organization_id}")
        try:
            device = uow.devices.add(
                Device(organization_id=organization_id, address=data.address, name=data.name)
            )
        except Conflict:
            raise _taken(data.address) from None  # registered meanwhile by another request
        uow.ledger.owe(
            contract=LEDGER,
            function="registerDevice",
            args=[organization.address, device.address],
            idempotency_key=register_key(device.address),
        )
        public = _public(uow, device)
        uow.commit()
    return public


def revoke_device(uow: UnitOfWork, organization_id: int, address: str) -> DevicePublic:
    """Revoke one of the organization's devices from now on (again: no change)."""
    with uow:
        device = _own(uow, organization_id, address)
        if device.revoked_at is None:
            device.revoked_at = utcnow()
            device = uow.devices.add(device)
            uow.ledger.owe(
                contract=LEDGER,
                function="revokeDevice",
                args=[device.address],
                idempotency_key=revoke_key(device.address),
            )
        public = _public(uow, device)
        uow.commit()
    return public


def list_devices(
    uow: UnitOfWork, organization_id: int, after: str | None, limit: int
) -> DevicePage:
    """One page of the organization's devices by address, with their chain state."""
    with uow:
        rows = list(uow.devices.page(organization_id, after, limit + 1))
        keys = [register_key(row.address) for row in rows[:limit]]
        keys += [revoke_key(row.address) for row in rows[:limit] if row.revoked_at is not None]
        states = uow.ledger.states(keys)
        items = [_public_from(row, states) for row in rows[:limit]]
    return DevicePage(items=items, next=items[-1].address if len(rows) > limit else None)


def active_device(uow: UnitOfWork, address: str) -> Device:
    """The registered, unrevoked device `address` (inside the caller's unit of work).

    Forbidden names why not: never registered, or revoked (from the moment it was).
    """
    device = uow.devices.get(address)
    if device is None:
        raise Forbidden(f"device {address} is not registered", {"device": "not registered"})
    if device.revoked_at is not None:
        when = as_utc(device.revoked_at).isoformat()
        raise Forbidden(f"device {address} was revoked at {when}", {"device": "revoked"})
    return device


def _own(uow: UnitOfWork, organization_id: int, address: str) -> Device:
    device = uow.devices.get(address)
    if device is None or device.organization_id != organization_id:
        raise NotFound(f"no device {address}", {"address": "not found"})
    return device


def _public(uow: UnitOfWork, device: Device) -> DevicePublic:
    keys = [register_key(device.address), revoke_key(device.address)]
    return _public_from(device, uow.ledger.states(keys))


def _public_from(device: Device, states: dict[str, ChainState]) -> DevicePublic:
    revoked = device.revoked_at is not None
    revocation = states.get(revoke_key(device.address)) if revoked else None
    return DevicePublic(
        address=device.address,
        name=device.name,
        status=DeviceStatus.REVOKED if revoked else DeviceStatus.ACTIVE,
        registered_at=device.registered_at,
        revoked_at=device.revoked_at,
        last_seen_at=device.last_seen_at,
        chain_registration=states.get(register_key(device.address), ChainState.OWED),
        chain_revocation=(revocation or ChainState.OWED) if revoked else None,
    )


def _refusal(existing: Device, organization_id: int) -> Conflict:
    if existing.organization_id != organization_id:
        return _taken(existing.address)
    if existing.revoked_at is not None:
        return Conflict(
            f"device {existing.address} was revoked and cannot be registered again: "
            "provision the reader with a new key (`firmware-tools device provision`)",
            {"address": "revoked; a new key is needed"},
        )
    return Conflict(
        f"device {existing.address} is already registered to your organization",
        {"address": "already registered"},
    )


def _taken(address: str) -> Conflict:
    # The same answer whoever holds it (active or revoked): which organization is not shown.
    return Conflict(
        f"device {address} is already registered; an address can be registered once",
        {"address": "already registered"},
    )
