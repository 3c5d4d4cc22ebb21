"""The trade vault: wrapped data keys, sealed records and the details hash chain."""

from __future__ import annotations

import base64
import hashlib
import os

import pytest
from eth_hash.auto import keccak

from provenance_api.keys import KeyBox
from provenance_api.trade_vault import (
    ZERO_HASH,
    KeyDoesNotUnwrap,
    KeyWrapper,
    Kind,
    RecordDoesNotOpen,
    VaultError,
    chain_hash,
    ciphertext_digest,
    next_hash,
    open_record,
    seal_record,
)

KEK = base64.b64encode(bytes(range(32))).decode()


def nonce() -> bytes:
    return os.urandom(12)


def sealed(key: bytes, trade_id: int = 7, sequence: int = 1, **changes: object) -> dict:
    """A record's fields as stored, sealed with `key`."""
    fields: dict = {
        "trade_id": trade_id,
        "sequence": sequence,
        "kind": Kind.MESSAGE,
        "content_type": "text/plain",
    }
    fields.update(changes)
    plaintext = fields.pop("plaintext", b"the parcel left on Monday")
    record_nonce = nonce()
    ciphertext = seal_record(key, record_nonce, plaintext=plaintext, **fields)
    return {**fields, "nonce": record_nonce, "ciphertext": ciphertext}


def opened(key: bytes, record: dict) -> bytes:
    fields = dict(record)
    return open_record(key, fields.pop("nonce"), **fields)


def test_a_wrapped_key_unwraps_for_its_trade_only() -> None:
    wrapper = KeyWrapper(KEK)
    data_key = os.urandom(32)
    token = wrapper.wrap(data_key, 41, nonce())
    assert token.startswith("v1:") and data_key not in base64.b64decode(token[3:])
    assert wrapper.unwrap(token, 41) == data_key
    with pytest.raises(KeyDoesNotUnwrap):
        wrapper.unwrap(token, 42)  # copied onto another trade's row
    with pytest.raises(KeyDoesNotUnwrap):
        KeyWrapper(base64.b64encode(os.urandom(32)).decode()).unwrap(token, 41)


def test_a_damaged_wrapped_key_does_not_unwrap() -> None:
    wrapper = KeyWrapper(KEK)
    token = wrapper.wrap(os.urandom(32), 1, nonce())
    raw = bytearray(base64.b64decode(token[3:]))
    raw[20] ^= 1
    for broken in (
        "v1:" + base64.b64encode(bytes(raw)).decode(),
        "v2:" + token[3:],
        "v1:not base64!",
        "v1:" + base64.b64encode(b"short").decode(),
        "",
    ):
        with pytest.raises(KeyDoesNotUnwrap):
            wrapper.unwrap(broken, 1)


def test_trade_keys_are_not_wrapped_under_the_organization_key_box_key() -> None:
    # Derived, not the KEK itself: an organization key's sealing and a trade key's wrapping
    # never share a key, so neither can stand in for the other.
    data_key = os.urandom(32)
    token = KeyWrapper(KEK).wrap(data_key, 5, nonce())
    with pytest.raises(ValueError):
        KeyBox(KEK).open(token, "5")


def test_key_wrapper_rejects_a_malformed_key_encryption_key() -> None:
    for bad in ("not base64!", base64.b64encode(b"16 bytes only!!!").decode()):
        with pytest.raises(VaultError):
            KeyWrapper(bad)
    wrapper = KeyWrapper(KEK)
    with pytest.raises(VaultError):
        wrapper.wrap(os.urandom(31), 1, nonce())
    with pytest.raises(VaultError):
        wrapper.wrap(os.urandom(32), 1, os.urandom(8))
    with pytest.raises(VaultError):
        wrapper.wrap(os.urandom(32), -1, nonce())


def test_a_record_opens_where_it_was_sealed() -> None:
    key = os.urandom(32)
    record = sealed(
        key, plaintext=b"\x00\xffphoto bytes", kind=Kind.PHOTO, content_type="image/png"
    )
    assert b"photo bytes" not in record["ciphertext"]
    assert opened(key, record) == b"\x00\xffphoto bytes"


@pytest.mark.parametrize(
    "change",
    [
        {"trade_id": 8},  # moved to another trade
        {"sequence": 2},  # moved to another position
        {"kind": Kind.EVIDENCE},
        {"content_type": "text/html"},
    ],
)
def test_a_moved_or_relabelled_record_does_not_open(change: dict) -> None:
    key = os.urandom(32)
    record = sealed(key)
    with pytest.raises(RecordDoesNotOpen):
        opened(key, {**record, **change})


def test_a_flipped_byte_or_wrong_key_does_not_open() -> None:
    key = os.urandom(32)
    record = sealed(key)
    for index in (0, len(record["ciphertext"]) // 2, len(record["ciphertext"]) - 1):
        flipped = bytearray(record["ciphertext"])
        flipped[index] ^= 0x80
        with pytest.raises(RecordDoesNotOpen):
            opened(key, {**record, "ciphertext": bytes(flipped)})
    with pytest.raises(RecordDoesNotOpen):
        opened(key, {**record, "nonce": nonce()})
    with pytest.raises(RecordDoesNotOpen):
        opened(key, {**record, "nonce": b"short"})
    with pytest.raises(RecordDoesNotOpen):
        opened(os.urandom(32), record)  # another trade's key


def test_record_swapped_between_trades_with_their_own_keys_does_not_open() -> None:
    mine, theirs = os.urandom(32), os.urandom(32)
    record = sealed(theirs, trade_id=9, sequence=1)
    with pytest.raises(RecordDoesNotOpen):
        opened(mine, {**record, "trade_id": 7})


def test_the_hash_chain_is_the_stated_formula() -> None:
    key = os.urandom(32)
    records = [sealed(key, sequence=n) for n in (1, 2, 3)]
    expected = b"\x00" * 32
    for n, record in enumerate(records, 1):
        digest = hashlib.sha256(record["nonce"] + record["ciphertext"]).digest()
        expected = keccak(expected + digest + n.to_bytes(8, "big"))
    digests = [(r["sequence"], ciphertext_digest(r["nonce"], r["ciphertext"])) for r in records]
    assert chain_hash(digests) == expected
    assert chain_hash([]) == ZERO_HASH


def test_the_hash_chain_notices_any_change() -> None:
    key = os.urandom(32)
    records = [sealed(key, sequence=n) for n in (1, 2)]
    digests = [(r["sequence"], ciphertext_digest(r["nonce"], r["ciphertext"])) for r in records]
    honest = chain_hash(digests)
    flipped = bytearray(records[1]["ciphertext"])
    flipped[0] ^= 1
    changed = [digests[0], (2, ciphertext_digest(records[1]["nonce"], bytes(flipped)))]
    assert chain_hash(changed) != honest
    with pytest.raises(VaultError):
        chain_hash(list(reversed(digests)))  # out of order
    with pytest.raises(VaultError):
        chain_hash([digests[1]])  # a record left out
    # The same digest at another position hashes differently.
    assert next_hash(ZERO_HASH, digests[0][1], 1) != next_hash(ZERO_HASH, digests[0][1], 2)


def test_the_hash_commits_to_ciphertext_not_content() -> None:
    # The same plaintext sealed twice gives unrelated hashes: without the key, the hash says
    # nothing about what was written.
    key = os.urandom(32)
    first, second = sealed(key), sealed(key)
    assert first["ciphertext"] != second["ciphertext"]
    one = chain_hash([(1, ciphertext_digest(first["nonce"], first["ciphertext"]))])
    two = chain_hash([(1, ciphertext_digest(second["nonce"], second["ciphertext"]))])
    assert one != two
