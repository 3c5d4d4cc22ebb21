"""Recognizing an artifact's code on chain, immutables filled in or not."""

from __future__ import annotations

from provenance_api.chain.bytecode import is_same_contract, metadata_trailer

# solc's trailer: CBOR {"ipfs": 34-byte multihash, "solc": version} then its length, 0x0033.
TRAILER = (
    bytes.fromhex("a2646970667358221220")
    + bytes(range(32))
    + bytes.fromhex("64736f6c6343000825")
    + b"\x00\x33"
)
# Runtime code with a 32-byte immutable slot (zeros until the constructor fills it).
ARTIFACT = bytes.fromhex("608060405234") + bytes(32) + bytes.fromhex("5b00fe") + TRAILER


def deployed(immutable: bytes) -> bytes:
    return ARTIFACT[:6] + immutable + ARTIFACT[38:]


def test_trailer_is_found_by_its_length_suffix() -> None:
    assert metadata_trailer(ARTIFACT) == TRAILER
    assert len(TRAILER) == 0x33 + 2


def test_code_without_a_trailer_has_none() -> None:
    assert metadata_trailer(b"") == b""
    assert metadata_trailer(b"\x00\x05") == b""  # claims more bytes than there are
    assert metadata_trailer(bytes.fromhex("6080604052") + b"\x00\x03") == b""  # not CBOR


def test_deployed_code_with_filled_immutables_matches() -> None:
    assert is_same_contract(deployed(b"\xab" * 32), ARTIFACT)
    assert is_same_contract(ARTIFACT, ARTIFACT)


def test_other_compilation_does_not_match() -> None:
    other = ARTIFACT[: -len(TRAILER)] + TRAILER.replace(bytes(range(32)), bytes(32))
    assert not is_same_contract(other, ARTIFACT)


def test_missing_or_truncated_code_does_not_match() -> None:
    assert not is_same_contract(b"", ARTIFACT)
    assert not is_same_contract(ARTIFACT[1:], ARTIFACT)
    assert not is_same_contract(ARTIFACT + b"\x00", ARTIFACT)


def test_without_metadata_only_an_exact_match_counts() -> None:
    bare = bytes.fromhex("6080604052348015600e575f80fd5b50")
    assert is_same_contract(bare, bare)
    assert not is_same_contract(bare[:-1] + b"\x51", bare)
