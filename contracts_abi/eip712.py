"""EIP-712 typed data shared by the API, the agent, the tag tools and the contracts.

Pure: no I/O; keys are arguments. Digests are computed directly from the type strings so
that a verifier can check thousands of labels a second (a GTIN's hash is cached: a verifier
sees few GTINs and many serials); tests cross-check every digest against eth-account's
general encoder.

Custody events (what a reader device signs; domain {name: "Provenance Custody",
version: "1"}, no chain id: the signature is checked off-chain and the event's digest is
what the salted Merkle leaf `contracts_abi.merkle.custody_leaf(digest, salt)` commits to)::

    CustodyEvent(
        bytes16 eventId,          the event's UUID, its 16 bytes in RFC 4122 order
        Item item,                Item(string gtin, string serial): GTIN-14 and serial
        string bizStep,           CBV business step, short name: "shipping", "receiving", ...
        string disposition,       CBV disposition, short name: "in_transit", "in_progress", ...
        string readPoint,         where it was read (an SGLN URI or the operator's own id)
        address fromParty,        the giver; the zero address when there is none
        address toParty,          the taker; the zero address when there is none
        uint64 eventTime,         seconds since 1970-01-01T00:00:00Z
        int16 eventTimeZoneOffset minutes east of UTC where it happened (EPCIS), -840..840
        bytes32 tagEvidence,      tag_evidence_digest() of the tag as read
        address device            the signing device's address
    )

The tag evidence digest is the EIP-712 struct hash of
`TagEvidence(string url,bytes uid,bytes originalitySignature)`:
`keccak256(abi.encode(TYPEHASH, keccak256(url), keccak256(uid), keccak256(signature)))`,
where `url` is the scanned URL exactly as read (UTF-8, not normalized; for NTAG 424 DNA with
its SUN parameters), and for NTAG 21x `uid` is the 7-byte chip UID and the signature the
chip's 32-byte NXP originality signature as read (READ_SIG); both are empty bytes for QR
labels and NTAG 424 DNA taps, whose URL carries all the evidence. Each part is hashed on its
own, so no byte can move from one part to another.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from coincurve import PrivateKey, PublicKey

try:  # safe-pysha3, when installed, hashes short inputs ~8x faster than eth_hash's default
    from sha3 import keccak_256

    def keccak(data: bytes) -> bytes:
        """Keccak-256 (Ethereum's, not SHA3-256)."""
        return keccak_256(data).digest()

except ImportError:
    from eth_hash.auto import keccak

_HEX_ADDRESS = re.compile(r"(?:0[xX])?([0-9a-fA-F]{40})")


# Addresses are handled here rather than with eth_utils, whose import pulls in pydantic and
# costs a reader device ~25 MB of its 60 MB (the results are the same; tests compare them).
def to_canonical_address(value: str | bytes) -> bytes:
    """The 20 bytes of an address given as 20 bytes or 40 hex digits (0x optional, any case).

    The case is not checked here (see firmware_tools.formats.qr.address_bytes for EIP-55).
    """
    if isinstance(value, bytes | bytearray):
        if len(value) == 20:
            return bytes(value)
        raise ValueError(f"an address is 20 bytes, got {len(value)}")
    if not isinstance(value, str):
        raise TypeError(f"an address is a hex string or 20 bytes, got {value!r}")
    match = _HEX_ADDRESS.fullmatch(value)
    if match is None:
        raise ValueError(f"an address is 40 hex digits, got {value!r}")
    return bytes.fromhex(match.group(1))


@lru_cache(maxsize=4096)
def _checksummed(raw: bytes) -> str:
    digits = raw.hex()
    hashed = keccak(digits.encode()).hex()
    return "0x" + "".join(
        char.upper() if int(nibble, 16) >= 8 else char
        for char, nibble in zip(digits, hashed[:40], strict=True)
    )


def to_checksum_address(value: str | bytes) -> str:
    """The EIP-55 mixed-case form of an address (20 bytes or 40 hex digits)."""
    return _checksummed(to_canonical_address(value))


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


def _contract_domain_separator(
    name: str, version: str, chain_id: int, contract: str, field: str
) -> bytes:
    """Separator of domain (name, version, chainId, verifyingContract); `field` names `contract`."""
    return keccak(
        keccak(CONTRACT_DOMAIN_TYPE.encode())
        + keccak(name.encode())
        + keccak(version.encode())
        + _word_uint("chain_id", chain_id)
        + _word_address(field, contract)
    )


def passport_domain_separator(chain_id: int, passport: str) -> bytes:
    """Domain separator of the ProductPassport deployed at address `passport` on `chain_id`."""
    return _contract_domain_separator(
        PASSPORT_DOMAIN_NAME, PASSPORT_DOMAIN_VERSION, chain_id, passport, "passport"
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


def _contract_domain_fields() -> list[dict[str, str]]:
    """The EIP712Domain fields of a domain bound to a chain and a contract (a fresh list)."""
    return [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ]


def transfer_consent_typed_data(
    *, chain_id: int, passport: str, to: str, token_id: int, nonce: int, deadline: int
) -> dict:
    """The same consent as a full EIP-712 message, for wallets (eth_signTypedData_v4)."""
    return {
        "types": {
            "EIP712Domain": _contract_domain_fields(),
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


# --- ProductPassport mint consent ------------------------------------------------------------
# The supplier's consent to mint an item's passport straight to its first owner; it uses the
# supplier's nonce sequence (the same as its transfer consents) in the contract.

MINT_CONSENT_TYPE = (
    "MintConsent(address to,uint256 tokenId,bytes32 tagCommitment,uint256 nonce,uint256 deadline)"
)
_MINT_CONSENT_TYPEHASH = keccak(MINT_CONSENT_TYPE.encode())


def mint_consent_digest(
    *,
    chain_id: int,
    passport: str,
    to: str,
    token_id: int,
    tag_commitment: bytes,
    nonce: int,
    deadline: int,
) -> bytes:
    """Digest a supplier signs to let the operator mint passport `token_id` to `to`."""
    if len(tag_commitment) != 32:
        raise ValueError(f"tag_commitment must be 32 bytes, got {len(tag_commitment)}")
    struct = (
        _MINT_CONSENT_TYPEHASH
        + _word_address("to", to)
        + _word_uint("token_id", token_id)
        + bytes(tag_commitment)
        + _word_uint("nonce", nonce)
        + _word_uint("deadline", deadline)
    )
    return typed_digest(passport_domain_separator(chain_id, passport), keccak(struct))


def sign_mint_consent(private_key: bytes, **fields: Any) -> bytes:
    """Supplier's 65-byte consent signature, as ProductPassport.mintWithConsent expects.

    `fields` are mint_consent_digest's keyword arguments.
    """
    return sign_digest(private_key, mint_consent_digest(**fields))


def recover_mint_consent_signer(signature: bytes, **fields: Any) -> str:
    """Address that signed this mint consent; the contract requires the GTIN's supplier."""
    return recover_digest_signer(mint_consent_digest(**fields), signature)


# --- Custody events (see the module docstring) ------------------------------------------------

CUSTODY_DOMAIN_NAME = "Provenance Custody"
CUSTODY_DOMAIN_VERSION = "1"
CUSTODY_DOMAIN_SEPARATOR = _domain_separator(CUSTODY_DOMAIN_NAME, CUSTODY_DOMAIN_VERSION)
ITEM_TYPE = "Item(string gtin,string serial)"
# EIP-712 encodeType: the primary type, then the types it references sorted by name.
CUSTODY_EVENT_TYPE = (
    "CustodyEvent(bytes16 eventId,Item item,string bizStep,string disposition,"
    "string readPoint,address fromParty,address toParty,uint64 eventTime,"
    "int16 eventTimeZoneOffset,bytes32 tagEvidence,address device)" + ITEM_TYPE
)
TAG_EVIDENCE_TYPE = "TagEvidence(string url,bytes uid,bytes originalitySignature)"
_ITEM_TYPEHASH = keccak(ITEM_TYPE.encode())
_CUSTODY_EVENT_TYPEHASH = keccak(CUSTODY_EVENT_TYPE.encode())
_TAG_EVIDENCE_TYPEHASH = keccak(TAG_EVIDENCE_TYPE.encode())
ZERO_ADDRESS = "0x" + "00" * 20
TIME_ZONE_OFFSET_LIMIT = 14 * 60  # UTC-14:00 to UTC+14:00, as ISO 8601 offsets in use


def tag_evidence_digest(url: str, uid: bytes = b"", originality_signature: bytes = b"") -> bytes:
    """The 32-byte digest of a tag as read: its URL, and for NTAG 21x its UID and signature."""
    return keccak(
        _TAG_EVIDENCE_TYPEHASH
        + keccak(url.encode())
        + keccak(bytes(uid))
        + keccak(bytes(originality_signature))
    )


def tag_evidence_typed_data(url: str, uid: bytes = b"", originality_signature: bytes = b"") -> dict:
    """The same evidence as an EIP-712 message (its struct hash is the digest), for tests."""
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
            ],
            "TagEvidence": [
                {"name": "url", "type": "string"},
                {"name": "uid", "type": "bytes"},
                {"name": "originalitySignature", "type": "bytes"},
            ],
        },
        "primaryType": "TagEvidence",
        "domain": {"name": CUSTODY_DOMAIN_NAME, "version": CUSTODY_DOMAIN_VERSION},
        "message": {
            "url": url,
            "uid": bytes(uid),
            "originalitySignature": bytes(originality_signature),
        },
    }


@dataclass(frozen=True, slots=True)
class CustodyEvent:
    """One custody event as a device signs it; times are UTC seconds plus the local offset."""

    event_id: uuid.UUID
    gtin: str
    serial: str
    biz_step: str
    disposition: str
    read_point: str
    from_party: str
    to_party: str
    event_time: int
    time_zone_offset: int
    tag_evidence: bytes
    device: str


def _word_int16(name: str, value: int) -> bytes:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if not -TIME_ZONE_OFFSET_LIMIT <= value <= TIME_ZONE_OFFSET_LIMIT:
        raise ValueError(f"{name} must be within ±{TIME_ZONE_OFFSET_LIMIT} minutes, got {value}")
    return value.to_bytes(32, "big", signed=True)  # sign-extended, as abi.encode does


def _event_fields(event: CustodyEvent) -> None:
    if not isinstance(event.event_id, uuid.UUID):
        raise ValueError(f"event_id must be a UUID, got {event.event_id!r}")
    if not isinstance(event.event_time, int) or not 0 <= event.event_time < 2**64:
        raise ValueError(f"event_time must be a uint64 of seconds, got {event.event_time!r}")
    if len(event.tag_evidence) != 32:
        raise ValueError(f"tag_evidence must be 32 bytes, got {len(event.tag_evidence)}")


def custody_event_digest(event: CustodyEvent) -> bytes:
    """The EIP-712 digest a device signs for `event`; a ValueError names a bad field."""
    _event_fields(event)
    item = keccak(_ITEM_TYPEHASH + _gtin_hash(event.gtin) + keccak(event.serial.encode()))
    struct = (
        _CUSTODY_EVENT_TYPEHASH
        + event.event_id.bytes
        + b"\x00" * 16  # bytesN is left-aligned in its word
        + item
        + keccak(event.biz_step.encode())
        + keccak(event.disposition.encode())
        + keccak(event.read_point.encode())
        + _word_address("from_party", event.from_party)
        + _word_address("to_party", event.to_party)
        + event.event_time.to_bytes(32, "big")
        + _word_int16("time_zone_offset", event.time_zone_offset)
        + bytes(event.tag_evidence)
        + _word_address("device", event.device)
    )
    return typed_digest(CUSTODY_DOMAIN_SEPARATOR, keccak(struct))


def custody_event_typed_data(event: CustodyEvent) -> dict:
    """The same event as a full EIP-712 message, for wallets and eth-account."""
    _event_fields(event)
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
            ],
            "CustodyEvent": [
                {"name": "eventId", "type": "bytes16"},
                {"name": "item", "type": "Item"},
                {"name": "bizStep", "type": "string"},
                {"name": "disposition", "type": "string"},
                {"name": "readPoint", "type": "string"},
                {"name": "fromParty", "type": "address"},
                {"name": "toParty", "type": "address"},
                {"name": "eventTime", "type": "uint64"},
                {"name": "eventTimeZoneOffset", "type": "int16"},
                {"name": "tagEvidence", "type": "bytes32"},
                {"name": "device", "type": "address"},
            ],
            "Item": [{"name": "gtin", "type": "string"}, {"name": "serial", "type": "string"}],
        },
        "primaryType": "CustodyEvent",
        "domain": {"name": CUSTODY_DOMAIN_NAME, "version": CUSTODY_DOMAIN_VERSION},
        "message": {
            "eventId": event.event_id.bytes,
            "item": {"gtin": event.gtin, "serial": event.serial},
            "bizStep": event.biz_step,
            "disposition": event.disposition,
            "readPoint": event.read_point,
            "fromParty": to_checksum_address(event.from_party),
            "toParty": to_checksum_address(event.to_party),
            "eventTime": event.event_time,
            "eventTimeZoneOffset": event.time_zone_offset,
            "tagEvidence": bytes(event.tag_evidence),
            "device": to_checksum_address(event.device),
        },
    }


def sign_custody_event(private_key: bytes, event: CustodyEvent) -> bytes:
    """The device's 65-byte signature over `event`."""
    return sign_digest(private_key, custody_event_digest(event))


def recover_custody_event_signer(signature: bytes, event: CustodyEvent) -> str:
    """Address that signed `event`; the API requires it to be `event.device`, registered."""
    return recover_digest_signer(custody_event_digest(event), signature)


# --- The service's verdict -------------------------------------------------------------------
# What the API signs with its operator key when it answers a verification, so that a buyer's
# browser can check that the verdict it shows is the service's, and (hasRole(OPERATOR_ROLE,
# signer) on the CustodyLedger) that the key is the one the chain trusts. An NTAG 424 DNA tap
# is checked with a symmetric key only the service holds: this signature is what the browser
# can check in its place. The domain binds the chain id and the CustodyLedger address::
#
#     EIP712Domain(name "Provenance Verdicts", version "1", chainId, verifyingContract: ledger)
#     TagVerdict(
#         string gtin,          GTIN-14 of the item checked
#         string serial,        its serial
#         string tagKind,       "qr_label", "ntag21x_url", "ntag424_sun"; "" if none was checked
#         string verdict,       the verdict the buyer reads: authentic, suspicious, ...
#         bytes32 reasonsHash,  reasons_hash() of the reasons the buyer reads, in order
#         uint64 checkedAt      seconds since 1970-01-01T00:00:00Z, rounded down
#     )
#
# reasonsHash is what EIP-712 makes of a `Reason[]` field, Reason(string code,string message):
# keccak256 of the reasons' struct hashes side by side (keccak256("") for none).

VERDICT_DOMAIN_NAME = "Provenance Verdicts"
VERDICT_DOMAIN_VERSION = "1"
REASON_TYPE = "Reason(string code,string message)"
TAG_VERDICT_TYPE = (
    "TagVerdict(string gtin,string serial,string tagKind,string verdict,bytes32 reasonsHash,"
    "uint64 checkedAt)"
)
_REASON_TYPEHASH = keccak(REASON_TYPE.encode())
_TAG_VERDICT_TYPEHASH = keccak(TAG_VERDICT_TYPE.encode())


@dataclass(frozen=True, slots=True)
class TagVerdict:
    """A verdict as the service signs it; `checked_at` in whole UTC seconds."""

    gtin: str
    serial: str
    tag_kind: str
    verdict: str
    reasons_hash: bytes
    checked_at: int


def reasons_hash(reasons: Sequence[tuple[str, str]]) -> bytes:
    """The 32-byte hash of (code, message) pairs: EIP-712's encoding of a `Reason[]`."""
    return keccak(
        b"".join(
            keccak(_REASON_TYPEHASH + keccak(code.encode()) + keccak(message.encode()))
            for code, message in reasons
        )
    )


def verdict_domain_separator(chain_id: int, ledger: str) -> bytes:
    """Domain separator of verdicts signed for the CustodyLedger at `ledger` on `chain_id`."""
    return _contract_domain_separator(
        VERDICT_DOMAIN_NAME, VERDICT_DOMAIN_VERSION, chain_id, ledger, "ledger"
    )


def tag_verdict_digest(verdict: TagVerdict, *, chain_id: int, ledger: str) -> bytes:
    """The EIP-712 digest the service signs for `verdict`; a ValueError names a bad field."""
    if len(verdict.reasons_hash) != 32:
        raise ValueError(f"reasons_hash must be 32 bytes, got {len(verdict.reasons_hash)}")
    if not isinstance(verdict.checked_at, int) or not 0 <= verdict.checked_at < 2**64:
        raise ValueError(f"checked_at must be a uint64 of seconds, got {verdict.checked_at!r}")
    struct = (
        _TAG_VERDICT_TYPEHASH
        + _gtin_hash(verdict.gtin)
        + keccak(verdict.serial.encode())
        + keccak(verdict.tag_kind.encode())
        + keccak(verdict.verdict.encode())
        + bytes(verdict.reasons_hash)
        + verdict.checked_at.to_bytes(32, "big")
    )
    return typed_digest(verdict_domain_separator(chain_id, ledger), keccak(struct))


def tag_verdict_typed_data(verdict: TagVerdict, *, chain_id: int, ledger: str) -> dict:
    """The same verdict as a full EIP-712 message, for wallets and eth-account."""
    return {
        "types": {
            "EIP712Domain": _contract_domain_fields(),
            "TagVerdict": [
                {"name": "gtin", "type": "string"},
                {"name": "serial", "type": "string"},
                {"name": "tagKind", "type": "string"},
                {"name": "verdict", "type": "string"},
                {"name": "reasonsHash", "type": "bytes32"},
                {"name": "checkedAt", "type": "uint64"},
            ],
        },
        "primaryType": "TagVerdict",
        "domain": {
            "name": VERDICT_DOMAIN_NAME,
            "version": VERDICT_DOMAIN_VERSION,
            "chainId": chain_id,
            "verifyingContract": to_checksum_address(ledger),
        },
        "message": {
            "gtin": verdict.gtin,
            "serial": verdict.serial,
            "tagKind": verdict.tag_kind,
            "verdict": verdict.verdict,
            "reasonsHash": bytes(verdict.reasons_hash),
            "checkedAt": verdict.checked_at,
        },
    }


def sign_tag_verdict(
    private_key: bytes, verdict: TagVerdict, *, chain_id: int, ledger: str
) -> bytes:
    """The service's 65-byte signature over `verdict`."""
    return sign_digest(private_key, tag_verdict_digest(verdict, chain_id=chain_id, ledger=ledger))


def recover_tag_verdict_signer(
    signature: bytes, verdict: TagVerdict, *, chain_id: int, ledger: str
) -> str:
    """Address that signed `verdict`; a browser requires it to hold OPERATOR_ROLE on `ledger`."""
    digest = tag_verdict_digest(verdict, chain_id=chain_id, ledger=ledger)
    return recover_digest_signer(digest, signature)
