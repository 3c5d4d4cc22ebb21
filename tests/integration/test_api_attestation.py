"""GET /v1/verify signs its verdict with the operator key of the deployed CustodyLedger."""

from __future__ import annotations

from sqlmodel import Session

from contracts_abi import eip712
from provenance_api import chain
from provenance_api.chain.roles import is_operator
from provenance_api.services.deployments import known_addresses
from provenance_api.unit_of_work import SqlUnitOfWork
from tests.integration.api_support import Api
from tests.integration.events_support import make_world
from tests.integration.test_chain_writer import make_app


def _verdict(answer: dict) -> eip712.TagVerdict:
    reasons = [(r["code"], r["message"]) for r in answer["reasons"]]
    return eip712.TagVerdict(
        gtin=answer["gtin"],
        serial=answer["serial"],
        tag_kind=answer["tag_kind"],
        verdict=answer["verdict"],
        reasons_hash=eip712.reasons_hash(reasons),
        checked_at=int(answer["attestation"]["checked_at"]),
    )


def test_the_verdict_is_signed_by_the_ledgers_operator(tmp_path):
    app, rt = make_app(tmp_path)  # the embedded chain, contracts deployed
    try:
        world = make_world(Api(app, lambda: SqlUnitOfWork(rt.engine)), items=1)
        answer = world.api.call("GET", "/v1/verify", query_string={"url": world.tap(1)})
        assert answer.status_code == 200, answer.get_json()
        body = answer.get_json()
        attestation = body["attestation"]
        with Session(rt.engine) as session:
            ledger = known_addresses(session, rt.w3.eth.chain_id)["CustodyLedger"]
        assert (attestation["chain_id"], attestation["ledger"]) == (rt.w3.eth.chain_id, ledger)
        assert attestation["signer"] == rt.operator.address
        signer = eip712.recover_tag_verdict_signer(
            bytes.fromhex(attestation["signature"][2:]),
            _verdict(body),
            chain_id=attestation["chain_id"],
            ledger=ledger,
        )
        assert signer == rt.operator.address
        assert is_operator(chain.contract(rt.w3, "CustodyLedger", ledger), signer)
        # Its signed fields are the answer's own.
        assert attestation["reasons_hash"] == "0x" + _verdict(body).reasons_hash.hex()
        assert (attestation["verdict"], attestation["gtin"], attestation["serial"]) == (
            body["verdict"],
            body["gtin"],
            body["serial"],
        )
    finally:
        rt.close()


def test_without_a_deployed_ledger_the_verdict_is_unsigned_not_refused(api):
    world = make_world(api, items=1)
    answer = world.api.call("GET", "/v1/verify", query_string={"url": world.tap(1)})
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["verdict"] == "authentic"
    assert answer.get_json()["attestation"] is None
