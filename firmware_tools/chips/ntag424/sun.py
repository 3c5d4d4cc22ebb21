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
   the file text from SDMMACInputOffset to SDMMACOffset (AN12196 §3.4 Tables 4 and 5:
   empty when they are equal, ``<enc hex>&cmac=`` in its encrypted example).
4. SDMENCFileData: AES-128-CBC under KSesSDMFileReadENC with
   IV = AES-ECB(KSesSDMFileReadENC, SDMReadCtr || 13 zero bytes) (AN12196 §3.4 Table 3).

This project's tags set SDMMACInputOffset to the "/" that starts the GS1 path (``/01/``),
so the MAC covers the URL from the GTIN up to and including ``cmac=``: a tap cannot be
moved under another GTIN or serial. `verify_sun_url` takes that span from the URL text as
received, and says which span its MAC covers (`SunResult.mac_input_start`); a MAC over
the older layouts above is still recognized, but then only the chip is authenticated.

Key epochs (`KeyEpoch`) pair a meta-read key with its file-key rule, so that rotating a
supplier's master key rotates both; a rule that refuses a UID fails that epoch with a
cause (`FileKeyRefused`), never with the rule's own exception.

>>> result = verify_sun("EF963FF7828658A599F3041510671E88", "94EED9EE65337086",
...                     [bytes(16)], bytes(16))
>>> result.uid.hex().upper(), result.counter
('04DE5F1EACC040', 61)
"""

from __future__ import annotations

import hmac
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

if TYPE_CHECKING:
    from firmware_tools.formats.gs1 import DigitalLink

from firmware_tools.chips.ntag424 import ev2
from firmware_tools.errors import (
    BadCmac,
    BadLength,
    CounterExhausted,
    FileKeyRefused,
    GS1Error,
    InvalidTag,
    MalformedSun,
    ReplayedCounter,
    UnknownPiccDataTag,
)

__all__ = [
    "COUNTER_MAX",
    "PICC_DATA_TAG_UID_CTR",
    "FileKeyRule",
    "KeyEpoch",
    "SunResult",
    "decrypt_file_data",
    "decrypt_picc_data",
    "encrypt_file_data",
    "gs1_path_start",
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
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")

# A file-key rule: the tag's SDM file-read key from its UID; None (or raising) refuses it.
FileKeyRule = Callable[[bytes], "bytes | None"]


@dataclass(frozen=True, slots=True)
class KeyEpoch:
    """One period of a supplier's SUN keys: the meta-read key and its file-key rule.

    `number` names the epoch in results and in replay stores (last counter per UID and
    epoch); the rule may refuse a UID by returning None or raising.
    """

    meta_read_key: bytes = field(repr=False)
    file_read_key: FileKeyRule = field(repr=False)
    number: int = 0

    @classmethod
    def from_master(cls, master_key: bytes, number: int = 0) -> KeyEpoch:
        """The epoch of one SUN master key: both keys derived from it (see `diversify`)."""
        from firmware_tools.chips.ntag424.diversify import sun_file_read_key, sun_meta_read_key

        return cls(sun_meta_read_key(master_key), partial(sun_file_read_key, master_key), number)


@dataclass(frozen=True, slots=True)
class SunResult:
    """A SUN message that verified: who the tag is, its read counter, its file data.

    `mac_input_start` is the index in the URL of the first character the MAC covers (up
    to ``cmac=``), or None when the MAC covers an older layout (empty, or from ``enc``).
    """

    uid: bytes
    counter: int
    file_data: bytes | None
    key_epoch: int
    mac_input_start: int | None = None


# cryptography's cipher contexts are not thread-safe, so each thread keeps its own.
# ECB contexts are stateless between update() calls, which is what makes caching them
# per key sound. Only meta-read keys are cached: a supplier has a few. File-read keys are
# per tag, so a cache of their CMAC objects would never hit while verifying fresh tags.
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


def _cmac(key: bytes, data: bytes) -> bytes:
    mac = CMAC(algorithms.AES(key))
    mac.update(data)
    return mac.finalize()


def _parse_hex(value: str, length: int | None, name: str) -> bytes:
    """Hex of an exact byte length (or any whole number of AES blocks when None)."""
    if not isinstance(value, str):
        raise MalformedSun(f"{name} must be a hex string", "bad_hex")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raw = None
    if raw is None or len(value) != 2 * len(raw):
        bad = next((c for c in value if c not in _HEX_DIGITS), None)
        if bad is not None:
            raise MalformedSun(f"{name} has {bad!r}, which is not a hex digit", "bad_hex")
        raise BadLength(f"{name} has an odd number of hex digits ({len(value)})")
    if length is not None and len(raw) != length:
        raise BadLength(f"{name} must be {2 * length} hex digits, got {len(value)}")
    if length is None and (not raw or len(raw) % 16):
        raise BadLength(f"{name} must be a non-empty multiple of 32 hex digits, got {len(value)}")
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
    return ev2.truncate_mac(_cmac(session, mac_input))


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
    """The MAC input of AN12196's layouts: ``<enc>&cmac=`` (Table 5) or empty (Table 4)."""
    return b"" if enc_hex is None else (enc_hex + "&cmac=").encode("ascii")


def _epochs(
    keys: Sequence[bytes] | Sequence[KeyEpoch], file_read_key: bytes | FileKeyRule | None
) -> list[KeyEpoch]:
    """Key epochs from either epochs or meta-read keys sharing one file key (or rule)."""
    if not keys:
        raise ValueError("at least one key epoch (meta-read key) is needed")
    if isinstance(keys[0], KeyEpoch):
        if file_read_key is not None:
            raise ValueError("key epochs carry their own file-key rules")
        return list(keys)  # type: ignore[arg-type]
    if file_read_key is None:
        raise ValueError("meta-read keys need a file-read key (or rule)")
    if callable(file_read_key):
        rule = file_read_key
    else:
        key = bytes(file_read_key)

        def rule(uid: bytes) -> bytes:
            return key

    return [KeyEpoch(meta, rule, number) for number, meta in enumerate(keys)]  # type: ignore[arg-type]


def _file_key(epoch: KeyEpoch, uid: bytes) -> bytes | str:
    """The epoch's file-read key for `uid`, or the words of its refusal."""
    try:
        key = epoch.file_read_key(uid)
    except Exception as exc:  # the rule is the caller's code: its refusal is a cause
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if key is None:
        return "no key for this UID"
    if not isinstance(key, bytes | bytearray) or len(key) != 16:
        return "the rule did not give a 16-byte key"
    return bytes(key)


def _verify(
    picc: bytes,
    mac: bytes,
    epochs: Sequence[KeyEpoch],
    mac_inputs: Sequence[bytes],
    enc: bytes | None,
    last_counter: int | None,
) -> tuple[SunResult, int]:
    """The result and the index of the MAC input that matched, or an InvalidTag."""
    failures: list[InvalidTag] = []
    for epoch in epochs:
        picc_plain = decrypt_picc_data(epoch.meta_read_key, picc)
        if picc_plain is None:
            failures.append(
                UnknownPiccDataTag(
                    f"epoch {epoch.number}: PICC data does not decrypt to a known PICCDataTag"
                )
            )
            continue
        # A wrong key still yields 0xC7 once in 256 tries, so a tag byte alone does not
        # pick the epoch: the MAC does.
        uid, counter = picc_plain
        key = _file_key(epoch, uid)
        if isinstance(key, str):
            failures.append(
                FileKeyRefused(
                    f"epoch {epoch.number}: the file-key rule refuses UID {uid.hex().upper()}"
                    f" ({key})"
                )
            )
            continue
        session = _cmac(key, _SV2_PREFIX + uid + counter.to_bytes(3, "little"))
        for index, data in enumerate(mac_inputs):
            if hmac.compare_digest(ev2.truncate_mac(_cmac(session, data)), mac):
                _check_counter(uid, counter, last_counter)
                file_data = None if enc is None else decrypt_file_data(key, uid, counter, enc)
                return SunResult(uid, counter, file_data, epoch.number), index
        failures.append(BadCmac(f"epoch {epoch.number}: the SUN MAC does not verify"))
    raise _summary(failures)


def _summary(failures: list[InvalidTag]) -> InvalidTag:
    """One error for all epochs: the cause that got furthest, with every epoch's words."""
    for kind, words in (
        (
            BadCmac,
            "SUN MAC does not verify: the URL was altered, or the file-read key or MAC offsets"
            " are wrong",
        ),
        (FileKeyRefused, "no key epoch's file-key rule accepts this tag's UID"),
        (
            UnknownPiccDataTag,
            "PICC data does not decrypt to a known PICCDataTag under any meta-read key: "
            "likely the wrong meta-read key",
        ),
    ):
        if any(isinstance(failure, kind) for failure in failures):
            if len(failures) == 1 and kind is FileKeyRefused:
                return failures[0]
            detail = "; ".join(str(failure) for failure in failures)
            return kind(f"{words} ({detail})" if len(failures) > 1 else words)
    raise AssertionError("no epoch was tried")


def verify_sun(
    picc_data_hex: str,
    cmac_hex: str,
    meta_read_keys: Sequence[bytes] | Sequence[KeyEpoch],
    file_read_key: bytes | FileKeyRule | None = None,
    enc_hex: str | None = None,
    mac_input: bytes | None = None,
    last_counter: int | None = None,
) -> SunResult:
    """Check one SUN message; raise an `InvalidTag` subclass that names the cause.

    `meta_read_keys` are key epochs tried in order: `KeyEpoch` values, or meta-read keys
    that share `file_read_key` (a key, or a rule from the UID: a per-tag diversified key).
    `mac_input` defaults to the layout `sun_mac_input` describes. With `last_counter`,
    a counter that is not strictly greater raises `ReplayedCounter`.
    """
    picc = _parse_hex(picc_data_hex, 16, "picc_data")
    mac = _parse_hex(cmac_hex, 8, "cmac")
    enc = None if enc_hex is None else _parse_hex(enc_hex, None, "enc")
    if mac_input is None:
        mac_input = sun_mac_input(enc_hex)
    epochs = _epochs(meta_read_keys, file_read_key)
    return _verify(picc, mac, epochs, (mac_input,), enc, last_counter)[0]


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
                raise MalformedSun(f"SUN parameter {name} appears twice", "duplicate_parameter")
            spans[name] = (position + len(name) + 1, stop)
        position = stop + 1
    return spans


def gs1_path_start(url: str, link: DigitalLink | None = None) -> int | None:
    """Index in `url` of the "/" that starts its GS1 path (``/01/``), None if it has none.

    Taken from where the strict Digital Link parser finds the primary key (`link`, parsed
    here when not given), so the GTIN and serial a verifier reports are the ones inside
    the MAC input. Counted in the raw text, so a parser that normalizes the host (case,
    IDNA) does not shift it.

    >>> gs1_path_start("https://id.example.com/prefix/01/09521234543213/21/A1?cmac=00")
    29
    """
    if link is None:
        from firmware_tools.formats.gs1 import parse_digital_link

        try:
            link = parse_digital_link(url)
        except GS1Error:
            return None
    # The base is scheme "://" authority ["/" prefix segments]: the primary key's "/" is
    # the one after as many "/" as the base has past its "://".
    position = url.find("://")
    if position < 0:
        return None
    position += 2
    for _ in range(link.base.count("/") - 1):
        position = url.find("/", position + 1)
        if position < 0:
            return None
    return position if url.startswith("/01/", position) else None


def verify_sun_url(
    url: str,
    meta_read_keys: Sequence[bytes] | Sequence[KeyEpoch],
    file_read_key: bytes | FileKeyRule | None = None,
    last_counter: int | None = None,
    mac_input_start: int | None = None,
) -> SunResult:
    """Verify the SUN URL a tag returned; the MAC input is taken from the URL text.

    The MAC input is the URL text, exactly as received, from `mac_input_start` (default:
    the start of the GS1 path, `gs1_path_start`) up to and including ``cmac=``. A MAC
    over AN12196's layouts (``<enc>&cmac=``, or empty) also verifies, with
    `SunResult.mac_input_start` None: it authenticates the chip, not the URL.
    """
    spans = _query_values(url)
    for name in ("picc_data", "cmac"):
        if name not in spans:
            raise MalformedSun(f"SUN parameter {name} is missing from the URL", "missing_parameter")
    picc_start, picc_end = spans["picc_data"]
    cmac_start, cmac_end = spans["cmac"]
    enc_hex = None
    if "enc" in spans:
        enc_start, enc_end = spans["enc"]
        enc_hex = url[enc_start:enc_end]
        if not enc_start < cmac_start:
            raise MalformedSun("SUN parameter enc must come before cmac", "parameter_order")
    picc = _parse_hex(url[picc_start:picc_end], 16, "picc_data")
    mac = _parse_hex(url[cmac_start:cmac_end], 8, "cmac")
    enc = None if enc_hex is None else _parse_hex(enc_hex, None, "enc")
    if mac_input_start is None:
        mac_input_start = gs1_path_start(url)
    legacy = b"" if enc_hex is None else url[enc_start:cmac_start].encode("utf-8", "surrogatepass")
    inputs = [legacy]
    if mac_input_start is not None and 0 <= mac_input_start < cmac_start:
        # The URL as received, byte for byte: no decoding or re-encoding of any part.
        inputs.insert(0, url[mac_input_start:cmac_start].encode("utf-8", "surrogatepass"))
    result, index = _verify(
        picc, mac, _epochs(meta_read_keys, file_read_key), inputs, enc, last_counter
    )
    if index == 0 and len(inputs) == 2:
        return SunResult(
            result.uid, result.counter, result.file_data, result.key_epoch, mac_input_start
        )
    return result
