"""contracts_abi.merkle against known answers from @openzeppelin/merkle-tree 1.0.8."""

from __future__ import annotations

import pytest
from eth_abi import encode
from eth_hash.auto import keccak

from contracts_abi.merkle import (
    CUSTODY_LEAF_ENCODING,
    StandardMerkleTree,
    custody_leaf,
    custody_tree,
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
# StandardMerkleTree.of([[0x01..01, 0xaa..aa], [0x02..02, 0xbb..bb], [0x03..03, 0xcc..cc]],
# ["bytes32", "bytes32"]): root, getProof(1) and leafHash of value 1.
JS_CUSTODY_ROOT = "8e2d8fb4b5a3e8e5faca0e143a02ce5b3fe698e552eb3c48e2b52e740ac5275a"
JS_CUSTODY_PROOF_1 = [
    "53ebc045291f4f987143dd826a91668bbeb22e1ad01c11178b493449155a806d",
    "79b4a46b7564f88a86afb75c10729c6050ec4a2f0873aa3c1815a4163bd7ced0",
]
JS_CUSTODY_LEAF_1 = "31f738afcfa1755d8d23175ffd15cd7a6d5674a7da4b93bbe1919f2c60512b93"


def salted(digests: list[bytes]) -> list[list[bytes]]:
    """(digest, salt) pairs with salts derived from the digests, so the tests are repeatable."""
    return [[d, keccak(b"salt" + d)] for d in digests]


def test_tree_layout_matches_merkle_tree_js() -> None:
    tree = StandardMerkleTree.of(VALUES, ["address", "uint256"])
    assert [node.hex() for node in tree.tree] == JS_TREE
    assert tree.tree_indices == JS_TREE_INDICES
    assert tree.proof(0) == [bytes.fromhex(JS_TREE[1])]
    assert tree.proof(2) == [bytes.fromhex(JS_TREE[4]), bytes.fromhex(JS_TREE[2])]


def test_custody_tree_matches_merkle_tree_js() -> None:
    events = [[bytes([n]) * 32, bytes([s]) * 32] for n, s in ((1, 0xAA), (2, 0xBB), (3, 0xCC))]
    tree = custody_tree(events)
    assert tree.leaf_encoding == CUSTODY_LEAF_ENCODING == ("bytes32", "bytes32")
    assert tree.root.hex() == JS_CUSTODY_ROOT
    assert [p.hex() for p in tree.proof(1)] == JS_CUSTODY_PROOF_1
    assert custody_leaf(*events[1]).hex() == JS_CUSTODY_LEAF_1


def test_custody_leaf_is_the_standard_leaf_of_digest_and_salt() -> None:
    digest, salt = keccak(b"custody event"), keccak(b"salt")
    leaf = custody_leaf(digest, salt)
    assert leaf == standard_leaf_hash(["bytes32", "bytes32"], [digest, salt])
    assert leaf == keccak(keccak(encode(["bytes32", "bytes32"], [digest, salt])))


@pytest.mark.parametrize(
    ("digest", "salt", "message"),
    [
        (b"\x00" * 31, b"\x00" * 32, "event digest must be 32 bytes"),
        (b"\x00" * 32, b"\x00" * 31, "salt must be 32 bytes"),
        (b"\x00" * 32, b"", "salt must be 32 bytes"),
    ],
)
def test_custody_leaf_rejects_wrong_length(digest: bytes, salt: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        custody_leaf(digest, salt)


def test_custody_tree_rejects_an_unsalted_event() -> None:
    with pytest.raises(ValueError, match="value 1 has 1 fields, the encoding 2"):
        custody_tree([[keccak(b"a"), keccak(b"salt")], [keccak(b"b")]])


@pytest.mark.parametrize("count", [1, 2, 3, 4, 5, 8, 13, 64])
def test_every_proof_verifies_and_tampering_fails(count: int) -> None:
    digests = [keccak(count.to_bytes(2, "big") + i.to_bytes(4, "big")) for i in range(count)]
    events = salted(digests)
    tree = custody_tree(events)
    assert len(tree) == count
    for i, (digest, salt) in enumerate(events):
        proof = tree.proof(i)
        assert tree.leaf_hash(i) == custody_leaf(digest, salt)
        assert verify(tree.root, custody_leaf(digest, salt), proof)
        assert not verify(tree.root, custody_leaf(keccak(digest), salt), proof)
        assert not verify(tree.root, custody_leaf(digest, keccak(salt)), proof)
        if proof:
            bad = [*proof[:-1], keccak(proof[-1])]
            assert not verify(tree.root, custody_leaf(digest, salt), bad)


def test_a_guess_without_the_salt_matches_no_node() -> None:
    """Someone shown one proof who guesses another event's digest cannot confirm the guess."""
    digests = [keccak(b"event %d" % i) for i in range(8)]
    tree = custody_tree(salted(digests))
    seen = set(tree.tree)
    for digest in digests:
        # The unsalted leaf, or the guess salted with zeros, appears nowhere in the tree.
        assert keccak(keccak(digest)) not in seen
        assert custody_leaf(digest, bytes(32)) not in seen


def test_single_leaf_tree_is_its_leaf() -> None:
    event = [b"\x07" * 32, b"\x08" * 32]
    tree = custody_tree([event])
    assert tree.root == custody_leaf(*event)
    assert tree.proof(0) == []


def test_value_order_does_not_change_root() -> None:
    events = salted([keccak(bytes([i])) for i in range(10)])
    forward = custody_tree(events)
    backward = custody_tree(list(reversed(events)))
    assert forward.root == backward.root
    assert forward.proof(0) == backward.proof(9)


def test_hash_pair_is_commutative() -> None:
    a, b = keccak(b"a"), keccak(b"b")
    assert hash_pair(a, b) == hash_pair(b, a) == keccak(min(a, b) + max(a, b))
    assert process_proof(a, [b]) == hash_pair(a, b)


def test_empty_tree_is_rejected() -> None:
    with pytest.raises(ValueError, match="at least one leaf"):
        custody_tree([])
