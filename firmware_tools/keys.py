"""Key files: a supplier's signing key and SUN master key (or a device key), encrypted at rest.

`seal_keys` and `open_keys` are pure (bytes in, bytes out; randomness and passphrase are
arguments); `new_key_file` and `load_key_file` are the file edge.

Format (UTF-8 JSON, one object; version 1):

    {
      "format": "provenance-key-file",
      "version": 1,
      "kind": "supplier" | "device",
      "address": "0x...",             # the signing key's address, readable without the passphrase
      "kdf": {"name": "scrypt", "n": 32768, "r": 8, "p": 1, "salt": "<base64, 16 bytes>"},
      "cipher": {"name": "aes-256-gcm", "nonce": "<base64, 12 bytes>"},
      "ciphertext": "<base64>"
    }

The AES-256 key is scrypt(passphrase UTF-8, salt, n, r, p, 32 bytes) (RFC 7914). The
plaintext is the 32-byte secp256k1 signing key followed, for a supplier, by the 16-byte
AES-128 SUN master key. The associated data is every field except "ciphertext", as JSON with
sorted keys and no spaces, so that the address, kind and KDF parameters cannot be altered
without the tag failing. The file is created whole or not at all, with mode 0600, and never
overwritten.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from contracts_abi.eip712 import address_of_private_key
from firmware_tools.errors import KeyStoreError, WrongPassphrase

FORMAT = "provenance-key-file"
VERSION = 1
SUPPLIER = "supplier"
DEVICE = "device"
SCRYPT_N = 2**15  # 32 MiB with r=8: ~0.1 s on a laptop, under a second on a Raspberry Pi
SCRYPT_R = 8
SCRYPT_P = 1
# A file may not ask for more memory than this (a hostile file could ask for gigabytes).
MAX_SCRYPT_N = 2**20
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


@dataclass(frozen=True)
class KeyFile:
    """The opened contents of a key file; the keys never appear in its repr."""

    signing_key: bytes = field(repr=False)
    address: str
    sun_master_key: bytes | None = field(default=None, repr=False)
    kind: str = SUPPLIER


def new_signing_key() -> bytes:
    """A random secp256k1 private key."""
    while True:
        key = secrets.token_bytes(32)
        if 0 < int.from_bytes(key, "big") < _SECP256K1_N:
            return key


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise KeyStoreError(f"key file: {what} is missing or not a string")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise KeyStoreError(f"key file: {what} is not valid base64") from None


def _aad(header: dict) -> bytes:
    return json.dumps(header, sort_keys=True, separators=(",", ":")).encode()


def _derive(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode("utf-8"))


def seal_keys(
    keys: KeyFile,
    passphrase: str,
    *,
    salt: bytes,
    nonce: bytes,
    scrypt_n: int = SCRYPT_N,
) -> bytes:
    """The key file bytes for `keys`, encrypted under `passphrase`."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if not passphrase:
        raise KeyStoreError("the passphrase is empty; choose one")
    if len(keys.signing_key) != 32:
        raise KeyStoreError("the signing key must be 32 bytes")
    plaintext = keys.signing_key
    if keys.kind == SUPPLIER:
        if keys.sun_master_key is None or len(keys.sun_master_key) != 16:
            raise KeyStoreError("a supplier key file needs a 16-byte SUN master key")
        plaintext += keys.sun_master_key
    elif keys.kind != DEVICE:
        raise KeyStoreError(f"unknown key file kind {keys.kind!r}")
    header = {
        "format": FORMAT,
        "version": VERSION,
        "kind": keys.kind,
        "address": address_of_private_key(keys.signing_key),
        "kdf": {"name": "scrypt", "n": scrypt_n, "r": SCRYPT_R, "p": SCRYPT_P, "salt": _b64(salt)},
        "cipher": {"name": "aes-256-gcm", "nonce": _b64(nonce)},
    }
    key = _derive(passphrase, salt, scrypt_n, SCRYPT_R, SCRYPT_P)
    ciphertext = AESGCM(key).encrypt(nonce, plaintext, _aad(header))
    return (json.dumps({**header, "ciphertext": _b64(ciphertext)}, indent=2) + "\n").encode()


def open_keys(data: bytes, passphrase: str, *, name: str = "key file") -> KeyFile:
    """The keys in key file bytes `data`; raises WrongPassphrase or KeyStoreError."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise KeyStoreError(f"{name} is not a key file (not JSON)") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise KeyStoreError(f"{name} is not a key file (no format {FORMAT!r})")
    if document.get("version") != VERSION:
        raise KeyStoreError(f"{name} has version {document.get('version')!r}; this tool reads 1")
    kind = document.get("kind")
    if kind not in (SUPPLIER, DEVICE):
        raise KeyStoreError(f"{name} has an unknown kind {kind!r}")
    kdf, cipher = document.get("kdf"), document.get("cipher")
    if not isinstance(kdf, dict) or kdf.get("name") != "scrypt":
        raise KeyStoreError(f"{name}: only the scrypt KDF is supported")
    if not isinstance(cipher, dict) or cipher.get("name") != "aes-256-gcm":
        raise KeyStoreError(f"{name}: only the aes-256-gcm cipher is supported")
    n, r, p = kdf.get("n"), kdf.get("r"), kdf.get("p")
    if not all(isinstance(x, int) and x > 0 for x in (n, r, p)) or n > MAX_SCRYPT_N or r * p > 64:
        raise KeyStoreError(f"{name}: scrypt parameters n={n}, r={r}, p={p} are out of range")
    salt = _unb64(kdf.get("salt"), "kdf.salt")
    nonce = _unb64(cipher.get("nonce"), "cipher.nonce")
    ciphertext = _unb64(document.get("ciphertext"), "ciphertext")
    if len(nonce) != 12:
        raise KeyStoreError(f"{name}: the nonce must be 12 bytes")
    header = {k: v for k, v in document.items() if k != "ciphertext"}
    try:
        key = _derive(passphrase, salt, n, r, p)
    except ValueError as exc:
        raise KeyStoreError(f"{name}: scrypt parameters rejected: {exc}") from None
    try:
        plaintext = AESGCM(key).decrypt(nonce, ciphertext, _aad(header))
    except InvalidTag:
        raise WrongPassphrase(f"wrong passphrase for {name} (or the file was altered)") from None
    expected_length = 48 if kind == SUPPLIER else 32
    if len(plaintext) != expected_length:
        raise KeyStoreError(f"{name}: decrypted {len(plaintext)} bytes, expected {expected_length}")
    signing_key = plaintext[:32]
    address = address_of_private_key(signing_key)
    if address != document.get("address"):
        raise KeyStoreError(f"{name}: the stored address does not match the key")
    return KeyFile(
        signing_key=signing_key,
        address=address,
        sun_master_key=plaintext[32:] if kind == SUPPLIER else None,
        kind=kind,
    )


def new_key_file(
    path: str | os.PathLike, passphrase: str, *, kind: str = SUPPLIER, scrypt_n: int = SCRYPT_N
) -> KeyFile:
    """Create a key file with fresh keys at `path` (mode 0600); refuses to overwrite."""
    keys = KeyFile(
        signing_key=new_signing_key(),
        address="",
        sun_master_key=secrets.token_bytes(16) if kind == SUPPLIER else None,
        kind=kind,
    )
    data = seal_keys(
        keys,
        passphrase,
        salt=secrets.token_bytes(16),
        nonce=secrets.token_bytes(12),
        scrypt_n=scrypt_n,
    )
    write_new_file(path, data, 0o600)
    return KeyFile(
        signing_key=keys.signing_key,
        address=address_of_private_key(keys.signing_key),
        sun_master_key=keys.sun_master_key,
        kind=kind,
    )


def write_new_file(path: str | os.PathLike, data: bytes, mode: int) -> None:
    """Write a new file whole or not at all; never overwrite (raises KeyStoreError).

    The data goes to a temporary file beside it first, then a hard link gives it its name:
    the link is atomic and fails if the name exists, even in a race with another process.
    """
    path = Path(path)
    if os.path.lexists(path):
        raise KeyStoreError(f"{path} already exists; refusing to overwrite it")
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)  # exactly `mode`, whatever the umask
        os.link(temporary, path)
    except FileExistsError:
        raise KeyStoreError(f"{path} already exists; refusing to overwrite it") from None
    except OSError as exc:
        raise KeyStoreError(f"cannot create {path}: {exc.strerror}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def load_key_file(path: str | os.PathLike, passphrase: str) -> KeyFile:
    """Open the key file at `path`; raises WrongPassphrase or KeyStoreError with the reason."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise KeyStoreError(f"key file {path} does not exist") from None
    except OSError as exc:
        raise KeyStoreError(f"cannot read key file {path}: {exc.strerror}") from None
    return open_keys(data, passphrase, name=str(path))


def key_file_address(path: str | os.PathLike) -> str:
    """The address stored in a key file, without the passphrase (not authenticated)."""
    path = Path(path)
    try:
        document = json.loads(path.read_bytes())
    except OSError as exc:
        raise KeyStoreError(f"cannot read key file {path}: {exc.strerror}") from None
    except ValueError:
        raise KeyStoreError(f"{path} is not a key file (not JSON)") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise KeyStoreError(f"{path} is not a key file")
    return str(document.get("address"))
