"""GET /healthz: database, chain, chain writers and trade sweeper, each with what an operator
needs to know."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue
from sqlmodel import Session

from provenance_api import chain, db
from provenance_api.api.deps import runtime
from provenance_api.chain_writer import lease_status
from provenance_api.services.chain_writes import failed_count, unsettled_count
from provenance_api.services.deployments import known_addresses

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    """Always 200; `status` is "degraded" when any part is not well."""
    rt = runtime()
    # Anyone can read this: the backend kind, never a file path or credentials.
    database: dict[str, Any] = {"ok": True, **db.public_location(rt.config["DATABASE_URL"])}
    try:
        db.check_schema(rt.engine)
    except db.DatabaseError as exc:
        database.update(ok=False, error=exc.reason)

    chain_info: dict[str, Any] = {"ok": False}
    try:
        chain_info = {"ok": True, **chain.chain_status(rt.w3), "contracts": {}}
    except Exception as exc:  # a down node must show here, not crash the probe
        # Anyone can read this: the kind of failure, never its message (which may name the
        # node's URL with credentials, or the embedded chain's directory).
        log.warning("healthz: the chain could not be read: %s", exc)
        chain_info["error"] = chain_failure(exc)

    writer: dict[str, Any] = {"running": False, "pending": None, "failed": None, "last_error": None}
    custodial: dict[str, Any] = {
        "running": False,
        "writers": 0,
        "pending": None,
        "failed": None,
        "last_error": None,
    }
    operator = None
    try:
        operator = rt.operator.address
    except Exception as exc:
        writer["last_error"] = str(exc)
    if database["ok"]:
        with Session(rt.engine) as session:
            if chain_info["ok"]:
                chain_info["contracts"] = known_addresses(session, chain_info["chain_id"])
            writer["pending"] = unsettled_count(session, operator)
            # Failed and not retried: `provenance-api writes list --failed` names them.
            writer["failed"] = failed_count(session, operator)
        if operator is not None:
            lease = lease_status(rt.engine, operator)
            writer.update(running=lease["running"], last_error=lease["last_error"])
        if rt.writer is not None:
            writer["running"] = writer["running"] or rt.writer.running
        if operator is not None:
            with Session(rt.engine) as session:
                # Writes of organizations whose keys the service holds, each by its own writer.
                custodial["pending"] = unsettled_count(session, other_than=operator)
                custodial["failed"] = failed_count(session, other_than=operator)
    if rt.custodial is not None:
        custodial.update(running=rt.custodial.running, writers=len(rt.custodial.writers))
        custodial["last_error"] = rt.custodial.last_error
    sweeper: dict[str, Any] = {
        "running": False,
        "every_seconds": rt.config["TRADE_SWEEP_SECONDS"],
        "last_pass": None,
        "last_counts": None,
        "last_error": None,
    }
    if rt.sweeper is not None:  # this process's sweeper (`run`); a `worker` runs its own
        swept = rt.sweeper.last_swept
        sweeper.update(
            running=rt.sweeper.running,
            last_pass=rt.sweeper.last_pass,
            last_counts=None if swept is None else {**swept.as_json(), "errors": len(swept.errors)},
            last_error=rt.sweeper.last_error,
        )
    healthy = (
        database["ok"]
        and chain_info["ok"]
        and bool(chain_info.get("contracts"))
        and (writer["running"] or not writer["pending"])
    )
    body = {
        "status": "ok" if healthy else "degraded",
        "database": database,
        "chain": chain_info,
        "writer": writer,
        "custodial_writers": custodial,
        "trade_sweeper": sweeper,
    }
    return jsonify(body), 200


def chain_failure(exc: Exception) -> str:
    """What the public may see of a chain failure: its kind in words, no URL or path."""
    if isinstance(exc, chain.ChainStateLocked):
        return "the embedded chain is open in another process"
    if isinstance(exc, chain.ChainConfigError):
        return "the chain is misconfigured: see the server log or `provenance-api chain status`"
    if isinstance(exc, chain.ChainUnavailable):
        return "the chain node does not answer"
    return "the chain could not be read: see the server log"
