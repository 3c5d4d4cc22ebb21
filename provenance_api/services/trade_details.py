"""A trade's personal data: sealed records only its parties and accepted arbiter read, logged.

Who may read a trade's details: its seller, its buyer, and the arbiter both accepted
(`trade.arbiter_organization_id`, set only once both parties accepted it). Nobody else: a
stranger or an operator is answered 404 (not told the trade exists); an arbiter the chain
proposed or one party chose, but not both, is answered 403 and the refusal is logged.

Every read, export, write and erasure is logged in the same transaction as the access. Each
added record extends the details hash chain (trade_vault) and owes the operator's
`TradeEscrow.recordDetails(chain_trade_id, hash)`. A party may erase the details once the trade
is settled and any legal hold has passed: the trade's key and every ciphertext are destroyed;
the access log, each record's digest and the hash on-chain stay.

Access rules read the trade's cached chain state (`state`, `arbiter_organization_id`), refreshed
from the chain first (services.trades.refresh, for parties and arbiters only); a cache the chain
could not refresh refuses (a new arbiter not yet seen, a settlement not yet seen), never admits.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from datetime import UTC, datetime
from typing import Protocol

from contracts_abi import ESCROW_NAME
from provenance_api import trade_vault
from provenance_api.models import (
    Organization,
    OrgKind,
    Trade,
    TradeAccess,
    TradeAccessAction,
    TradeKey,
    TradeLegalHold,
    TradeRecord,
    TradeRecordKind,
    TradeRole,
    TradeState,
)
from provenance_api.schemas import (
    TRADE_FILE_MAX_BYTES,
    TRADE_TEXT_MAX_BYTES,
    LegalHoldCreate,
    LegalHoldPublic,
    TradeAccessLog,
    TradeAccessPublic,
    TradeContactDetails,
    TradeDetailsExport,
    TradeDetailsPublic,
    TradeErasure,
    TradeRecordCreate,
    TradeRecordPublic,
)
from provenance_api.services.errors import Conflict, Forbidden, Gone, InvalidInput, NotFound
from provenance_api.services.ports import UnitOfWork
from provenance_api.trade_vault import KeyWrapper

DETAILS_TYPE = "application/json"
TEXT_TYPE = "text/plain"
PHOTO_TYPES = frozenset({"image/jpeg", "image/png"})
# A file's first bytes, so that what is stored as a PDF or a PNG is one (served with its type).
MAGIC = {
    "image/jpeg": b"\xff\xd8\xff",
    "image/png": b"\x89PNG\r\n\x1a\n",
    "application/pdf": b"%PDF-",
}
# Writers of one trade queue on its row lock (PostgreSQL) or the write lock (SQLite); should a
# concurrent record still take the next sequence first, the retry reads the one after it.
ATTEMPTS = 5


class TradeChain(Protocol):
    """What the chain says about a trade: its cached state refreshed, and who may arbitrate.

    The real adapter (api/trade_details.py) reads TradeEscrow through services.trades.
    """

    def refresh(self, uow: UnitOfWork, trade: Trade) -> None:
        """Read the trade's state from the chain into its cached columns (not committed);
        leave them as they are when the chain cannot be read (a stale cache refuses)."""
        ...

    def arbiter_candidates(self, trade: Trade) -> frozenset[str]:
        """Lower-case addresses of the arbiter proposed in `trade` and of each party's choice,
        as the chain says now; empty when unknown."""
        ...


class _Clash(Exception):
    """A concurrent record took the same sequence, or the trade's first key, first."""


def details_write_key(trade_id: int, sequence: int) -> str:
    """Idempotency key of the operator's `recordDetails` write after record `sequence`."""
    return f"trade-details:{trade_id}:{sequence}"


def add_record(
    uow: UnitOfWork,
    wrapper: KeyWrapper,
    chain: TradeChain,
    organization_id: int | None,
    trade_id: int,
    data: TradeRecordCreate,
    now: datetime,
) -> TradeRecordPublic:
    """Seal one record into the trade's details and owe its hash on-chain."""
    kind, content_type, plaintext = _payload(data)
    for _ in range(ATTEMPTS):
        try:
            return _add_once(
                uow, wrapper, chain, organization_id, trade_id, kind, content_type, plaintext, now
            )
        except _Clash:
            continue
    raise Conflict(
        f"records were added to trade {trade_id} concurrently; send this one again",
        {"trade_id": "records added concurrently"},
    )


def _add_once(
    uow: UnitOfWork,
    wrapper: KeyWrapper,
    chain: TradeChain,
    organization_id: int | None,
    trade_id: int,
    kind: TradeRecordKind,
    content_type: str,
    plaintext: bytes,
    now: datetime,
) -> TradeRecordPublic:
    with uow:
        trade, role = _reader(uow, chain, organization_id, trade_id, now, lock=True)
        assert organization_id is not None
        if kind is TradeRecordKind.DETAILS and role is TradeRole.ARBITER:
            raise InvalidInput(
                "details are a party's own contact and delivery details; an arbiter adds "
                "messages or evidence",
                {"kind": "details are for the parties"},
            )
        if trade.state in (TradeState.SETTLED, TradeState.FAILED):
            raise Conflict(
                f"trade {trade_id} is {trade.state}: no records can be added any more",
                {"trade_id": f"trade is {trade.state}"},
            )
        if trade.chain_trade_id is None:
            raise Conflict(
                f"trade {trade_id} is not open on-chain yet, so its details hash cannot be "
                "recorded; try again once it is",
                {"trade_id": "not open on-chain yet"},
            )
        data_key = _data_key_for_writing(uow, wrapper, trade_id, now)
        last = uow.trade_details.last_record(trade_id)
        sequence = last.sequence + 1 if last is not None else 1
        previous = bytes(last.details_hash) if last is not None else trade_vault.ZERO_HASH
        nonce = secrets.token_bytes(trade_vault.NONCE_BYTES)
        ciphertext = trade_vault.seal_record(
            data_key,
            nonce,
            trade_id=trade_id,
            sequence=sequence,
            kind=trade_vault.Kind(kind.value),
            content_type=content_type,
            plaintext=plaintext,
        )
        digest = trade_vault.ciphertext_digest(nonce, ciphertext)
        details_hash = trade_vault.next_hash(previous, digest, sequence)
        record = TradeRecord(
            trade_id=trade_id,
            sequence=sequence,
            author_organization_id=organization_id,
            author_role=role.value,
            kind=kind.value,
            content_type=content_type,
            nonce=nonce,
            ciphertext=ciphertext,
            size=len(plaintext),
            digest=digest,
            details_hash=details_hash,
            created_at=now,
        )
        try:
            uow.trade_details.add_record(record)
        except Conflict:
            raise _Clash from None
        trade.details_hash = "0x" + details_hash.hex()
        trade.updated_at = now
        uow.trades.add(trade)
        # Each hash replaces the one before on-chain: the writes go in order, so that a retried
        # earlier one never lands after a later one.
        uow.ledger.owe(
            contract=ESCROW_NAME,
            function="recordDetails",
            args=[trade.chain_trade_id, details_hash],
            idempotency_key=details_write_key(trade_id, sequence),
            after=details_write_key(trade_id, sequence - 1) if sequence > 1 else None,
        )
        _log(uow, trade_id, organization_id, role, TradeAccessAction.WRITE, now, sequence)
        try:
            uow.commit()
        except Conflict:
            raise _Clash from None
        return _public(trade_id, record, plaintext)


def read_details(
    uow: UnitOfWork,
    wrapper: KeyWrapper,
    chain: TradeChain,
    organization_id: int | None,
    trade_id: int,
    now: datetime,
) -> TradeDetailsPublic:
    """Every record of the trade, decrypted; the read is logged."""
    with uow:
        trade, role = _reader(uow, chain, organization_id, trade_id, now)
        assert organization_id is not None
        records = _open_all(uow, wrapper, trade_id, files_inline=False)
        _log(uow, trade_id, organization_id, role, TradeAccessAction.READ, now)
        uow.commit()
        return TradeDetailsPublic(
            trade_id=trade_id, role=role.value, details_hash=trade.details_hash, records=records
        )


def read_content(
    uow: UnitOfWork,
    wrapper: KeyWrapper,
    chain: TradeChain,
    organization_id: int | None,
    trade_id: int,
    sequence: int,
    now: datetime,
) -> tuple[str, bytes]:
    """One record's content type and bytes (a photo, a PDF); the read is logged."""
    with uow:
        _, role = _reader(uow, chain, organization_id, trade_id, now)
        assert organization_id is not None
        data_key = _data_key_for_reading(uow, wrapper, trade_id)
        record = next(
            (r for r in uow.trade_details.records(trade_id) if r.sequence == sequence), None
        )
        if record is None:
            raise NotFound(
                f"trade {trade_id} has no record {sequence}", {"sequence": "no such record"}
            )
        plaintext = _open(data_key, record)
        if plaintext is None:
            raise Conflict(
                f"record {sequence} of trade {trade_id} is damaged: it does not open",
                {"sequence": "damaged"},
            )
        _log(uow, trade_id, organization_id, role, TradeAccessAction.READ, now, sequence)
        uow.commit()
        return record.content_type, plaintext


def export_details(
    uow: UnitOfWork,
    wrapper: KeyWrapper,
    chain: TradeChain,
    organization_id: int | None,
    trade_id: int,
    now: datetime,
) -> TradeDetailsExport:
    """Everything the caller may read (files inline) and the access log, as one document.

    After erasure the records come without content: what remains is what was kept.
    """
    with uow:
        trade, role = _reader(uow, chain, organization_id, trade_id, now)
        assert organization_id is not None
        key = uow.trade_details.key(trade_id)
        erased_at = key.erased_at if key is not None else None
        if erased_at is None:
            records = _open_all(uow, wrapper, trade_id, files_inline=True)
        else:
            records = [
                _public(trade_id, r, None).model_copy(update={"intact": False})
                for r in uow.trade_details.records(trade_id)
            ]
        _log(uow, trade_id, organization_id, role, TradeAccessAction.EXPORT, now)
        log = [_access(entry) for entry in uow.trade_details.access_log(trade_id)]
        uow.commit()
        return TradeDetailsExport(
            trade_id=trade_id,
            role=role.value,
            exported_at=now,
            erased_at=erased_at,
            details_hash=trade.details_hash,
            records=records,
            access_log=log,
        )


def erase_details(
    uow: UnitOfWork,
    chain: TradeChain,
    organization_id: int | None,
    trade_id: int,
    now: datetime,
) -> TradeErasure:
    """Destroy the trade's key and ciphertexts (a party; settled; no legal hold). Idempotent."""
    with uow:
        # Locked as a writer locks it: a record being added finishes first, then is erased too.
        trade, role = _reader(uow, chain, organization_id, trade_id, now, lock=True)
        assert organization_id is not None
        if role is TradeRole.ARBITER:
            raise Forbidden(
                "only the trade's parties may erase its details", {"trade_id": "not a party"}
            )
        key = uow.trade_details.key(trade_id)
        records = uow.trade_details.records(trade_id)
        if key is None or key.erased_at is None:
            if trade.state != TradeState.SETTLED:
                raise Conflict(
                    f"trade {trade_id} is {trade.state}, not settled: its details can be "
                    "erased once it settles",
                    {"trade_id": "not settled"},
                )
            hold = _aware(trade.legal_hold_until)
            if hold is not None and hold > now:
                raise Conflict(
                    f"trade {trade_id} is under a legal hold until {hold.isoformat()}: its "
                    "details can be erased after that",
                    {"trade_id": "under a legal hold"},
                )
            uow.trade_details.erase(trade_id, now, organization_id)
            key = uow.trade_details.key(trade_id)
            assert key is not None and key.erased_at is not None
        _log(uow, trade_id, organization_id, role, TradeAccessAction.ERASE, now)
        uow.commit()
        erased_at = _aware(key.erased_at)
        assert erased_at is not None and key.erased_by_organization_id is not None
        return TradeErasure(
            trade_id=trade_id,
            erased_at=erased_at,
            erased_by_organization_id=key.erased_by_organization_id,
            records_erased=len(records),
            details_hash=trade.details_hash,
        )


def access_log(
    uow: UnitOfWork, chain: TradeChain, organization_id: int | None, trade_id: int, now: datetime
) -> TradeAccessLog:
    """Every access to the trade's details, for its parties and its accepted arbiter."""
    with uow:
        _reader(uow, chain, organization_id, trade_id, now)
        items = [_access(entry) for entry in uow.trade_details.access_log(trade_id)]
        return TradeAccessLog(trade_id=trade_id, items=items)


def set_legal_hold(
    uow: UnitOfWork, operator_id: int, trade_id: int, data: LegalHoldCreate, now: datetime
) -> LegalHoldPublic:
    """Keep the trade's details from erasure until `data.until` (an operator; reads nothing).

    The latest hold decides, so an operator can also shorten one.
    """
    until = data.until.astimezone(UTC)
    if until <= now:
        raise InvalidInput("a legal hold must end in the future", {"until": "in the past"})
    with uow:
        trade = uow.trades.get(trade_id)
        if trade is None:
            raise NotFound(f"no trade {trade_id}", {"trade_id": "no such trade"})
        key = uow.trade_details.key(trade_id)
        if key is not None and key.erased_at is not None:
            raise Conflict(
                f"trade {trade_id}'s details were already erased", {"trade_id": "erased"}
            )
        hold = TradeLegalHold(
            trade_id=trade_id,
            until=until,
            reason=data.reason,
            operator_id=operator_id,
            created_at=now,
        )
        uow.trade_details.add_hold(hold)
        trade.legal_hold_until = until
        trade.updated_at = now
        uow.trades.add(trade)
        uow.commit()
        return LegalHoldPublic(trade_id=trade_id, until=until, reason=data.reason, set_at=now)


# --- Who may read --------------------------------------------------------------------------


def _reader(
    uow: UnitOfWork,
    chain: TradeChain,
    organization_id: int | None,
    trade_id: int,
    now: datetime,
    *,
    lock: bool = False,
) -> tuple[Trade, TradeRole]:
    """The trade and the caller's role in it; 404 for strangers, 403 (logged) for an arbiter
    not accepted by both parties. With `lock`, the trade row is locked (writers queue)."""
    missing = NotFound(f"no trade {trade_id}", {"trade_id": "no such trade"})
    if organization_id is None:
        raise missing  # operators never read a trade's details
    trade = uow.trade_details.lock_trade(trade_id) if lock else uow.trades.get(trade_id)
    if trade is None:
        raise missing
    caller = uow.organizations.get(organization_id)
    parties = (trade.seller_organization_id, trade.buyer_organization_id)
    is_arbiter = caller is not None and caller.kind == OrgKind.ARBITER.value
    if organization_id not in parties and not is_arbiter:
        raise missing  # a stranger: the chain is not asked
    # The accepted arbiter and the settlement are read from the chain: the cache may lag.
    chain.refresh(uow, trade)
    if organization_id == trade.seller_organization_id:
        return trade, TradeRole.SELLER
    if organization_id == trade.buyer_organization_id:
        return trade, TradeRole.BUYER
    if trade.arbiter_organization_id is not None and organization_id == (
        trade.arbiter_organization_id
    ):
        return trade, TradeRole.ARBITER
    if _is_candidate(caller, trade, chain):
        _log(uow, trade_id, organization_id, TradeRole.ARBITER, TradeAccessAction.REFUSED, now)
        uow.commit()
        raise Forbidden(
            f"both parties of trade {trade_id} have not accepted you as its arbiter yet; its "
            "details open to you once they have",
            {"trade_id": "arbiter not accepted by both parties"},
        )
    raise missing


def _is_candidate(caller: Organization | None, trade: Trade, chain: TradeChain) -> bool:
    if caller is None or caller.kind != OrgKind.ARBITER.value or not caller.address:
        return False
    if trade.state not in (TradeState.DISPUTED, TradeState.ARBITRATION):
        return False
    return caller.address.lower() in chain.arbiter_candidates(trade)


# --- Keys and records ----------------------------------------------------------------------


def _data_key_for_writing(
    uow: UnitOfWork, wrapper: KeyWrapper, trade_id: int, now: datetime
) -> bytes:
    key = uow.trade_details.key(trade_id)
    if key is None:
        data_key = secrets.token_bytes(trade_vault.DATA_KEY_BYTES)
        wrapped = wrapper.wrap(data_key, trade_id, secrets.token_bytes(trade_vault.NONCE_BYTES))
        try:
            uow.trade_details.add_key(
                TradeKey(trade_id=trade_id, wrapped_key=wrapped, created_at=now)
            )
        except Conflict:
            raise _Clash from None  # a concurrent first record made the key: use that one
        return data_key
    return _unwrap(wrapper, key, trade_id)


def _data_key_for_reading(uow: UnitOfWork, wrapper: KeyWrapper, trade_id: int) -> bytes | None:
    """The trade's data key; None before any record; Gone once erased."""
    key = uow.trade_details.key(trade_id)
    if key is None:
        return None
    return _unwrap(wrapper, key, trade_id)


def _unwrap(wrapper: KeyWrapper, key: TradeKey, trade_id: int) -> bytes:
    if key.wrapped_key is None:
        erased = _aware(key.erased_at)
        when = erased.isoformat() if erased is not None else "earlier"
        raise Gone(
            f"the details of trade {trade_id} were erased ({when}): its key is destroyed",
            {"trade_id": "details erased"},
        )
    return wrapper.unwrap(key.wrapped_key, trade_id)


def _open_all(
    uow: UnitOfWork, wrapper: KeyWrapper, trade_id: int, *, files_inline: bool
) -> list[TradeRecordPublic]:
    data_key = _data_key_for_reading(uow, wrapper, trade_id)
    records = uow.trade_details.records(trade_id)
    public = []
    for record in records:
        plaintext = _open(data_key, record) if data_key is not None else None
        item = _public(trade_id, record, plaintext, files_inline=files_inline)
        if plaintext is None:
            item.intact = False
        public.append(item)
    return public


def _open(data_key: bytes | None, record: TradeRecord) -> bytes | None:
    if data_key is None or record.ciphertext is None:
        return None
    try:
        return trade_vault.open_record(
            data_key,
            record.nonce,
            trade_id=record.trade_id,
            sequence=record.sequence,
            kind=trade_vault.Kind(record.kind),
            content_type=record.content_type,
            ciphertext=record.ciphertext,
        )
    except trade_vault.RecordDoesNotOpen:
        return None


def _public(
    trade_id: int, record: TradeRecord, plaintext: bytes | None, *, files_inline: bool = False
) -> TradeRecordPublic:
    kind = TradeRecordKind(record.kind)
    created_at = _aware(record.created_at)
    assert created_at is not None
    public = TradeRecordPublic(
        sequence=record.sequence,
        kind=kind,
        content_type=record.content_type,
        author_organization_id=record.author_organization_id,
        author_role=record.author_role,
        size=record.size,
        created_at=created_at,
        details_hash="0x" + bytes(record.details_hash).hex(),
    )
    if plaintext is None:
        return public
    if kind is TradeRecordKind.DETAILS:
        public.details = TradeContactDetails.model_validate_json(plaintext)
    elif record.content_type == TEXT_TYPE:
        public.text = plaintext.decode()
    elif files_inline:
        public.data = base64.b64encode(plaintext).decode()
    else:
        public.content_url = f"/v1/trades/{trade_id}/details/{record.sequence}/content"
    return public


def _payload(data: TradeRecordCreate) -> tuple[TradeRecordKind, str, bytes]:
    """(kind, content type, plaintext) of a new record; InvalidInput names the bad field."""
    kind = data.kind
    given = {
        name
        for name in ("details", "text", "content_type", "data")
        if getattr(data, name) is not None
    }
    wanted = {
        TradeRecordKind.DETAILS: {"details"},
        TradeRecordKind.MESSAGE: {"text"},
        TradeRecordKind.PHOTO: {"content_type", "data"},
        TradeRecordKind.EVIDENCE: {"content_type", "data"},
    }[kind]
    for name in sorted(wanted - given):
        raise InvalidInput(f"a {kind} record needs {name}", {name: f"required for {kind}"})
    for name in sorted(given - wanted):
        raise InvalidInput(f"a {kind} record has no {name}", {name: f"not used for {kind}"})
    if kind is TradeRecordKind.DETAILS:
        assert data.details is not None
        fields = data.details.model_dump(exclude_none=True)
        if not fields:
            raise InvalidInput("details need at least one field", {"details": "empty"})
        for name, value in fields.items():
            _text_limit(str(value).encode(), f"details.{name}")
        plaintext = json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()
        _text_limit(plaintext, "details")
        return kind, DETAILS_TYPE, plaintext
    if kind is TradeRecordKind.MESSAGE:
        assert data.text is not None
        plaintext = data.text.encode()
        _text_limit(plaintext, "text")
        return kind, TEXT_TYPE, plaintext
    assert data.content_type is not None and data.data is not None
    content_type = data.content_type
    if kind is TradeRecordKind.PHOTO and content_type not in PHOTO_TYPES:
        raise InvalidInput(
            "a photo is image/jpeg or image/png", {"content_type": "not an image type"}
        )
    try:
        plaintext = base64.b64decode(data.data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("data is not base64", {"data": "not base64"}) from None
    if len(plaintext) > TRADE_FILE_MAX_BYTES:
        raise InvalidInput(
            f"a file is at most {TRADE_FILE_MAX_BYTES} bytes, not {len(plaintext)}",
            {"data": "too large"},
        )
    magic = MAGIC.get(content_type)
    if magic is not None and not plaintext.startswith(magic):
        raise InvalidInput(
            f"data is not {content_type}", {"data": f"does not start like {content_type}"}
        )
    if content_type == TEXT_TYPE:
        try:
            plaintext.decode()
        except UnicodeDecodeError:
            raise InvalidInput("text/plain data must be UTF-8", {"data": "not UTF-8"}) from None
        _text_limit(plaintext, "data")
    return kind, content_type, plaintext


def _text_limit(plaintext: bytes, field: str) -> None:
    if len(plaintext) > TRADE_TEXT_MAX_BYTES:
        raise InvalidInput(
            f"text is at most {TRADE_TEXT_MAX_BYTES} bytes of UTF-8, not {len(plaintext)}",
            {field: "too long"},
        )
    # Control characters other than tab and line breaks have no place in a message or an
    # address, and NUL or escape sequences would reach whoever displays or exports it.
    control = next((byte for byte in plaintext if byte < 0x20 and byte not in _TEXT_CONTROLS), None)
    if control is not None or 0x7F in plaintext:
        code = control if control is not None else 0x7F
        raise InvalidInput(
            f"text may not hold the control character U+{code:04X}",
            {field: "control character"},
        )


_TEXT_CONTROLS = frozenset(b"\t\n\r")


# --- The log -------------------------------------------------------------------------------


def _log(
    uow: UnitOfWork,
    trade_id: int,
    organization_id: int,
    role: TradeRole,
    action: TradeAccessAction,
    now: datetime,
    sequence: int | None = None,
) -> None:
    uow.trade_details.log(
        TradeAccess(
            trade_id=trade_id,
            organization_id=organization_id,
            role=role.value,
            action=action.value,
            record_sequence=sequence,
            at=now,
        )
    )


def _access(entry: TradeAccess) -> TradeAccessPublic:
    at = _aware(entry.at)
    assert at is not None
    return TradeAccessPublic(
        organization_id=entry.organization_id,
        role=entry.role,
        action=entry.action,
        record_sequence=entry.record_sequence,
        at=at,
    )


def _aware(when: datetime | None) -> datetime | None:
    """SQLite gives naive datetimes back: they were stored in UTC."""
    if when is None or when.tzinfo is not None:
        return when
    return when.replace(tzinfo=UTC)
