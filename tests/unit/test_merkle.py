"""contracts_abi.merkle against known answers from @openzeppelin/merkle-tree 1.0.8."""

from __future__ import annotations

import pytest
from eth_abi import encode
from eth_hash.auto import keccak

from contracts_abi.merkle import (
    StandardMerkleTree,
    custody_leaf,
    hash_pair,
    process_proof,
    standard_leaf_hash,
    verify,
)

# Computed with node: StandardMerkleTree.of(VALUES, ["address", "uint256"]).dump() and getProof.
VALUES = [
    ["0x1111111111111111111111111111111111111111", 5000000000000000000],
    ["0x2222222222222222222222222222222222222222", 2500000000000000000],
    ["0x3333333333333333333333333333333333333333", 1],
]
JS_TREE = [
    "d673f832e8ae578ea16450035956e30f27212b91d6cd26edbef07c90546302ff",
    "8d00bd8d33bd92e6ade0ba2d87958d59727515200df528502b93c99dd3fa0256",
    "eb02c421cfa48976e66dfb29120745909ea3a0f843456c263cf8f1253483e283",
    "c3d2e29c8ded2ca4aa700f83273d097a3fb1683f4b5f291a8ee7d74ff26fc6b3",
    "b92c48e9d7abe27fd8dfd6b5dfdbfb1c9a463f80c712b66f3a5180a090cccafc",
]
JS_TREE_INDICES = (2, 4, 3)
# StandardMerkleTree.of([[0x01..01], [0x02..02], [0x03..03]], ["bytes32"]): root, getProof(1).
JS_CUSTODY_ROOT = "d0721d2dc79379fabc8f9fedaf82df1f99c98be5da4b6affa7ff9a42314b4e1c"
JS_CUSTODY_PROOF_1 = [
    "5e83a8d8b7aad779cc33bc6268dda1d3e2f1d2a33835f2f9c7283726729588de",
    "ce895d90d3a0ed5312ae8dcfff377010c4aa1b7e9f1fa69836a3802d014c313e",
]


def test_tree_layout_matches_merkle_tree_js() -> None:
    tree = StandardMerkleTree.of(VALUES, ["address", "uint256"])
    assert [node.hex() for node in tree.tree] == JS_TREE
    assert tree.tree_indices == JS_TREE_INDICES
    assert tree.proof(0) == [bytes.fromhex(JS_TREE[1])]
    assert tree.proof(2) == [bytes.fromhex(JS_TREE[4]), bytes.fromhex(JS_TREE[2])]


def test_custody_tree_matches_merkle_tree_js() -> None:
    digests = [bytes([n]) * 32 for n in (1, 2, 3)]
    tree = StandardMerkleTree.of([[d] for d in digests], ["bytes32"])
    assert tree.root.hex() == JS_CUSTODY_ROOT
    assert [p.hex() for p in tree.proof(1)] == JS_CUSTODY_PROOF_1


def test_custody_leaf_is_the_standard_leaf_of_one_bytes32() -> None:
    digest = keccak(b"custody event")
    assert custody_leaf(digest) == standard_leaf_hash(["bytes32"], [digest])
    assert custody_leaf(digest) == keccak(keccak(encode(["bytes32"], [digest])))


def test_custody_leaf_rejects_wrong_length() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        custody_leaf(b"\x00" * 31)


@pytest.mark.parametrize("count", [1, 2, 3, 4, 5, 8, 13, 64])
def test_every_proof_verifies_and_tampering_fails(count: int) -> None:
    digests = [keccak(count.to_bytes(2, "big") + i.to_bytes(4, "big")) for i in range(count)]
    tree = StandardMerkleTree.of([[d] for d in digests], ["bytes32"])
    assert len(tree) == count
    for i, digest in enumerate(digests):
        proof = tree.proof(i)
        assert tree.leaf_hash(i) == custody_leaf(digest)
        assert verify(tree.root, custody_leaf(digest), proof)
        assert not verify(tree.root, custody_leaf(keccak(digest)), proof)
        if proof:
            bad = [*proof[:-1], keccak(proof[-1])]
            assert not verify(tree.root, custody_leaf(digest), bad)


def test_single_leaf_tree_is_its_leaf() -> None:
    tree = StandardMerkleTree.of([[b"\x07" * 32]], ["bytes32"])
    assert tree.root == custody_leaf(b"\x07" * 32)
    assert tree.proof(0) == []


def test_value_order_does_not_change_root() -> None:
    digests = [keccak(bytes([i])) for i in range(10)]
    forward = StandardMerkleTree.of([[d] for d in digests], ["bytes32"])
    backward = StandardMerkleTree.of([[d] for d in reversed(digests)], ["bytes32"])
    assert forward.root == backward.root
    assert forward.proof(0) == backward.proof(9)


def test_hash_pair_is_commutative() -> None:
    a, b = keccak(b"a"), keccak(b"b")
    assert hash_pair(a, b) == hash_pair(b, a) == keccak(min(a, b) + max(a, b))
    assert process_proof(a, [b]) == hash_pair(a, b)


def test_empty_tree_is_rejected() -> None:
    with pytest.raises(ValueError, match="at least one leaf"):
        StandardMerkleTree.of([], ["bytes32"])
