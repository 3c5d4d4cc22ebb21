"""Whether code found on chain is the code a compiled artifact deploys.

Pure: no I/O; both codes are arguments.

Exact comparison fails for contracts with `immutable` variables (OpenZeppelin's EIP712 has
several): the constructor writes them into the runtime code, where the compiler's
deployedBytecode has zeros. What deployment never changes is the code's length and the
metadata trailer solc appends: CBOR holding the IPFS hash of the metadata, which pins every
source file and compiler setting, followed by its own length in two big-endian bytes
(Solidity docs, "Contract Metadata", "Encoding of the Metadata Hash in the Bytecode").

>>> artifact = bytes.fromhex("6080" + "00" * 4 + "a2646970667358221220" + "11" * 32
...     + "64736f6c6343000825" + "0033")
>>> deployed = artifact[:2] + b"\\x01\\x02\\x03\\x04" + artifact[6:]
>>> is_same_contract(deployed, artifact)
True
>>> is_same_contract(deployed[:-40] + b"\\x22" * 5 + deployed[-35:], artifact)
False
>>> is_same_contract(b"", artifact)
False
"""

from __future__ import annotations

# solc's CBOR map starts with a map header (0xa1..0xa3: one to three entries).
_CBOR_MAP_HEADERS = range(0xA1, 0xA4)


def metadata_trailer(code: bytes) -> bytes:
    """The CBOR metadata and its 2-byte length at the end of `code`, or b"" if it has none."""
    if len(code) < 2:
        return b""
    length = int.from_bytes(code[-2:], "big")
    start = len(code) - 2 - length
    if length == 0 or start < 0 or code[start] not in _CBOR_MAP_HEADERS:
        return b""
    return code[start:]


def is_same_contract(onchain: bytes, deployed_bytecode: bytes) -> bool:
    """Whether `onchain` code is `deployed_bytecode` as deployed (immutables filled in)."""
    if not onchain or len(onchain) != len(deployed_bytecode):
        return False
    trailer = metadata_trailer(deployed_bytecode)
    if not trailer:
        # No metadata to go by: only an exact match proves anything.
        return onchain == deployed_bytecode
    return metadata_trailer(onchain) == trailer
