"""/v1/devices: an organization's reader devices, registered by address and revoked."""

from __future__ import annotations

from provenance_api.api.frame import Answer, answer, blueprint, tenant, unit_of_work
from provenance_api.schemas import (
    DeviceCreate,
    DeviceListQuery,
    DevicePage,
    DevicePath,
    DevicePublic,
    ErrorBody,
)
from provenance_api.services import devices

bp = blueprint("devices", "Reader devices by signing address; registered once, revoked for good.")


@bp.post("/devices", responses={201: DevicePublic, 409: ErrorBody, 413: ErrorBody})
def register_device(body: DeviceCreate) -> Answer:
    """Register a reader's address; on-chain registration follows through the chain writer.

    An address registered before (by anyone, revoked or not) is 409: a revoked device needs a
    new key.
    """
    return answer(devices.register_device(unit_of_work(), tenant(), body), 201)


@bp.get("/devices", responses={200: DevicePage})
def list_devices(query: DeviceListQuery) -> Answer:
    """The caller's devices by address, with status, last seen time and chain state."""
    return answer(devices.list_devices(unit_of_work(), tenant(), query.after, query.limit))


@bp.delete("/devices/<address>", responses={200: DevicePublic, 404: ErrorBody})
def revoke_device(path: DevicePath) -> Answer:
    """Revoke one of the caller's devices: refused from now on; the chain follows."""
    return answer(devices.revoke_device(unit_of_work(), tenant(), path.address))
