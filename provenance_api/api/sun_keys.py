"""/v1/sun-keys: a supplier's NTAG 424 DNA master keys, by epoch; the keys are never returned."""

from __future__ import annotations

from provenance_api.api.deps import runtime
from provenance_api.api.frame import Answer, answer, blueprint, tenant, unit_of_work
from provenance_api.schemas import ErrorBody, SunKeyCreate, SunKeyList, SunKeyPublic
from provenance_api.services import sun_keys

bp = blueprint("sun_keys", "A supplier's SUN master keys (NTAG 424 DNA), sealed at rest.")


@bp.post("/sun-keys", responses={201: SunKeyPublic, 409: ErrorBody, 413: ErrorBody})
def create_sun_key(body: SunKeyCreate) -> Answer:
    """Add a key epoch (generated, or imported from `master_key`); it becomes the current one."""
    created = sun_keys.create_sun_key(unit_of_work(), runtime().keybox, tenant(), body.master_key)
    return answer(created, 201)


@bp.get("/sun-keys", responses={200: SunKeyList})
def list_sun_keys() -> Answer:
    """The caller's key epochs, oldest first: number, time, whether current. Never a key."""
    return answer(sun_keys.list_sun_keys(unit_of_work(), tenant()))
