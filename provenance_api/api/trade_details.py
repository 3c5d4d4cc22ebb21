"""/v1/trades/<id>/details: a trade's personal data, for its parties and its accepted arbiter.

Everything here is logged per access (services.trade_details). Answers carry
`Cache-Control: no-store`: personal data is not for shared caches or the browser's disk.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from flask import Response, current_app

from provenance_api.api.deps import runtime
from provenance_api.api.frame import Answer, answer, blueprint, caller
from provenance_api.api.frame import unit_of_work as new_unit_of_work
from provenance_api.api.trades import escrow_reader
from provenance_api.escrow_chain import EscrowChain
from provenance_api.models import Trade
from provenance_api.schemas import (
    ErrorBody,
    LegalHoldCreate,
    LegalHoldPublic,
    TradeAccessLog,
    TradeDetailsExport,
    TradeDetailsPublic,
    TradeErasure,
    TradePath,
    TradeRecordCreate,
    TradeRecordPath,
    TradeRecordPublic,
)
from provenance_api.services import trade_details, trades
from provenance_api.services.errors import Forbidden
from provenance_api.services.ports import UnitOfWork
from provenance_api.services.trade_details import TradeChain

log = logging.getLogger(__name__)

bp = blueprint(
    "trade_details",
    "A trade's personal data: sealed under the trade's own key, read by its parties and its "
    "accepted arbiter only, every access logged, erasable after settlement.",
)
# app.extensions key of a factory of the TradeChain (tests put a fake there).
CHAIN_EXTENSION = "provenance.trade_chain"
# GET routes that write, so take SQLite's write lock from BEGIN (app._writes): each logs its
# access, and refreshes the trade's cached state.
WRITING_READS = frozenset(
    {
        "trade_details.get_trade_details",
        "trade_details.get_trade_record_content",
        "trade_details.export_trade_details",
        "trade_details.get_trade_access_log",
    }
)
READ_ERRORS = {404: ErrorBody, 410: ErrorBody}
EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "application/pdf": "pdf",
    "text/plain": "txt",
}


@bp.after_request
def no_store(response: Response) -> Response:
    """Personal data stays out of caches."""
    response.headers["Cache-Control"] = "no-store"
    return response


class EscrowTradeChain:
    """TradeChain over TradeEscrow: services.trades' refresh, and the escrow's status.

    The escrow is looked up only when a party or an arbiter asks; before the contracts are
    deployed, or when the chain cannot be read, the cache stays as it is (it refuses).
    """

    def __init__(self) -> None:
        self._escrow: EscrowChain | None = None
        self._looked = False

    def _reader(self) -> EscrowChain | None:
        if not self._looked:
            self._looked = True
            try:
                self._escrow = escrow_reader()
            except Exception:  # not deployed, or no chain: decide on the cache
                log.warning("trade details: TradeEscrow unavailable", exc_info=True)
        return self._escrow

    def refresh(self, uow: UnitOfWork, trade: Trade) -> None:
        """services.trades.refresh, unless the chain cannot be read."""
        escrow = self._reader()
        if escrow is None:
            return
        try:
            trades.refresh(uow, escrow, trade)
        except Exception:  # a stale cache refuses; a 500 would tell nothing more
            log.warning("trade %s: refresh failed", trade.id, exc_info=True)

    def arbiter_candidates(self, trade: Trade) -> frozenset[str]:
        """From `statusOf`: the proposed or appointed arbiter and each party's choice."""
        escrow = self._reader()
        if escrow is None or trade.chain_trade_id is None:
            return frozenset()
        if trade.escrow_address.lower() != escrow.address.lower():
            return frozenset()  # a trade of an earlier escrow
        try:
            status = escrow.status(trade.chain_trade_id)
        except Exception:  # a refusal as a stranger (404) beats a 500: both refuse
            log.warning("trade %s: escrow status unavailable", trade.id, exc_info=True)
            return frozenset()
        chosen = (status.arbiter, status.buyer_choice, status.seller_choice)
        return frozenset(a.lower() for a in chosen if int(a, 16) != 0)


def _chain() -> TradeChain:
    """The app's TradeChain: EscrowReader unless the composition root set another."""
    factory = current_app.extensions.get(CHAIN_EXTENSION)
    return factory() if factory is not None else EscrowTradeChain()


def _now() -> datetime:
    return datetime.now(UTC)


@bp.post(
    "/trades/<int:trade_id>/details",
    responses={201: TradeRecordPublic, 404: ErrorBody, 409: ErrorBody, 410: ErrorBody},
)
def add_trade_record(path: TradePath, body: TradeRecordCreate) -> Answer:
    """Add a record to the trade's details: the caller's contact details, a message, a photo or
    evidence. Sealed under the trade's own key; its hash is recorded on-chain by the service.

    409 before the trade is open on-chain and after it settled.
    """
    record = trade_details.add_record(
        new_unit_of_work(),
        runtime().trade_keys,
        _chain(),
        caller().organization_id,
        path.trade_id,
        body,
        _now(),
    )
    return answer(record, 201)


@bp.get("/trades/<int:trade_id>/details", responses={200: TradeDetailsPublic, **READ_ERRORS})
def get_trade_details(path: TradePath) -> Answer:
    """Every record of the trade's details, decrypted (photos and PDFs by `content_url`).

    For the two parties and, once both accepted it, the arbiter. The read is logged.
    """
    details = trade_details.read_details(
        new_unit_of_work(),
        runtime().trade_keys,
        _chain(),
        caller().organization_id,
        path.trade_id,
        _now(),
    )
    return answer(details)


@bp.get(
    "/trades/<int:trade_id>/details/<int:sequence>/content",
    responses={200: None, **READ_ERRORS, 409: ErrorBody},
)
def get_trade_record_content(path: TradeRecordPath) -> Response:
    """One record's content as its own type (a photo, a PDF), as an attachment. Logged."""
    content_type, content = trade_details.read_content(
        new_unit_of_work(),
        runtime().trade_keys,
        _chain(),
        caller().organization_id,
        path.trade_id,
        path.sequence,
        _now(),
    )
    name = f"trade-{path.trade_id}-{path.sequence}.{EXTENSIONS.get(content_type, 'bin')}"
    response = Response(content, status=200, content_type=content_type)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get(
    "/trades/<int:trade_id>/details/export", responses={200: TradeDetailsExport, 404: ErrorBody}
)
def export_trade_details(path: TradePath) -> Answer:
    """Everything the caller may read of the trade's details, files inline, with the access
    log, as one JSON document. Logged. After erasure: what was kept, without content."""
    export = trade_details.export_details(
        new_unit_of_work(),
        runtime().trade_keys,
        _chain(),
        caller().organization_id,
        path.trade_id,
        _now(),
    )
    return answer(export)


@bp.delete(
    "/trades/<int:trade_id>/details",
    responses={200: TradeErasure, 404: ErrorBody, 409: ErrorBody},
)
def erase_trade_details(path: TradePath) -> Answer:
    """Erase the trade's details for good: its key and every ciphertext are destroyed.

    A party only, once the trade is settled and any legal hold has passed (409 before).
    The access log and the hash on-chain stay. Erasing again answers the first erasure.
    """
    erasure = trade_details.erase_details(
        new_unit_of_work(), _chain(), caller().organization_id, path.trade_id, _now()
    )
    return answer(erasure)


@bp.get("/trades/<int:trade_id>/access-log", responses={200: TradeAccessLog, 404: ErrorBody})
def get_trade_access_log(path: TradePath) -> Answer:
    """Who read, exported, wrote or erased the trade's details, and who was refused, when."""
    entries = trade_details.access_log(
        new_unit_of_work(), _chain(), caller().organization_id, path.trade_id, _now()
    )
    return answer(entries)


@bp.put(
    "/trades/<int:trade_id>/legal-hold",
    responses={200: LegalHoldPublic, 404: ErrorBody, 409: ErrorBody},
)
def set_trade_legal_hold(path: TradePath, body: LegalHoldCreate) -> Answer:
    """Keep the trade's details from erasure until `until` (operators; reads nothing)."""
    who = caller()
    if who.organization_id is not None:
        raise Forbidden("legal holds are set by operators")
    hold = trade_details.set_legal_hold(
        new_unit_of_work(), who.owner.id, path.trade_id, body, _now()
    )
    return answer(hold)
