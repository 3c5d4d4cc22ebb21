"""Organization private keys encrypted at rest (AES-256-GCM bound to the key's address)."""

from __future__ import annotations

import base64
import binascii
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = "v1"


class KeyBoxError(ValueError):
    """A key-encryption key is malformed, or a stored key does not decrypt under it."""


class KeyBox:
    """Encrypts and decrypts private keys under one key-encryption key (KEY_ENCRYPTION_KEY).

    The address is authenticated data, so a ciphertext copied onto another organization's row
    does not decrypt.
    """

    def __init__(self, key_encryption_key: str) -> None:
        try:
            key = base64.b64decode(key_encryption_key, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise KeyBoxError("KEY_ENCRYPTION_KEY must be base64") from exc
        if len(key) != 32:
            raise KeyBoxError(f"KEY_ENCRYPTION_KEY must decode to 32 bytes, not {len(key)}")
        self._aead = AESGCM(key)

    def seal(self, private_key: bytes, address: str) -> str:
        """The stored form of `private_key` belonging to `address`."""
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(nonce, private_key, address.lower().encode())
        return f"{_VERSION}:{base64.b64encode(nonce + sealed).decode()}"

    def open(self, token: str, address: str) -> bytes:
        """The private key sealed in `token` for `address`."""
        version, _, body = token.partition(":")
        if version != _VERSION:
            raise KeyBoxError(f"unknown sealed-key version {version!r}")
        try:
            raw = base64.b64decode(body, validate=True)
            return self._aead.decrypt(raw[:12], raw[12:], address.lower().encode())
        except (binascii.Error, ValueError, InvalidTag) as exc:
            raise KeyBoxError(f"the stored key of {address} does not decrypt") from exc
