"""A trade's personal data: its own data key, its sealed records, and the details hash chain.

Pure: no I/O; keys and nonces are arguments.

Each trade has a data key of its own (32 random bytes), stored wrapped under a key derived from
KEY_ENCRYPTION_KEY with the trade id as associated data, so a wrapped key copied onto another
trade's row does not unwrap. Each record is sealed with AES-256-GCM under the trade's data key,
its associated data binding the trade id, its sequence, its kind and its content type, so a
ciphertext moved to another trade or position does not open. Destroying the wrapped key makes
every record of the trade unreadable, in the database and in any backup of it.

The details hash commits to the ciphertexts, not to the content::

    h_0 = 32 zero bytes
    h_n = keccak256(h_{n-1} || sha256(nonce_n || ciphertext_n) || uint64_be(n))

so after the key is destroyed the hash recorded on-chain proves only that, and when, records
were added.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import struct
from collections.abc import Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from eth_hash.auto import keccak

DATA_KEY_BYTES = 32
NONCE_BYTES = 12
ZERO_HASH = bytes(32)
_VERSION = "v1"
# Domain separation: the key-encryption key also seals organization keys (keys.KeyBox); the
# trade keys are wrapped under a key derived from it for this purpose only.
_WRAP_INFO = b"provenance trade data key wrap v1"
_KEY_LABEL = b"provenance trade key v1\x00"
_RECORD_LABEL = b"provenance trade record v1\x00"
_MAX_SEQUENCE = 2**64 - 1


class Kind(enum.StrEnum):
    """What a record holds."""

    DETAILS = "details"  # a party's own contact and delivery details (JSON)
    MESSAGE = "message"
    PHOTO = "photo"
    EVIDENCE = "evidence"


class VaultError(ValueError):
    """A key or record does not open, or an argument is malformed.

    ::

        VaultError
        ├── KeyDoesNotUnwrap     the wrapped key is damaged, or belongs to another trade
        └── RecordDoesNotOpen    the record is damaged, moved, or sealed under another key
    """


class KeyDoesNotUnwrap(VaultError):
    """The wrapped data key is damaged, malformed, or was wrapped for another trade."""


class RecordDoesNotOpen(VaultError):
    """The record is damaged, was moved to another trade or position, or the key is wrong."""


class KeyWrapper:
    """Wraps trade data keys under a key derived from KEY_ENCRYPTION_KEY (AES-256-GCM)."""

    def __init__(self, key_encryption_key: str) -> None:
        try:
            key = base64.b64decode(key_encryption_key, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise VaultError("KEY_ENCRYPTION_KEY must be base64") from exc
        if len(key) != 32:
            raise VaultError(f"KEY_ENCRYPTION_KEY must decode to 32 bytes, not {len(key)}")
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_WRAP_INFO)
        self._aead = AESGCM(derived.derive(key))

    def wrap(self, data_key: bytes, trade_id: int, nonce: bytes) -> str:
        """The stored form of trade `trade_id`'s `data_key`; `nonce` is 12 fresh random bytes."""
        _check(data_key, DATA_KEY_BYTES, "data key")
        _check(nonce, NONCE_BYTES, "nonce")
        sealed = self._aead.encrypt(nonce, data_key, _key_aad(trade_id))
        return f"{_VERSION}:{base64.b64encode(nonce + sealed).decode()}"

    def unwrap(self, token: str, trade_id: int) -> bytes:
        """The data key wrapped in `token` for trade `trade_id`."""
        version, _, body = token.partition(":")
        if version != _VERSION:
            raise KeyDoesNotUnwrap(f"unknown wrapped-key version {version!r}")
        try:
            raw = base64.b64decode(body, validate=True)
            if len(raw) < NONCE_BYTES:
                raise ValueError("too short")
            key = self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], _key_aad(trade_id))
        except (binascii.Error, ValueError, InvalidTag) as exc:
            raise KeyDoesNotUnwrap(f"the data key of trade {trade_id} does not unwrap") from exc
        if len(key) != DATA_KEY_BYTES:
            raise KeyDoesNotUnwrap(f"the data key of trade {trade_id} has the wrong length")
        return key


def seal_record(
    data_key: bytes,
    nonce: bytes,
    *,
    trade_id: int,
    sequence: int,
    kind: Kind,
    content_type: str,
    plaintext: bytes,
) -> bytes:
    """The ciphertext of record `sequence` of trade `trade_id`; `nonce`: 12 fresh random bytes."""
    _check(data_key, DATA_KEY_BYTES, "data key")
    _check(nonce, NONCE_BYTES, "nonce")
    aad = record_aad(trade_id, sequence, kind, content_type)
    return AESGCM(data_key).encrypt(nonce, plaintext, aad)


def open_record(
    data_key: bytes,
    nonce: bytes,
    *,
    trade_id: int,
    sequence: int,
    kind: Kind,
    content_type: str,
    ciphertext: bytes,
) -> bytes:
    """The plaintext of record `sequence` of trade `trade_id`; RecordDoesNotOpen otherwise."""
    _check(data_key, DATA_KEY_BYTES, "data key")
    aad = record_aad(trade_id, sequence, kind, content_type)
    try:
        if len(nonce) != NONCE_BYTES:
            raise ValueError("nonce length")
        return AESGCM(data_key).decrypt(nonce, ciphertext, aad)
    except (ValueError, InvalidTag) as exc:
        raise RecordDoesNotOpen(
            f"record {sequence} of trade {trade_id} does not open: damaged or moved"
        ) from exc


def record_aad(trade_id: int, sequence: int, kind: Kind, content_type: str) -> bytes:
    """The associated data of a record: trade id, sequence, kind and content type."""
    kind_bytes = Kind(kind).value.encode()
    type_bytes = content_type.encode()
    return b"".join(
        (
            _RECORD_LABEL,
            _uint64(trade_id, "trade id"),
            _uint64(sequence, "sequence"),
            struct.pack(">B", len(kind_bytes)),
            kind_bytes,
            struct.pack(">H", len(type_bytes)),
            type_bytes,
        )
    )


def ciphertext_digest(nonce: bytes, ciphertext: bytes) -> bytes:
    """sha256(nonce || ciphertext): what the details hash commits to for one record."""
    return hashlib.sha256(nonce + ciphertext).digest()


def next_hash(previous: bytes, digest: bytes, sequence: int) -> bytes:
    """h_n = keccak256(h_{n-1} || digest_n || uint64_be(n)), from the record's ciphertext digest."""
    _check(previous, 32, "previous hash")
    _check(digest, 32, "digest")
    return keccak(previous + digest + _uint64(sequence, "sequence"))


def chain_hash(records: Iterable[tuple[int, bytes]]) -> bytes:
    """The details hash after `records`, each (sequence, ciphertext digest), in order from 1."""
    current = ZERO_HASH
    expected = 1
    for sequence, digest in records:
        if sequence != expected:
            raise VaultError(f"record {sequence} out of order: expected {expected}")
        current = next_hash(current, digest, sequence)
        expected += 1
    return current


def _key_aad(trade_id: int) -> bytes:
    return _KEY_LABEL + _uint64(trade_id, "trade id")


def _uint64(value: int, name: str) -> bytes:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_SEQUENCE:
        raise VaultError(f"{name} must be an integer from 0 to 2**64 - 1")
    return struct.pack(">Q", value)


def _check(value: bytes, length: int, name: str) -> None:
    if not isinstance(value, bytes) or len(value) != length:
        raise VaultError(f"{name} must be {length} bytes")
