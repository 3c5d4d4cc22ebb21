"""Merkle trees compatible with @openzeppelin/merkle-tree 1.0.8's StandardMerkleTree.

Pure: no I/O. Same leaf hash (`keccak256(keccak256(abi.encode(values...)))`), same layout
(leaves sorted by hash and stored right to left at the end of one array, node `i` having
children `2i+1` and `2i+2`, pairs hashed sorted), hence the same root and proofs, which
OpenZeppelin's MerkleProof.verify accepts on-chain.

Custody batches use leaf encoding `["bytes32", "bytes32"]` with value `[event_digest, salt]`:
the EIP-712 digest of a custody event and a random 32-byte salt per event, kept off-chain, so
that a proof shown for one event lets nobody confirm a guess about another event of its batch.
`custody_leaf` computes that leaf; CustodyLedger.verifyEvent computes the same from the digest
and the salt.

>>> events = [[b"\\x01" * 32, b"\\xaa" * 32], [b"\\x02" * 32, b"\\xbb" * 32]]
>>> tree = custody_tree(events)
>>> len(tree), len(tree.proof(0))
(2, 1)
>>> verify(tree.root, custody_leaf(b"\\x02" * 32, b"\\xbb" * 32), tree.proof(1))
True
>>> verify(tree.root, custody_leaf(b"\\x02" * 32, b"\\xcc" * 32), tree.proof(1))
False
"""

from __future__ import annotations

from collections.abc import Sequence

from eth_abi import encode
from eth_hash.auto import keccak

CUSTODY_LEAF_ENCODING = ("bytes32", "bytes32")
SALT_BYTES = 32


def standard_leaf_hash(leaf_encoding: Sequence[str], value: Sequence[object]) -> bytes:
    """Leaf hash of `value` under ABI types `leaf_encoding` (merkle-tree's standardLeafHash)."""
    return keccak(keccak(encode(list(leaf_encoding), list(value))))


def custody_leaf(event_digest: bytes, salt: bytes) -> bytes:
    """Leaf of a custody event: encoding CUSTODY_LEAF_ENCODING, value [event digest, salt]."""
    if len(event_digest) != 32:
        raise ValueError(f"event digest must be 32 bytes, got {len(event_digest)}")
    if len(salt) != SALT_BYTES:
        raise ValueError(f"salt must be {SALT_BYTES} bytes, got {len(salt)}")
    # abi.encode of two bytes32 is the two words side by side: skip the encoder (hot path).
    return keccak(keccak(bytes(event_digest) + bytes(salt)))


def custody_tree(events: Sequence[Sequence[bytes]]) -> StandardMerkleTree:
    """The tree of a custody batch: one (event digest, salt) pair per event, in batch order."""
    return StandardMerkleTree.of(events, CUSTODY_LEAF_ENCODING)


def hash_pair(a: bytes, b: bytes) -> bytes:
    """Inner node: keccak of the two children in ascending byte order (OZ MerkleProof)."""
    return keccak(a + b if a <= b else b + a)


def process_proof(leaf_hash: bytes, proof: Sequence[bytes]) -> bytes:
    """Root reached from `leaf_hash` by hashing up through `proof`."""
    node = leaf_hash
    for sibling in proof:
        node = hash_pair(node, sibling)
    return node


def verify(root: bytes, leaf_hash: bytes, proof: Sequence[bytes]) -> bool:
    """Whether `proof` links `leaf_hash` to `root` (MerkleProof.verify)."""
    return process_proof(leaf_hash, proof) == root


class StandardMerkleTree:
    """A built tree; `of` builds one, indices are positions in the original value list."""

    __slots__ = ("leaf_encoding", "tree", "tree_indices", "values")

    def __init__(
        self,
        tree: tuple[bytes, ...],
        values: tuple[tuple[object, ...], ...],
        tree_indices: tuple[int, ...],
        leaf_encoding: tuple[str, ...],
    ) -> None:
        self.tree = tree
        self.values = values
        self.tree_indices = tree_indices
        self.leaf_encoding = leaf_encoding

    @classmethod
    def of(
        cls, values: Sequence[Sequence[object]], leaf_encoding: Sequence[str]
    ) -> StandardMerkleTree:
        """Build the tree of `values` (each a sequence matching `leaf_encoding`)."""
        encoding = tuple(leaf_encoding)
        frozen = tuple(tuple(v) for v in values)
        for index, value in enumerate(frozen):
            if len(value) != len(encoding):
                raise ValueError(
                    f"value {index} has {len(value)} fields, the encoding {len(encoding)}"
                )
        if encoding == CUSTODY_LEAF_ENCODING:
            hashes = [custody_leaf(*v) for v in frozen]
        else:
            hashes = [standard_leaf_hash(encoding, v) for v in frozen]
        return cls.from_leaf_hashes(hashes, frozen, encoding)

    @classmethod
    def from_leaf_hashes(
        cls,
        hashes: Sequence[bytes],
        values: tuple[tuple[object, ...], ...],
        leaf_encoding: tuple[str, ...],
    ) -> StandardMerkleTree:
        """Build from precomputed leaf hashes, one per value, in value order."""
        count = len(hashes)
        if count == 0:
            raise ValueError("a Merkle tree needs at least one leaf")
        if len(values) != count:
            raise ValueError(f"{len(values)} values for {count} leaf hashes")
        # merkle-tree core.makeMerkleTree: sorted leaves fill the array from its end backwards.
        order = sorted(range(count), key=hashes.__getitem__)
        size = 2 * count - 1
        tree: list[bytes] = [b""] * size
        tree_indices = [0] * count
        for leaf_index, value_index in enumerate(order):
            tree[size - 1 - leaf_index] = hashes[value_index]
            tree_indices[value_index] = size - 1 - leaf_index
        for i in range(size - 1 - count, -1, -1):
            tree[i] = hash_pair(tree[2 * i + 1], tree[2 * i + 2])
        return cls(tuple(tree), values, tuple(tree_indices), leaf_encoding)

    @property
    def root(self) -> bytes:
        """The 32-byte root to anchor."""
        return self.tree[0]

    def __len__(self) -> int:
        return len(self.values)

    def leaf_hash(self, index: int) -> bytes:
        """Leaf hash of the value at `index`."""
        return self.tree[self.tree_indices[index]]

    def proof(self, index: int) -> list[bytes]:
        """Sibling hashes from the leaf of value `index` up to the root (merkle-tree getProof)."""
        node = self.tree_indices[index]
        proof = []
        while node > 0:
            # Odd nodes are left children, so their sibling is to the right.
            proof.append(self.tree[node + 1 if node % 2 else node - 1])
            node = (node - 1) // 2
        return proof
