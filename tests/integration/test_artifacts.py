"""The committed artifacts are exactly what the pinned compiler makes of the sources."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from web3 import EthereumTesterProvider, Web3

from contracts_abi import ARTIFACT_NAMES, CONTRACT_NAMES, UnknownContract, load_artifact
from tests.conftest import unavailable

CONTRACTS_ABI = Path(__file__).resolve().parents[2] / "contracts_abi"
ARTIFACTS = CONTRACTS_ABI / "artifacts"
# Test-only contracts (hostile escrow parties), built by the same run, never packaged.
TEST_ARTIFACTS = CONTRACTS_ABI.parent / "tests" / "contracts" / "artifacts"


def build(out: Path, test_out: Path) -> None:
    node = shutil.which("node")
    if node is None:
        unavailable("node is not installed")
    if not (CONTRACTS_ABI / "node_modules" / "solc").exists():
        unavailable("contracts_abi/node_modules is missing (run npm ci in contracts_abi)")
    result = subprocess.run(
        [node, "build.mjs", "--out", str(out), "--test-out", str(test_out)],
        cwd=CONTRACTS_ABI,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
def test_rebuild_is_byte_identical(tmp_path: Path) -> None:
    build(tmp_path / "package", tmp_path / "test")
    for out, committed in ((tmp_path / "package", ARTIFACTS), (tmp_path / "test", TEST_ARTIFACTS)):
        built = sorted(p.name for p in out.iterdir())
        assert built == sorted(p.name for p in committed.glob("*.json"))
        for name in built:
            assert (out / name).read_bytes() == (committed / name).read_bytes(), name
    assert sorted(p.name for p in ARTIFACTS.glob("*.json")) == sorted(
        f"{name}.json" for name in ARTIFACT_NAMES
    )


def test_artifact_files_are_canonical() -> None:
    for path in [*ARTIFACTS.glob("*.json"), *TEST_ARTIFACTS.glob("*.json")]:
        text = path.read_text("utf-8")
        data = json.loads(text)
        assert list(data) == [
            "contractName",
            "abi",
            "bytecode",
            "deployedBytecode",
            "compiler",
            "sourcesHash",
        ]
        assert text == json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        assert data["compiler"]["settings"]["evmVersion"] == "prague"
        assert data["compiler"]["settings"]["optimizer"] == {"enabled": True, "runs": 200}


@pytest.mark.parametrize("name", ARTIFACT_NAMES)
def test_load_artifact(name: str) -> None:
    artifact = load_artifact(name)
    assert artifact.name == name
    assert artifact.compiler_version.startswith("0.8.37+commit.")
    assert len(artifact.sources_hash) == 64
    int(artifact.sources_hash, 16)
    assert artifact.bytecode and artifact.deployed_bytecode
    assert artifact.bytecode.endswith(artifact.deployed_bytecode[-64:])
    assert load_artifact(name) is artifact
    assert any(item.get("name") == "OPERATOR_ROLE" for item in artifact.abi)


def test_load_unknown_artifact() -> None:
    with pytest.raises(UnknownContract, match="Nope"):
        load_artifact("Nope")


def test_error_codec_round_trips() -> None:
    artifact = load_artifact("CustodyLedger")
    root = bytes(range(32))
    data = artifact.encode_error("LedgerUnknownRoot", root)
    # keccak256("LedgerUnknownRoot(bytes32)")[:4]
    assert data[:4] == bytes.fromhex("fe97dedd")
    assert artifact.decode_error(data) == ("LedgerUnknownRoot", (root,))
    assert artifact.decode_error(b"\xde\xad\xbe\xef") is None


def test_deployed_code_matches_artifact() -> None:
    w3 = Web3(EthereumTesterProvider())
    admin, operator = w3.eth.accounts[:2]
    artifact = load_artifact("CustodyLedger")
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    receipt = w3.eth.wait_for_transaction_receipt(
        factory.constructor(admin, operator).transact({"from": operator})
    )
    # CustodyLedger has no immutables, so the runtime code is the artifact's byte for byte.
    assert bytes(w3.eth.get_code(receipt.contractAddress)) == artifact.deployed_bytecode


@pytest.mark.anvil
def test_artifacts_deploy_on_anvil(anvil_url: str) -> None:
    w3 = Web3(Web3.HTTPProvider(anvil_url))
    admin, operator = w3.eth.accounts[:2]
    addresses: dict[str, str] = {}
    for name in ARTIFACT_NAMES:
        artifact = load_artifact(name)
        factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        # TradeEscrow comes after the two it uses: constructor(admin, operator, passport, ledger).
        extra = [addresses[used] for used in CONTRACT_NAMES] if name == "TradeEscrow" else []
        tx = factory.constructor(admin, operator, *extra).transact({"from": operator})
        receipt = w3.eth.wait_for_transaction_receipt(tx, timeout=10)
        assert receipt.status == 1, name
        addresses[name] = receipt.contractAddress
        contract = w3.eth.contract(address=receipt.contractAddress, abi=artifact.abi)
        role = contract.functions.OPERATOR_ROLE().call()
        assert contract.functions.hasRole(role, operator).call(), name
        assert not contract.functions.hasRole(role, admin).call(), name
        assert contract.functions.hasRole(b"\x00" * 32, admin).call(), name
