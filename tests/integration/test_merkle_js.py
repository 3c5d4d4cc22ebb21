"""contracts_abi.merkle against @openzeppelin/merkle-tree 1.0.8 (node) and on-chain MerkleProof."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path

import pytest
from eth_hash.auto import keccak
from web3 import EthereumTesterProvider, Web3

from contracts_abi import load_artifact
from contracts_abi.merkle import CUSTODY_LEAF_ENCODING, StandardMerkleTree, custody_tree
from tests.conftest import unavailable

CONTRACTS_ABI = Path(__file__).resolve().parents[2] / "contracts_abi"
SIZES = (1, 2, 3, 7, 100)
MIXED_ENCODING = ["address", "uint256", "string", "bytes32"]

# Reads [{encoding, values}] on stdin, writes [{tree, treeIndices, proofs}] on stdout.
NODE_SCRIPT = """
const { StandardMerkleTree } = require("@openzeppelin/merkle-tree");
let input = "";
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const out = JSON.parse(input).map(({ encoding, values }) => {
    const tree = StandardMerkleTree.of(values, encoding);
    const dump = tree.dump();
    return {
      tree: dump.tree,
      treeIndices: dump.values.map((v) => v.treeIndex),
      proofs: values.map((_, i) => tree.getProof(i)),
    };
  });
  process.stdout.write(JSON.stringify(out));
});
"""


def random_custody_values(rng: random.Random, count: int) -> list[list[bytes]]:
    """(event digest, salt) pairs."""
    return [[rng.randbytes(32), rng.randbytes(32)] for _ in range(count)]


def random_mixed_values(rng: random.Random, count: int) -> list[list[object]]:
    return [
        [
            "0x" + rng.randbytes(20).hex(),
            rng.getrandbits(rng.choice((8, 64, 256))),
            f"serial-{rng.getrandbits(32)}-é",
            rng.randbytes(32),
        ]
        for _ in range(count)
    ]


def js_value(value: object) -> object:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, int):
        return str(value)  # merkle-tree refuses JS numbers; decimal strings are exact
    return value


def run_node(sets: list[tuple[list[str], list[list[object]]]]) -> list[dict]:
    node = shutil.which("node")
    if node is None:
        unavailable("node is not installed")
    if not (CONTRACTS_ABI / "node_modules" / "@openzeppelin" / "merkle-tree").exists():
        unavailable("contracts_abi/node_modules is missing (run npm ci in contracts_abi)")
    payload = [
        {"encoding": encoding, "values": [[js_value(v) for v in value] for value in values]}
        for encoding, values in sets
    ]
    result = subprocess.run(
        [node, "-e", NODE_SCRIPT],
        cwd=CONTRACTS_ABI,
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def hexes(nodes: list[bytes]) -> list[str]:
    return ["0x" + node.hex() for node in nodes]


@pytest.fixture(scope="module")
def cases() -> list[tuple[list[str], list[list[object]], dict, int]]:
    """Random custody and mixed-type leaf sets with merkle-tree's trees and proofs for them."""
    seed = random.SystemRandom().getrandbits(32)
    rng = random.Random(seed)
    sets = [(list(CUSTODY_LEAF_ENCODING), random_custody_values(rng, n)) for n in SIZES]
    sets += [(MIXED_ENCODING, random_mixed_values(rng, n)) for n in SIZES]
    results = run_node(sets)
    return [
        (encoding, values, js, seed) for (encoding, values), js in zip(sets, results, strict=True)
    ]


def test_trees_and_proofs_match_merkle_tree_js(cases: list) -> None:
    for encoding, values, js, seed in cases:
        context = f"encoding={encoding} leaves={len(values)} seed={seed}"
        tree = StandardMerkleTree.of(values, encoding)
        assert hexes(list(tree.tree)) == js["tree"], context
        assert list(tree.tree_indices) == js["treeIndices"], context
        for i in range(len(values)):
            assert hexes(tree.proof(i)) == js["proofs"][i], f"{context} index={i}"


def test_merkle_tree_js_proofs_verify_on_chain(cases: list) -> None:
    w3 = Web3(EthereumTesterProvider())
    admin, operator = w3.eth.accounts[:2]
    artifact = load_artifact("CustodyLedger")
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    receipt = w3.eth.wait_for_transaction_receipt(
        factory.constructor(admin, operator).transact({"from": operator})
    )
    ledger = w3.eth.contract(address=receipt.contractAddress, abi=artifact.abi)
    custody = [
        (values, js) for encoding, values, js, _ in cases if encoding == list(CUSTODY_LEAF_ENCODING)
    ]
    assert len(custody) == len(SIZES)
    verify = ledger.functions.verifyEvent
    for batch, (values, js) in enumerate(custody):
        tree = custody_tree(values)
        assert "0x" + tree.root.hex() == js["tree"][0]
        call = ledger.functions.anchor(tree.root, len(values), keccak(b"batch %d" % batch))
        w3.eth.wait_for_transaction_receipt(call.transact({"from": operator}))
        for i in range(0, len(values), max(1, len(values) // 10)):
            digest, salt = values[i]
            proof = [bytes.fromhex(p.removeprefix("0x")) for p in js["proofs"][i]]
            assert verify(tree.root, digest, salt, proof).call()
            assert not verify(tree.root, keccak(digest), salt, proof).call()
            assert not verify(tree.root, digest, keccak(salt), proof).call()
