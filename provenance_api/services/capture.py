"""EPCIS 2.0 capture: store the events of another system's EPCISDocument as a capture job.

The job is processed inside the request that creates it: its row is committed first (so it
exists, and can be polled, whatever happens next), then its events and its outcome in a
second transaction. A failure there leaves the job `failed` with the reason, never `running`;
a clash with a concurrent capture of the same events is retried once, and they are then
duplicates, stored once.

Captured events are not device-signed: they are what the capturing organization states. They
are anchored in the same batches as custody events (services.anchoring), export again with the
hash ID they had when captured (services.epcis) and show in an item's verification history,
marked as such; the anomaly rules never count them as custody.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from contracts_abi.merkle import SALT_BYTES
from provenance_api.epcis import capture as rules
from provenance_api.models import CaptureJob
from provenance_api.schemas import CaptureErrorPublic, CaptureJobPublic, as_utc
from provenance_api.services.errors import Conflict, NotFound
from provenance_api.services.ports import NewCapturedEvent, UnitOfWork

log = logging.getLogger(__name__)

RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"


def capture(
    uow: UnitOfWork,
    organization_id: int,
    document: dict[str, Any],
    behaviour: str,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    salt: Callable[[], bytes] = lambda: os.urandom(SALT_BYTES),
) -> CaptureJobPublic:
    """Create the capture job of a schema-valid EPCISDocument and run it; the job as it ends."""
    job = CaptureJob(
        public_id=str(uuid.uuid4()),
        organization_id=organization_id,
        status=RUNNING,
        error_behaviour=behaviour,
        event_count=rules.event_count(document),
        created_at=now(),
    )
    public_id = job.public_id
    with uow:
        uow.capture_jobs.add(job)
        uow.commit()
    try:
        try:
            _run(uow, public_id, document, now, salt)
        except Conflict:
            # Another request of the same organization stored some of these events between
            # our read of what is known and our insert: once more, they are known now.
            _run(uow, public_id, document, now, salt)
    except Exception as exc:  # the job must end, whatever went wrong: say it was not stored
        log.exception("capture job %s failed", public_id)
        with uow:
            stored = _job(uow, public_id)
            stored.status, stored.finished_at, stored.captured_count = FAILED, now(), 0
            stored.duplicate_count = 0
            stored.errors = [{"index": None, "eventID": None, "message": _internal(exc)}]
            stored.warnings = []
            uow.capture_jobs.add(stored)
            uow.commit()
    with uow:
        return public(_job(uow, public_id))


def _job(uow: UnitOfWork, public_id: str) -> CaptureJob:
    job = uow.capture_jobs.get(public_id)
    assert job is not None, f"capture job {public_id} vanished"
    return job


def _internal(exc: Exception) -> str:
    name = type(exc).__name__
    return f"the capture could not be stored ({name}); nothing of it was kept: send it again"


def _run(
    uow: UnitOfWork,
    public_id: str,
    document: dict[str, Any],
    now: Callable[[], datetime],
    salt: Callable[[], bytes],
) -> None:
    """Store the good events (all or none, as the job asks) and the job's outcome, at once."""
    good, bad = rules.read_document(document)
    with uow:
        stored = _job(uow, public_id)
        assert stored.id is not None
        organization_id = stored.organization_id
        # Events repeated within the document are stored once, and count as duplicates.
        repeats = stored.event_count - len(good) - len(bad)
        known = uow.captured.known(organization_id, [event.hash_id for event in good])
        fresh = [event for event in good if event.hash_id not in known]
        keep = not bad or stored.error_behaviour == rules.PROCEED
        if keep and fresh:
            received = now()
            uow.captured.add_many(
                stored.id, [_new(organization_id, e, received, salt) for e in fresh]
            )
        stored.status = FAILED if bad else SUCCEEDED
        stored.captured_count = len(good) + repeats if keep else 0
        stored.duplicate_count = len(known) + repeats if keep else 0
        stored.errors = [error.as_json() for error in bad]
        stored.warnings = [
            {"index": e.index, "eventID": e.received_event_id, "message": e.warning}
            for e in good
            if e.warning is not None
        ]
        stored.finished_at = now()
        uow.capture_jobs.add(stored)
        uow.commit()


def _new(
    organization_id: int,
    event: rules.CapturedEvent,
    received: datetime,
    salt: Callable[[], bytes],
) -> NewCapturedEvent:
    return NewCapturedEvent(
        organization_id=organization_id,
        event_hash=event.hash_id,
        received_event_id=event.received_event_id,
        event_type=event.event_type,
        event_time_ms=event.event_time_ms,
        time_zone_offset=event.time_zone_offset,
        biz_step=event.biz_step,
        event=event.event,
        context=event.context,
        digest=event.digest,
        salt=salt(),
        received_at=received,
        epcs=list(event.epcs),
    )


def get_job(uow: UnitOfWork, organization_id: int, capture_id: str) -> CaptureJobPublic:
    """A capture job, for the organization that captured it; anyone else gets 404."""
    with uow:
        job = uow.capture_jobs.get(capture_id)
        if job is None or job.organization_id != organization_id:
            raise NotFound(f"no capture job {capture_id}", {"capture_id": "not found"})
        return public(job)


def public(job: CaptureJob) -> CaptureJobPublic:
    """The job as the EPCIS capture interface shows it."""
    running = job.status == RUNNING
    return CaptureJobPublic(
        captureID=job.public_id,
        status=job.status,  # type: ignore[arg-type]
        running=running,
        success=None if running else job.status == SUCCEEDED,
        captureErrorBehaviour=job.error_behaviour,  # type: ignore[arg-type]
        createdAt=as_utc(job.created_at),
        finishedAt=as_utc(job.finished_at) if job.finished_at is not None else None,
        eventCount=job.event_count,
        capturedCount=job.captured_count,
        duplicateCount=job.duplicate_count,
        errors=[CaptureErrorPublic(**error) for error in job.errors],
        warnings=[CaptureErrorPublic(**warning) for warning in job.warnings],
    )
