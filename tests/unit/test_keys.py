"""Key files sealed and opened in memory (file creation is tested through the CLI)."""

from __future__ import annotations

import base64
import json

import pytest

from contracts_abi.eip712 import address_of_private_key
from firmware_tools.errors import KeyStoreError, WrongPassphrase
from firmware_tools.keys import DEVICE, SUPPLIER, KeyFile, new_signing_key, open_keys, seal_keys

# A small scrypt cost keeps unit tests fast; the format records n, so opening needs no hint.
FAST_N = 2**4
SIGNING_KEY = bytes(range(1, 33))
SUN_KEY = bytes(range(100, 116))


def sealed(keys: KeyFile | None = None, passphrase: str = "correct horse") -> bytes:
    keys = keys or KeyFile(signing_key=SIGNING_KEY, address="", sun_master_key=SUN_KEY)
    return seal_keys(keys, passphrase, salt=b"s" * 16, nonce=b"n" * 12, scrypt_n=FAST_N)


def test_a_supplier_key_file_round_trips() -> None:
    keys = open_keys(sealed(), "correct horse")
    assert keys.signing_key == SIGNING_KEY
    assert keys.sun_master_key == SUN_KEY
    assert keys.address == address_of_private_key(SIGNING_KEY)
    assert keys.kind == SUPPLIER


def test_a_device_key_file_has_no_sun_key() -> None:
    data = sealed(KeyFile(signing_key=SIGNING_KEY, address="", kind=DEVICE))
    keys = open_keys(data, "correct horse")
    assert (keys.kind, keys.sun_master_key, keys.signing_key) == (DEVICE, None, SIGNING_KEY)


def test_the_file_documents_itself_and_hides_the_keys() -> None:
    data = sealed()
    document = json.loads(data)
    assert document["format"] == "provenance-key-file" and document["version"] == 1
    assert document["kdf"] == {
        "name": "scrypt",
        "n": FAST_N,
        "r": 8,
        "p": 1,
        "salt": base64.b64encode(b"s" * 16).decode(),
    }
    assert document["address"] == address_of_private_key(SIGNING_KEY)
    assert SIGNING_KEY.hex() not in data.decode() and SUN_KEY.hex() not in data.decode()
    assert SIGNING_KEY not in data and SUN_KEY not in data
    assert "signing_key" not in repr(open_keys(data, "correct horse"))


def test_a_wrong_passphrase_says_so() -> None:
    with pytest.raises(WrongPassphrase, match="wrong passphrase"):
        open_keys(sealed(), "Correct horse")


@pytest.mark.parametrize(
    ("field", "value"),
    [("address", "0x" + "00" * 20), ("kind", DEVICE), ("kdf", None)],
)
def test_an_altered_header_does_not_open(field: str, value: object) -> None:
    document = json.loads(sealed())
    if field == "kdf":
        document["kdf"]["salt"] = base64.b64encode(b"t" * 16).decode()
    else:
        document[field] = value
    with pytest.raises(KeyStoreError):
        open_keys(json.dumps(document).encode(), "correct horse")


def test_an_altered_ciphertext_does_not_open() -> None:
    document = json.loads(sealed())
    raw = bytearray(base64.b64decode(document["ciphertext"]))
    raw[0] ^= 1
    document["ciphertext"] = base64.b64encode(bytes(raw)).decode()
    with pytest.raises(WrongPassphrase):
        open_keys(json.dumps(document).encode(), "correct horse")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not json", "not JSON"),
        (b"[]", "not a key file"),
        (b'{"format": "provenance-key-file", "version": 9}', "version 9"),
    ],
)
def test_other_files_are_refused_with_a_reason(data: bytes, message: str) -> None:
    with pytest.raises(KeyStoreError, match=message):
        open_keys(data, "x")


def test_a_hostile_scrypt_cost_is_refused_before_deriving() -> None:
    document = json.loads(sealed())
    document["kdf"]["n"] = 2**30
    with pytest.raises(KeyStoreError, match="out of range"):
        open_keys(json.dumps(document).encode(), "correct horse")


def test_sealing_refuses_an_empty_passphrase_and_bad_keys() -> None:
    with pytest.raises(KeyStoreError, match="empty"):
        sealed(passphrase="")
    with pytest.raises(KeyStoreError, match="SUN master key"):
        sealed(KeyFile(signing_key=SIGNING_KEY, address="", sun_master_key=b"short"))


def test_new_signing_keys_are_valid_and_distinct() -> None:
    keys = {new_signing_key() for _ in range(20)}
    assert len(keys) == 20
    for key in keys:
        assert address_of_private_key(key).startswith("0x")
