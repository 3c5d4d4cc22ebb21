"""Turn a blank NTAG 424 DNA into a SUN tag: the APDU sequence and what it writes.

Talks to the tag only through a ``transceive(c_apdu) -> r_apdu`` function; keys and
randomness are arguments. Sources: NT4H2421Gx rev 3.0 (§10 commands, §9.3 SDM) and the
worked personalization of AN12196 §5.

Sequence (`personalize`):

1. ISOSelectFile of the NDEF application (DF name D2760000850101).
2. WriteData (0x8D, CommMode.Plain, factory access "write free") of the NDEF file 02:
   NLEN || one URI record whose SDM placeholders are ASCII '0'.
3. AuthenticateEV2First (0x71) with key 0 (factory: sixteen zero bytes).
4. GetCardUID (0x51, CommMode.Full): the real UID, from which the keys are derived.
5. ChangeFileSettings (0x5F, CommMode.Full) of file 02: SDM on, UID and read counter
   mirrored inside PICC data encrypted under key 1 (SDM meta-read), SDMMAC under key 2
   (SDM file-read); write and settings changes need key 0 from then on.
6. ChangeKey (0xC4, CommMode.Full) of keys 1..4, then of key 0 last, since changing the
   authenticated key ends the session.

Key roles: key 0 application master key, key 1 SDM meta-read key (shared by a supplier's
tags, because the verifier must decrypt PICC data before it knows the UID), key 2 SDM
file-read key (per tag, AN10922-diversified), keys 3 and 4 unused but diversified, so that
no factory key is left on the tag. See `tag_keys`.

>>> layout = sun_layout("https://id.example.com/01/{gtin}/21/{serial}"
...                     "?picc_data={picc_data}&cmac={cmac}",
...                     {"gtin": "09506000134352", "serial": "A1"})
>>> layout.url[-64:]
'picc_data=00000000000000000000000000000000&cmac=0000000000000000'
>>> layout.picc_data_offset, layout.mac_offset
(56, 94)
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from firmware_tools.chips.ntag424 import ev2
from firmware_tools.chips.ntag424.diversify import diversify_key, sun_file_read_key
from firmware_tools.errors import TagCommandError
from firmware_tools.formats import ndef

__all__ = [
    "NDEF_APP_DF_NAME",
    "NDEF_FILE_NO",
    "NDEF_FILE_SIZE",
    "PersonalizationSummary",
    "SunLayout",
    "authenticate_ev2_first",
    "build_ndef_file",
    "native_apdu",
    "personalize",
    "sdm_file_settings",
    "sun_layout",
    "tag_keys",
]

NDEF_APP_DF_NAME = bytes.fromhex("D2760000850101")
# ISOSelectFile by DF name, no FCI returned (NT4H2421Gx §10.9.1).
SELECT_NDEF_APPLICATION = (
    bytes([0x00, 0xA4, 0x04, 0x0C, len(NDEF_APP_DF_NAME)]) + NDEF_APP_DF_NAME + b"\x00"
)
NDEF_FILE_NO = 0x02
NDEF_FILE_SIZE = 256
KEY_META_READ = 1
KEY_FILE_READ = 2
ACCESS_FREE = 0xE
ACCESS_NEVER = 0xF
# A WriteData frame stays within the 128-byte frame the tag announces (ATS FSCI = 7).
WRITE_CHUNK = 96

# NFC Forum URI RTD: the abbreviations a URI record may start with.
_URI_PREFIXES = ((b"https://", 0x04), (b"http://", 0x03))
# SDM placeholders and the number of ASCII characters the tag mirrors into each
# (NT4H2421Gx §9.3: PICCData 16 bytes -> 32 hex, SDMMAC 8 bytes -> 16 hex).
_SDM_PLACEHOLDERS = {"picc_data": 32, "cmac": 16}
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True, slots=True)
class SunLayout:
    """Where the tag mirrors PICC data and the MAC, as offsets in the NDEF file."""

    url: str
    ndef_file: bytes
    picc_data_offset: int
    mac_input_offset: int
    mac_offset: int


@dataclass(frozen=True, slots=True)
class PersonalizationSummary:
    """What a personalization wrote: the UID, the SDM offsets, the key versions."""

    uid: bytes
    url: str
    picc_data_offset: int
    mac_input_offset: int
    mac_offset: int
    file_settings: bytes
    key_versions: tuple[int, ...]


def build_ndef_file(url: str) -> tuple[bytes, int]:
    """(NLEN || NDEF message with one URI record, file offset of the URL's first byte)."""
    raw = url.encode("ascii")
    code, rest = 0x00, raw
    for prefix, prefix_code in _URI_PREFIXES:
        if raw.startswith(prefix):
            code, rest = prefix_code, raw[len(prefix) :]
            break
    record = ndef.encode_record(ndef.TNF_WELL_KNOWN, b"U", bytes([code]) + rest)
    file = len(record).to_bytes(2, "big") + record
    if len(file) > NDEF_FILE_SIZE:
        raise ValueError(f"URL too long for the {NDEF_FILE_SIZE}-byte NDEF file")
    # The URL ends the file, so character i of `url` (past the abbreviated prefix) sits
    # at file offset len(file) - len(url) + i.
    return file, len(file) - len(raw)


def sun_layout(template: str, fields: Mapping[str, str]) -> SunLayout:
    """Fill a URL template; SDM placeholders ({picc_data}, {cmac}) become ASCII zeros."""
    positions: dict[str, int] = {}
    parts: list[str] = []
    length = 0
    cursor = 0
    for match in _PLACEHOLDER.finditer(template):
        literal = template[cursor : match.start()]
        parts.append(literal)
        length += len(literal)
        name = match.group(1)
        if name in _SDM_PLACEHOLDERS:
            if name in positions:
                raise ValueError(f"placeholder {{{name}}} appears twice")
            positions[name] = length
            value = "0" * _SDM_PLACEHOLDERS[name]
        elif name in fields:
            value = str(fields[name])
            if not value.isascii() or not value.isprintable() or any(c in value for c in " ?&#"):
                raise ValueError(f"field {name} is not URL-safe ASCII: {value!r}")
        else:
            raise ValueError(f"no value for placeholder {{{name}}}")
        parts.append(value)
        length += len(value)
        cursor = match.end()
    parts.append(template[cursor:])
    url = "".join(parts)
    for name in _SDM_PLACEHOLDERS:
        if name not in positions:
            raise ValueError(f"the template needs a {{{name}}} placeholder")
    if positions["picc_data"] + 32 > positions["cmac"]:
        raise ValueError("{picc_data} must come before {cmac}")
    ndef_file, url_start = build_ndef_file(url)
    mac_offset = url_start + positions["cmac"]
    return SunLayout(
        url=url,
        ndef_file=ndef_file,
        picc_data_offset=url_start + positions["picc_data"],
        # MAC input offset = MAC offset: the SDMMAC is over an empty input (AN12196
        # §3.4 Table 4), which `ntag424.verify_sun_url` assumes when there is no enc.
        mac_input_offset=mac_offset,
        mac_offset=mac_offset,
    )


def _u24(value: int) -> bytes:
    if not 0 <= value <= 0xFFFFFF:
        raise ValueError("offset does not fit 3 bytes")
    return value.to_bytes(3, "little")


def sdm_file_settings(
    layout: SunLayout,
    meta_read_key_no: int = KEY_META_READ,
    file_read_key_no: int = KEY_FILE_READ,
) -> bytes:
    """ChangeFileSettings data for file 02 (NT4H2421Gx §10.7.1 Table 69, AN12196 Table 18)."""
    file_option = 0x40  # SDM and mirroring enabled, CommMode.Plain
    # Access rights, 16 bits LSB first: Read | Write | ReadWrite | Change (bits 15..0).
    # Read free so that any phone gets the SUN URL; everything else needs key 0.
    access = (ACCESS_FREE << 12) | (0x0 << 8) | (0x0 << 4) | 0x0
    sdm_options = 0x80 | 0x40 | 0x01  # UID mirror, SDMReadCtr mirror, ASCII encoding
    # SDM access rights, LSB first: MetaRead | FileRead | RFU (F) | CtrRet (bits 15..0).
    sdm_access = (meta_read_key_no << 12) | (file_read_key_no << 8) | (0xF << 4) | ACCESS_NEVER
    return (
        bytes([file_option])
        + access.to_bytes(2, "little")
        + bytes([sdm_options])
        + sdm_access.to_bytes(2, "little")
        + _u24(layout.picc_data_offset)  # PICCDataOffset, as MetaRead is a key
        + _u24(layout.mac_input_offset)  # SDMMACInputOffset
        + _u24(layout.mac_offset)  # SDMMACOffset
    )


def tag_keys(
    master_key: bytes, meta_read_key: bytes, uid: bytes
) -> tuple[bytes, bytes, bytes, bytes, bytes]:
    """The five application keys of one tag (roles in the module docstring)."""
    return (
        diversify_key(master_key, uid, 0),
        meta_read_key,
        sun_file_read_key(master_key, uid),
        diversify_key(master_key, uid, 3),
        diversify_key(master_key, uid, 4),
    )


def native_apdu(cmd: int, data: bytes = b"") -> bytes:
    """A native command wrapped in ISO 7816-4: 90 cmd 00 00 [Lc data] 00 (NT4H2421Gx §8)."""
    if len(data) > 0xFF:
        raise ValueError("command data longer than a short APDU")
    body = bytes([len(data)]) + data if data else b""
    return bytes([0x90, cmd, 0x00, 0x00]) + body + b"\x00"


Transceive = Callable[[bytes], bytes]


def _native(transceive: Transceive, cmd: int, data: bytes, what: str) -> tuple[int, bytes]:
    """(status, data) of a native command; any status but 00 or AF raises."""
    response = transceive(native_apdu(cmd, data))
    if len(response) < 2 or response[-2] != 0x91 or response[-1] not in (0x00, 0xAF):
        sw = int.from_bytes(response[-2:], "big") if len(response) >= 2 else None
        raise TagCommandError(f"{what} failed with status {response[-2:].hex().upper()}", sw)
    return response[-1], response[:-2]


def authenticate_ev2_first(
    transceive: Transceive,
    key_no: int,
    key: bytes,
    random_bytes: Callable[[int], bytes] = os.urandom,
) -> ev2.Ev2Session:
    """AuthenticateEV2First with one key (NT4H2421Gx §10.4.1, AN12196 Table 14)."""
    status, enc_rnd_b = _native(
        transceive, ev2.CMD_AUTHENTICATE_EV2_FIRST, bytes([key_no, 0x00]), "AuthenticateEV2First"
    )
    if status != 0xAF:
        raise TagCommandError("AuthenticateEV2First: the tag skipped the challenge")
    rnd_a = random_bytes(16)
    try:
        part2, rnd_b = ev2.auth_part2(key, enc_rnd_b, rnd_a)
        _, answer = _native(transceive, ev2.CMD_ADDITIONAL_FRAME, part2, "AuthenticateEV2First")
        return ev2.finish_auth(key, key_no, rnd_a, rnd_b, answer)
    except ev2.Ev2Error as exc:
        raise TagCommandError(f"AuthenticateEV2First: {exc}") from exc


def _full(
    transceive: Transceive,
    session: ev2.Ev2Session,
    cmd: int,
    header: bytes,
    data: bytes,
    what: str,
    response_mode: str = "full",
) -> tuple[ev2.Ev2Session, bytes]:
    """One CommMode.Full command; (the advanced session, plain response data)."""
    field = ev2.wrap_command_full(session, cmd, header, data)
    status, answer = _native(transceive, cmd, field, what)
    try:
        if response_mode == "full":
            plain = ev2.unwrap_response_full(session, status, answer)
        elif response_mode == "mac":
            plain = ev2.unwrap_response_mac(session, status, answer)
        else:  # the session ended with the command (ChangeKey of the auth key)
            plain = answer
    except ev2.Ev2Error as exc:
        raise TagCommandError(f"{what}: {exc}") from exc
    return session.advanced(), plain


def personalize(
    transceive: Transceive,
    url_template: str,
    fields: Mapping[str, str],
    keys_for_uid: Callable[[bytes], Sequence[bytes]],
    *,
    current_keys: Sequence[bytes] = (bytes(16),) * 5,
    key_version: int = 1,
    random_bytes: Callable[[int], bytes] = os.urandom,
) -> PersonalizationSummary:
    """Personalize one tag in the field of `transceive` (sequence in the module docstring).

    `keys_for_uid(uid)` gives the five new keys (see `tag_keys`); `current_keys` are the
    keys on the tag now (the factory's zeros on a blank tag).
    """
    layout = sun_layout(url_template, fields)
    settings = sdm_file_settings(layout)

    # ISOSelectFile by DF name, no FCI wanted (NT4H2421Gx §10.9.1).
    select = SELECT_NDEF_APPLICATION
    response = transceive(select)
    if response[-2:] != b"\x90\x00":
        raise TagCommandError(
            f"ISOSelectFile of the NDEF application failed: {response[-2:].hex().upper()}",
            int.from_bytes(response[-2:], "big") if len(response) >= 2 else None,
        )

    # The factory NDEF file is "write free", CommMode.Plain: write before authenticating.
    for start in range(0, len(layout.ndef_file), WRITE_CHUNK):
        chunk = layout.ndef_file[start : start + WRITE_CHUNK]
        header = bytes([NDEF_FILE_NO]) + _u24(start) + _u24(len(chunk))
        _native(transceive, ev2.CMD_WRITE_DATA, header + chunk, "WriteData of the NDEF file")

    session = authenticate_ev2_first(transceive, 0, current_keys[0], random_bytes)
    session, uid = _full(transceive, session, ev2.CMD_GET_CARD_UID, b"", b"", "GetCardUID")
    new_keys = list(keys_for_uid(uid))
    if len(new_keys) != 5 or any(len(k) != 16 for k in new_keys):
        raise ValueError("keys_for_uid must give five 16-byte keys")

    session, _ = _full(
        transceive,
        session,
        ev2.CMD_CHANGE_FILE_SETTINGS,
        bytes([NDEF_FILE_NO]),
        settings,
        "ChangeFileSettings",
        response_mode="mac",
    )
    for key_no in (1, 2, 3, 4):
        data = ev2.change_key_data(key_no, 0, current_keys[key_no], new_keys[key_no], key_version)
        session, _ = _full(
            transceive,
            session,
            ev2.CMD_CHANGE_KEY,
            bytes([key_no]),
            data,
            f"ChangeKey {key_no}",
            response_mode="mac",
        )
    # AN12196 Table 26: changing the authenticated key ends the session; the answer is a
    # bare 9100 without a MAC.
    data = ev2.change_key_data(0, 0, current_keys[0], new_keys[0], key_version)
    _full(transceive, session, ev2.CMD_CHANGE_KEY, b"\x00", data, "ChangeKey 0", "none")

    return PersonalizationSummary(
        uid=uid,
        url=layout.url,
        picc_data_offset=layout.picc_data_offset,
        mac_input_offset=layout.mac_input_offset,
        mac_offset=layout.mac_offset,
        file_settings=settings,
        key_versions=(key_version,) * 5,
    )
