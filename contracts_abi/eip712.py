"""EIP-712 typed data shared by the API, the agent, the tag tools and the contracts.

Pure: no I/O; keys are arguments. Digests are computed directly from the type strings so
that a verifier can check thousands of labels a second (a GTIN's hash is cached: a verifier
sees few GTINs and many serials); tests cross-check every digest against eth-account's
general encoder.
"""

from __future__ import annotations

from functools import lru_cache

from coincurve import PrivateKey, PublicKey
from eth_utils import to_canonical_address, to_checksum_address

try:  # safe-pysha3, when installed, hashes short inputs ~8x faster than eth_hash's default
    from sha3 import keccak_256

    def keccak(data: bytes) -> bytes:
        """Keccak-256 (Ethereum's, not SHA3-256)."""
        return keccak_256(data).digest()

except ImportError:
    from eth_hash.auto import keccak

DOMAIN_TYPE = "EIP712Domain(string name,string version)"
LABEL_DOMAIN_NAME = "Provenance Labels"
# Version 2: one struct for every label, over everything a label prints (version 1 signed
# only GTIN and serial, so a recalled lot could be relabelled as another).
LABEL_DOMAIN_VERSION = "2"

# Absent fields are the empty string (lot, expiry, variant) or empty bytes (uid: a QR label
# is bound to no chip; an NTAG 21x URL names its 7-byte chip UID).
LABEL_TYPE = "Label(string gtin,string serial,string lot,string expiry,string variant,bytes uid)"
LABEL_FIELDS = ("gtin", "serial", "lot", "expiry", "variant", "uid")


class SignatureError(ValueError):
    """A signature is malformed or cannot be recovered."""


def _domain_separator(name: str, version: str) -> bytes:
    return keccak(keccak(DOMAIN_TYPE.encode()) + keccak(name.encode()) + keccak(version.encode()))


LABEL_DOMAIN_SEPARATOR = _domain_separator(LABEL_DOMAIN_NAME, LABEL_DOMAIN_VERSION)
_LABEL_TYPEHASH = keccak(LABEL_TYPE.encode())
_EMPTY_HASH = keccak(b"")


def typed_digest(domain_separator: bytes, struct_hash: bytes) -> bytes:
    """The 32-byte digest that EIP-712 signs: keccak(0x1901 || domain || struct)."""
    return keccak(b"\x19\x01" + domain_separator + struct_hash)


@lru_cache(maxsize=4096)
def _gtin_hash(gtin: str) -> bytes:
    return keccak(gtin.encode())


def _text_hash(text: str | None) -> bytes:
    return keccak(text.encode()) if text else _EMPTY_HASH


def label_digest(
    gtin: str,
    serial: str,
    uid: bytes | None = None,
    *,
    lot: str | None = None,
    expiry: str | None = None,
    variant: str | None = None,
) -> bytes:
    """Digest of everything a label states; with `uid`, the label is bound to one NFC chip.

    None and empty mean absent: lot, expiry and variant hash as "", uid as empty bytes.
    """
    struct = (
        _LABEL_TYPEHASH
        + _gtin_hash(gtin)
        + keccak(serial.encode())
        + _text_hash(lot)
        + _text_hash(expiry)
        + _text_hash(variant)
        + (keccak(uid) if uid else _EMPTY_HASH)
    )
    return typed_digest(LABEL_DOMAIN_SEPARATOR, keccak(struct))


def label_typed_data(
    gtin: str,
    serial: str,
    uid: bytes | None = None,
    *,
    lot: str | None = None,
    expiry: str | None = None,
    variant: str | None = None,
) -> dict:
    """The same label as a full EIP-712 message, for wallets and eth-account."""
    types = {
        "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"}],
        "Label": [
            {"name": name, "type": "bytes" if name == "uid" else "string"} for name in LABEL_FIELDS
        ],
    }
    message = {
        "gtin": gtin,
        "serial": serial,
        "lot": lot or "",
        "expiry": expiry or "",
        "variant": variant or "",
        "uid": uid or b"",
    }
    return {
        "types": types,
        "primaryType": "Label",
        "domain": {"name": LABEL_DOMAIN_NAME, "version": LABEL_DOMAIN_VERSION},
        "message": message,
    }


def sign_digest(private_key: bytes, digest: bytes) -> bytes:
    """65-byte Ethereum signature r || s || v (v is 27 or 28)."""
    rsv = PrivateKey(private_key).sign_recoverable(digest, hasher=None)
    return rsv[:64] + bytes([rsv[64] + 27])


def recover_digest_signer(digest: bytes, signature: bytes) -> str:
    """Checksummed address that signed `digest`; raises SignatureError if malformed."""
    return to_checksum_address(recover_digest_signer_bytes(digest, signature))


def recover_digest_signer_bytes(digest: bytes, signature: bytes) -> bytes:
    """The 20 address bytes that signed `digest` (no checksumming: the verifier's hot path)."""
    if len(signature) != 65:
        raise SignatureError(f"signature must be 65 bytes, got {len(signature)}")
    # v is 27 or 28 only, as ecrecover and OpenZeppelin's ECDSA take it: accepting 0/1 too
    # would give every claim a second valid encoding.
    v = signature[64] - 27
    if v not in (0, 1):
        raise SignatureError(f"signature recovery id must be 27 or 28, got {signature[64]}")
    # Reject high-s signatures (EIP-2) so that each claim has exactly one valid signature.
    s = int.from_bytes(signature[32:64], "big")
    if s == 0 or s > _SECP256K1_N // 2:
        raise SignatureError("signature s value is out of range")
    try:
        public = PublicKey.from_signature_and_message(
            signature[:64] + bytes([v]), digest, hasher=None
        )
    except Exception as exc:  # coincurve raises plain Exception for unrecoverable input
        raise SignatureError("signature does not recover to a public key") from exc
    return keccak(public.format(compressed=False)[1:])[-20:]


def address_of_public_key(uncompressed: bytes) -> str:
    """Ethereum address of a 65-byte uncompressed secp256k1 public key."""
    return to_checksum_address(keccak(uncompressed[1:])[-20:])


def address_of_private_key(private_key: bytes) -> str:
    """Ethereum address of a 32-byte secp256k1 private key."""
    return address_of_public_key(PrivateKey(private_key).public_key.format(compressed=False))


def sign_label(
    private_key: bytes,
    gtin: str,
    serial: str,
    uid: bytes | None = None,
    *,
    lot: str | None = None,
    expiry: str | None = None,
    variant: str | None = None,
) -> bytes:
    """Supplier's signature over everything the label states (and the chip UID, if any)."""
    digest = label_digest(gtin, serial, uid, lot=lot, expiry=expiry, variant=variant)
    return sign_digest(private_key, digest)


def recover_label_signer(
    signature: bytes,
    gtin: str,
    serial: str,
    uid: bytes | None = None,
    *,
    lot: str | None = None,
    expiry: str | None = None,
    variant: str | None = None,
) -> str:
    """Address that signed this label; compare it with the supplier's address."""
    digest = label_digest(gtin, serial, uid, lot=lot, expiry=expiry, variant=variant)
    return recover_digest_signer(digest, signature)


_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


# --- ProductPassport transfer consent -------------------------------------------------------
# Must match contracts_abi/src/ProductPassport.sol: EIP712("ProductPassport", "1") and
# TRANSFER_CONSENT_TYPEHASH. The domain binds the chain id and the contract's address (EIP-712
# §"Definition of domainSeparator"), so a consent is valid on one deployment only.

PASSPORT_DOMAIN_NAME = "ProductPassport"
PASSPORT_DOMAIN_VERSION = "1"
CONTRACT_DOMAIN_TYPE = (
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
TRANSFER_CONSENT_TYPE = "TransferConsent(address to,uint256 tokenId,uint256 nonce,uint256 deadline)"
_TRANSFER_CONSENT_TYPEHASH = keccak(TRANSFER_CONSENT_TYPE.encode())


def _word_uint(name: str, value: int) -> bytes:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**256:
        raise ValueError(f"{name} must be an integer in [0, 2**256), got {value!r}")
    return value.to_bytes(32, "big")


def _word_address(name: str, value: str) -> bytes:
    try:
        return b"\x00" * 12 + to_canonical_address(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} is not an Ethereum address: {value!r}") from exc


def passport_domain_separator(chain_id: int, passport: str) -> bytes:
    """Domain separator of the ProductPassport deployed at address `passport` on `chain_id`."""
    return keccak(
        keccak(CONTRACT_DOMAIN_TYPE.encode())
        + keccak(PASSPORT_DOMAIN_NAME.encode())
        + keccak(PASSPORT_DOMAIN_VERSION.encode())
        + _word_uint("chain_id", chain_id)
        + _word_address("passport", passport)
    )


def transfer_consent_digest(
    *, chain_id: int, passport: str, to: str, token_id: int, nonce: int, deadline: int
) -> bytes:
    """Digest an owner signs to let the operator move passport `token_id` to `to`."""
    struct = (
        _TRANSFER_CONSENT_TYPEHASH
        + _word_address("to", to)
        + _word_uint("token_id", token_id)
        + _word_uint("nonce", nonce)
        + _word_uint("deadline", deadline)
    )
    return typed_digest(passport_domain_separator(chain_id, passport), keccak(struct))


def transfer_consent_typed_data(
    *, chain_id: int, passport: str, to: str, token_id: int, nonce: int, deadline: int
) -> dict:
    """The same consent as a full EIP-712 message, for wallets (eth_signTypedData_v4)."""
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "TransferConsent": [
                {"name": "to", "type": "address"},
                {"name": "tokenId", "type": "uint256"},
                {"name": "nonce", "type": "uint256"},
                {"name": "deadline", "type": "uint256"},
            ],
        },
        "primaryType": "TransferConsent",
        "domain": {
            "name": PASSPORT_DOMAIN_NAME,
            "version": PASSPORT_DOMAIN_VERSION,
            "chainId": chain_id,
            "verifyingContract": to_checksum_address(passport),
        },
        "message": {
            "to": to_checksum_address(to),
            "tokenId": token_id,
            "nonce": nonce,
            "deadline": deadline,
        },
    }


def sign_transfer_consent(
    private_key: bytes,
    *,
    chain_id: int,
    passport: str,
    to: str,
    token_id: int,
    nonce: int,
    deadline: int,
) -> bytes:
    """Owner's 65-byte consent signature, as ProductPassport.transferWithConsent expects."""
    digest = transfer_consent_digest(
        chain_id=chain_id,
        passport=passport,
        to=to,
        token_id=token_id,
        nonce=nonce,
        deadline=deadline,
    )
    return sign_digest(private_key, digest)


def recover_transfer_consent_signer(
    signature: bytes,
    *,
    chain_id: int,
    passport: str,
    to: str,
    token_id: int,
    nonce: int,
    deadline: int,
) -> str:
    """Address that signed this consent; the contract requires it to be the current owner."""
    digest = transfer_consent_digest(
        chain_id=chain_id,
        passport=passport,
        to=to,
        token_id=token_id,
        nonce=nonce,
        deadline=deadline,
    )
    return recover_digest_signer(digest, signature)
