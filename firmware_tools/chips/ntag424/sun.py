"""NTAG 424 DNA Secure Unique NFC (SUN) verification.

Pure: no I/O; keys are arguments.

A tapped NTAG 424 DNA whose NDEF file has Secure Dynamic Messaging (SDM) enabled returns
a URL such as ``...?picc_data=<32 hex>&cmac=<16 hex>`` (optionally ``&enc=<hex>`` before
``cmac``). `verify_sun_url` takes that URL apart; `verify_sun` checks the pieces:

1. PICC data: AES-128-CBC, zero IV, under the SDM meta-read key (NT4H2421Gx §9.3,
   AN12196 §3.4 Table 2). The plaintext starts with PICCDataTag 0xC7 (UID and read counter
   mirrored, UID length 7), then the 7-byte UID, then SDMReadCtr (3 bytes LSB first),
   then random padding.
2. Session keys from the SDM file-read key (NT4H2421Gx §9.3, AN12196 §3.3 Table 1):
   SV1 = C33C 0001 0080 || UID || SDMReadCtr, SV2 = 3CC3 0001 0080 || UID || SDMReadCtr,
   KSesSDMFileReadENC = CMAC(K, SV1), KSesSDMFileReadMAC = CMAC(K, SV2).
3. SDMMAC = the odd-indexed bytes of CMAC(KSesSDMFileReadMAC, input), where the input is
   the file text from SDMMACInputOffset to SDMMACOffset (empty when they are equal;
   ``<enc hex>&cmac=`` when encrypted file data is mirrored) (AN12196 §3.4 Tables 4 and 5).
4. SDMENCFileData: AES-128-CBC under KSesSDMFileReadENC with
   IV = AES-ECB(KSesSDMFileReadENC, SDMReadCtr || 13 zero bytes) (AN12196 §3.4 Table 3).

>>> result = verify_sun("EF963FF7828658A599F3041510671E88", "94EED9EE65337086",
...                     [bytes(16)], bytes(16))
>>> result.uid.hex().upper(), result.counter
('04DE5F1EACC040', 61)
"""

from __future__ import annotations

import hmac
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

from firmware_tools.chips.ntag424 import ev2
from firmware_tools.errors import (
    BadCmac,
    BadLength,
    CounterExhausted,
    ReplayedCounter,
    UnknownPiccDataTag,
)

__all__ = [
    "COUNTER_MAX",
    "PICC_DATA_TAG_UID_CTR",
    "SunResult",
    "decrypt_file_data",
    "decrypt_picc_data",
    "encrypt_file_data",
    "sdm_mac",
    "sdm_session_keys",
    "sun_mac_input",
    "verify_sun",
    "verify_sun_plain",
    "verify_sun_url",
]

# NT4H2421Gx §9.3 (PICCDataTag): bit 7 UID mirrored, bit 6 SDMReadCtr mirrored, bits 3..0
# the UID length (7). Only this form is accepted: a SUN message without the counter
# could be replayed.
PICC_DATA_TAG_UID_CTR = 0xC7
UID_LENGTH = 7
COUNTER_MAX = 0xFFFFFF

# AN12196 §3.3 Table 1: session vector labels for the SDM file-read session keys.
_SV1_PREFIX = bytes.fromhex("C33C00010080")
_SV2_PREFIX = bytes.fromhex("3CC300010080")
_ZERO_BLOCK = bytes(16)


@dataclass(frozen=True, slots=True)
class SunResult:
    """A SUN message that verified: who the tag is, its read counter, its file data."""

    uid: bytes
    counter: int
    file_data: bytes | None
    key_epoch: int


# cryptography's cipher contexts are not thread-safe, so each thread keeps its own.
# ECB contexts are stateless between update() calls, which is what makes caching them
# per key sound; the CMAC objects are only ever copied, never updated in place.
_local = threading.local()


def _ecb_decryptor(key: bytes):
    cache = _local.__dict__.setdefault("ecb_dec", {})
    key = bytes(key)
    ctx = cache.get(key)
    if ctx is None:
        if len(cache) > 256:
            cache.clear()
        ctx = cache[key] = Cipher(algorithms.AES(key), modes.ECB()).decryptor()
    return ctx


def _cmac_base(key: bytes) -> CMAC:
    cache = _local.__dict__.setdefault("cmac", {})
    key = bytes(key)
    base = cache.get(key)
    if base is None:
        if len(cache) > 4096:
            cache.clear()
        base = cache[key] = CMAC(algorithms.AES(key))
    return base


def _cmac(key: bytes, data: bytes) -> bytes:
    mac = _cmac_base(key).copy()
    mac.update(data)
    return mac.finalize()


def _parse_hex(value: str, length: int | None, name: str) -> bytes:
    """Hex of an exact byte length (or any whole number of AES blocks when None)."""
    if not isinstance(value, str):
        raise BadLength(f"{name} must be a hex string")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise BadLength(f"{name} is not hex: {value[:40]!r}") from None
    if len(value) != 2 * len(raw):
        raise BadLength(f"{name} has whitespace or an odd length")
    if length is not None and len(raw) != length:
        raise BadLength(f"{name} must be {2 * length} hex characters, got {len(value)}")
    if length is None and (not raw or len(raw) % 16):
        raise BadLength(f"{name} must be a non-empty multiple of 32 hex characters")
    return raw


def decrypt_picc_data(meta_read_key: bytes, picc_data: bytes) -> tuple[bytes, int] | None:
    """(UID, SDMReadCtr) from 16 bytes of encrypted PICC data, or None without tag 0xC7."""
    # AN12196 Table 2: one block, CBC with a zero IV, which for one block is ECB.
    plain = _ecb_decryptor(meta_read_key).update(picc_data)
    if plain[0] != PICC_DATA_TAG_UID_CTR:
        return None
    return plain[1:8], int.from_bytes(plain[8:11], "little")


def sdm_session_keys(file_read_key: bytes, uid: bytes, counter: int) -> tuple[bytes, bytes]:
    """(KSesSDMFileReadENC, KSesSDMFileReadMAC) for one tap (AN12196 Table 1)."""
    tail = uid + counter.to_bytes(3, "little")
    return _cmac(file_read_key, _SV1_PREFIX + tail), _cmac(file_read_key, _SV2_PREFIX + tail)


def sdm_mac(file_read_key: bytes, uid: bytes, counter: int, mac_input: bytes) -> bytes:
    """The 8-byte SDMMAC a genuine tag computes (AN12196 Tables 4 and 5)."""
    session = _cmac(file_read_key, _SV2_PREFIX + uid + counter.to_bytes(3, "little"))
    return ev2.truncate_mac(ev2.aes_cmac(session, mac_input))


def _file_cipher(file_read_key: bytes, uid: bytes, counter: int) -> Cipher:
    enc_key = _cmac(file_read_key, _SV1_PREFIX + uid + counter.to_bytes(3, "little"))
    # AN12196 Table 3: IV = E(KSesSDMFileReadENC, SDMReadCtr || 13 zero bytes).
    iv_input = counter.to_bytes(3, "little") + bytes(13)
    iv = Cipher(algorithms.AES(enc_key), modes.ECB()).encryptor().update(iv_input)
    return Cipher(algorithms.AES(enc_key), modes.CBC(iv))


def decrypt_file_data(file_read_key: bytes, uid: bytes, counter: int, enc: bytes) -> bytes:
    """Plaintext of SDMENCFileData (whole AES blocks) (AN12196 Table 3)."""
    ctx = _file_cipher(file_read_key, uid, counter).decryptor()
    return ctx.update(enc) + ctx.finalize()


def encrypt_file_data(file_read_key: bytes, uid: bytes, counter: int, plain: bytes) -> bytes:
    """SDMENCFileData as the chip computes it; `plain` is whole AES blocks."""
    ctx = _file_cipher(file_read_key, uid, counter).encryptor()
    return ctx.update(plain) + ctx.finalize()


def sun_mac_input(enc_hex: str | None) -> bytes:
    """The MAC input of the URL layout this project writes: ``<enc>&cmac=`` or empty."""
    return b"" if enc_hex is None else (enc_hex + "&cmac=").encode("ascii")


def verify_sun(
    picc_data_hex: str,
    cmac_hex: str,
    meta_read_keys: Sequence[bytes],
    file_read_key: bytes | Callable[[bytes], bytes],
    enc_hex: str | None = None,
    mac_input: bytes | None = None,
    last_counter: int | None = None,
) -> SunResult:
    """Check one SUN message; raise an `InvalidTag` subclass that names the cause.

    `meta_read_keys` are tried in order (key epochs); `file_read_key` may be a function
    of the UID (a per-tag diversified key; it may raise to refuse an unknown UID).
    `mac_input` defaults to the layout `sun_mac_input` describes. With `last_counter`,
    a counter that is not strictly greater raises `ReplayedCounter`.
    """
    picc = _parse_hex(picc_data_hex, 16, "picc_data")
    mac = _parse_hex(cmac_hex, 8, "cmac")
    enc = None if enc_hex is None else _parse_hex(enc_hex, None, "enc")
    if mac_input is None:
        mac_input = sun_mac_input(enc_hex)
    if not meta_read_keys:
        raise ValueError("at least one meta-read key is needed")

    decrypted_any = False
    for epoch, meta_key in enumerate(meta_read_keys):
        picc_plain = decrypt_picc_data(meta_key, picc)
        if picc_plain is None:
            continue
        # A wrong key still yields 0xC7 once in 256 tries, so a tag byte alone does not
        # pick the epoch: the MAC does.
        decrypted_any = True
        uid, counter = picc_plain
        key = file_read_key(uid) if callable(file_read_key) else file_read_key
        if hmac.compare_digest(sdm_mac(key, uid, counter, mac_input), mac):
            _check_counter(uid, counter, last_counter)
            file_data = None if enc is None else decrypt_file_data(key, uid, counter, enc)
            return SunResult(uid=uid, counter=counter, file_data=file_data, key_epoch=epoch)
    if decrypted_any:
        raise BadCmac("SUN MAC does not verify: likely the wrong file-read key or MAC offsets")
    raise UnknownPiccDataTag(
        "PICC data does not decrypt to a known PICCDataTag under any meta-read key: "
        "likely the wrong meta-read key"
    )


def verify_sun_plain(
    uid_hex: str,
    counter_hex: str,
    cmac_hex: str,
    file_read_key: bytes | Callable[[bytes], bytes],
    last_counter: int | None = None,
) -> SunResult:
    """Check a SUN message with the UID and counter mirrored in plain (no meta-read key).

    The counter is mirrored as 6 hex characters MSB first (NT4H2421Gx §9.3); the MAC
    input is empty. Plain mirroring reveals the UID to anyone; `verify_sun` is preferred.
    """
    uid = _parse_hex(uid_hex, UID_LENGTH, "uid")
    counter = int.from_bytes(_parse_hex(counter_hex, 3, "ctr"), "big")
    mac = _parse_hex(cmac_hex, 8, "cmac")
    key = file_read_key(uid) if callable(file_read_key) else file_read_key
    if not hmac.compare_digest(sdm_mac(key, uid, counter, b""), mac):
        raise BadCmac("SUN MAC does not verify: likely the wrong file-read key or MAC offsets")
    _check_counter(uid, counter, last_counter)
    return SunResult(uid=uid, counter=counter, file_data=None, key_epoch=0)


def _check_counter(uid: bytes, counter: int, last_counter: int | None) -> None:
    if counter >= COUNTER_MAX:
        raise CounterExhausted(f"tag {uid.hex().upper()} read counter is exhausted (FFFFFF)")
    if last_counter is not None and counter <= last_counter:
        raise ReplayedCounter(
            f"tag {uid.hex().upper()} counter {counter} is not above the last accepted "
            f"{last_counter}: a replayed or cloned SUN message"
        )


def _query_values(url: str) -> dict[str, tuple[int, int]]:
    """Name -> (start, end) of each raw query value inside `url`."""
    start = url.find("?")
    if start < 0:
        return {}
    end = url.find("#", start)
    end = len(url) if end < 0 else end
    spans: dict[str, tuple[int, int]] = {}
    position = start + 1
    while position <= end:
        amp = url.find("&", position, end)
        stop = end if amp < 0 else amp
        name, sep, _ = url[position:stop].partition("=")
        if sep:
            if name in spans:
                raise BadLength(f"SUN parameter {name} appears twice")
            spans[name] = (position + len(name) + 1, stop)
        position = stop + 1
    return spans


def verify_sun_url(
    url: str,
    meta_read_keys: Sequence[bytes],
    file_read_key: bytes | Callable[[bytes], bytes],
    last_counter: int | None = None,
) -> SunResult:
    """Verify the SUN URL a tag returned; the MAC input is taken from the URL text.

    With ``enc``, the MAC input runs from the first character of the ``enc`` value up to
    the first character of the ``cmac`` value (``<enc>&cmac=``, the layout of AN12196
    Table 5); without it, it is empty, as `ntag424_personalize` sets the offsets.
    """
    spans = _query_values(url)
    for name in ("picc_data", "cmac"):
        if name not in spans:
            raise BadLength(f"SUN parameter {name} is missing from the URL")
    picc_start, picc_end = spans["picc_data"]
    cmac_start, cmac_end = spans["cmac"]
    enc_hex = None
    mac_input = b""
    if "enc" in spans:
        enc_start, enc_end = spans["enc"]
        enc_hex = url[enc_start:enc_end]
        if not enc_start < cmac_start:
            raise BadLength("SUN parameter enc must come before cmac")
        mac_input = url[enc_start:cmac_start].encode("ascii", "replace")
    return verify_sun(
        url[picc_start:picc_end],
        url[cmac_start:cmac_end],
        meta_read_keys,
        file_read_key,
        enc_hex=enc_hex,
        mac_input=mac_input,
        last_counter=last_counter,
    )
