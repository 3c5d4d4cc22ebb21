"""Arbiters: organizations of kind arbiter in TradeEscrow's registry, with public profiles.

An arbiter registers on-chain with `registerArbiter(profileURI)`, the URI being its public
profile here (GET /v1/arbiters/<id>): the API signs for a custodial arbiter, or builds the
transaction for one that holds its own key. Ties (declared by the arbiter, or flagged by an
operator with a reason) each owe the operator's `setTie(arbiter, party, true)`, so the
contract never proposes or accepts it in that party's trades.
"""

from __future__ import annotations

from datetime import UTC, datetime

from provenance_api.models import Arbiter, ArbiterTie, Organization, OrgKind
from provenance_api.schemas import (
    ArbiterCreate,
    ArbiterList,
    ArbiterPublic,
    ArbiterRegistered,
    ArbiterTieCreate,
    ArbiterTiePublic,
    TransactionToSign,
)
from provenance_api.services.errors import Conflict, InvalidInput, NotFound
from provenance_api.services.ports import EscrowReader, UnitOfWork

ESCROW = "TradeEscrow"
LIST_LIMIT = 200
DECLARED = "declared by the arbiter"


def profile_uri(base_url: str, arbiter_id: int) -> str:
    """Where the arbiter's profile is published: the registry's profileURI."""
    return f"{base_url.rstrip('/')}/v1/arbiters/{arbiter_id}"


def register_key(address: str) -> str:
    """The idempotency key of the arbiter's registerArbiter write."""
    return f"arbiter:{address}:register"


def tie_key(arbiter_id: int, organization_id: int) -> str:
    """The idempotency key of the operator's setTie write for this pair."""
    return f"arbiter:{arbiter_id}:tie:{organization_id}"


def register(
    uow: UnitOfWork,
    escrow: EscrowReader,
    organization_id: int,
    data: ArbiterCreate,
    base_url: str,
) -> tuple[ArbiterRegistered, bool]:
    """Register the caller as an arbiter; whether a write was owed (custodial) or a tx built."""
    with uow:
        org = _organization(uow, organization_id)
        if org.kind != OrgKind.ARBITER:
            raise InvalidInput("only an arbiter organization registers", {"kind": "not arbiter"})
        if uow.arbiters.by_organization(organization_id) is not None:
            raise Conflict("your organization is registered already", {"display_name": "exists"})
        arbiter = uow.arbiters.add(
            Arbiter(
                organization_id=organization_id,
                address=org.address,
                display_name=data.display_name,
                profile=data.profile.model_dump(),
                register_write_key=register_key(org.address),
            )
        )
        assert arbiter.id is not None
        uri = profile_uri(base_url, arbiter.id)
        transactions = _sign_or_build(
            uow,
            escrow,
            org,
            "registerArbiter",
            [uri],
            arbiter.register_write_key,
            "register as an arbiter",
        )
        for tied in dict.fromkeys(data.ties):
            _tie(uow, arbiter, tied, DECLARED, "ties")
        public = _public(uow, arbiter, base_url)
        uow.commit()
    return ArbiterRegistered(arbiter=public, transactions=transactions), not transactions


def flag_tie(
    uow: UnitOfWork, arbiter_id: int, data: ArbiterTieCreate, base_url: str
) -> ArbiterPublic:
    """An operator flags the arbiter as tied to an organization, with a reason."""
    with uow:
        arbiter = uow.arbiters.get(arbiter_id)
        if arbiter is None:
            raise NotFound(f"no arbiter {arbiter_id}", {"arbiter_id": "not found"})
        _tie(uow, arbiter, data.organization_id, data.reason, "organization_id")
        public = _public(uow, arbiter, base_url)
        uow.commit()
    return public


def retire(
    uow: UnitOfWork, escrow: EscrowReader, organization_id: int, base_url: str
) -> tuple[ArbiterRegistered, bool]:
    """The caller leaves the registry for good (retireArbiter); trades it rules on go on."""
    with uow:
        org = _organization(uow, organization_id)
        arbiter = uow.arbiters.by_organization(organization_id)
        if arbiter is None:
            raise NotFound("your organization is not a registered arbiter")
        if arbiter.retired_at is not None:
            raise Conflict("you retired already", {"arbiter": "retired"})
        arbiter.retired_at = datetime.now(UTC)
        uow.arbiters.add(arbiter)
        key = f"arbiter:{org.address}:retire"
        transactions = _sign_or_build(
            uow, escrow, org, "retireArbiter", [], key, "leave the registry"
        )
        public = _public(uow, arbiter, base_url)
        uow.commit()
    return ArbiterRegistered(arbiter=public, transactions=transactions), not transactions


def list_arbiters(uow: UnitOfWork, base_url: str) -> ArbiterList:
    """The arbiters not retired, by id (public)."""
    with uow:
        return ArbiterList(
            items=[_public(uow, arbiter, base_url) for arbiter in uow.arbiters.listed(LIST_LIMIT)]
        )


def get_arbiter(uow: UnitOfWork, arbiter_id: int, base_url: str) -> ArbiterPublic:
    """One arbiter's public profile (retired ones too: trades name them)."""
    with uow:
        arbiter = uow.arbiters.get(arbiter_id)
        if arbiter is None:
            raise NotFound(f"no arbiter {arbiter_id}", {"arbiter_id": "not found"})
        return _public(uow, arbiter, base_url)


def _tie(uow: UnitOfWork, arbiter: Arbiter, organization_id: int, reason: str, name: str) -> None:
    assert arbiter.id is not None
    party = uow.organizations.get(organization_id)
    if party is None:
        raise NotFound(f"no organization {organization_id}", {name: "not found"})
    if party.id == arbiter.organization_id:
        raise InvalidInput("an arbiter is not tied to itself", {name: "the arbiter itself"})
    if any(tie.organization_id == organization_id for tie in uow.arbiters.ties(arbiter.id)):
        raise Conflict(
            f"the arbiter is tied to organization {organization_id} already", {name: "tied already"}
        )
    uow.arbiters.add_tie(
        ArbiterTie(arbiter_id=arbiter.id, organization_id=organization_id, reason=reason)
    )
    uow.ledger.owe(
        contract=ESCROW,
        function="setTie",
        args=[arbiter.address, party.address, True],
        idempotency_key=tie_key(arbiter.id, organization_id),
    )


def _sign_or_build(
    uow: UnitOfWork,
    escrow: EscrowReader,
    org: Organization,
    function: str,
    args: list,
    key: str,
    description: str,
) -> list[TransactionToSign]:
    if org.encrypted_key is not None:
        uow.ledger.owe(
            contract=ESCROW, function=function, args=args, idempotency_key=key, sender=org.address
        )
        return []
    data = escrow.calldata(ESCROW, function, args)
    return [
        TransactionToSign(
            to=escrow.address,
            data=data,
            value="0",
            chain_id=escrow.chain_id,
            description=description,
        )
    ]


def _organization(uow: UnitOfWork, organization_id: int) -> Organization:
    found = uow.organizations.get(organization_id)
    if found is None:
        raise NotFound(f"no organization {organization_id}")
    return found


def _public(uow: UnitOfWork, arbiter: Arbiter, base_url: str) -> ArbiterPublic:
    assert arbiter.id is not None
    key = arbiter.register_write_key
    state = uow.ledger.states([key]).get(key)
    return ArbiterPublic(
        id=arbiter.id,
        organization_id=arbiter.organization_id,
        address=arbiter.address,
        display_name=arbiter.display_name,
        profile=dict(arbiter.profile),
        profile_uri=profile_uri(base_url, arbiter.id),
        registered=state.value if state is not None else "self-signed",
        created_at=arbiter.created_at,
        retired_at=arbiter.retired_at,
        ties=[
            ArbiterTiePublic(
                organization_id=tie.organization_id, reason=tie.reason, created_at=tie.created_at
            )
            for tie in uow.arbiters.ties(arbiter.id)
        ],
    )
