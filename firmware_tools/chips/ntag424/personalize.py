"""Turn a blank NTAG 424 DNA into a SUN tag: the APDU sequence and what it writes.

Talks to the tag only through a ``transceive(c_apdu) -> r_apdu`` function; keys,
randomness and the provisioning log are arguments. Sources: NT4H2421Gx rev 3.0 (§10
commands, §9.3 SDM) and the worked personalization of AN12196 §5.

`personalize` is resumable: every run first asks the tag how far an earlier run got and
does only what is missing, so a tag pulled from the field, or a reader whose answer was
lost, is finished by running it again. Sequence:

1. ISOSelectFile of the NDEF application (DF name D2760000850101).
2. WriteData (0x8D, CommMode.Plain) of the NDEF file 02: NLEN || one URI record whose
   SDM placeholders are ASCII '0'. The factory access is "write free"; once step 5 ran
   the tag refuses it, and the file is read back and compared instead.
3. AuthenticateEV2First (0x71) with key 0: the factory key (sixteen zero bytes) or, when
   an earlier run got to the end, the tag's own key 0.
4. GetCardUID (0x51, CommMode.Full): the real UID, from which the keys are derived.
5. GetFileSettings (0xF5, CommMode.MAC) of file 02; unless it already is, ChangeFileSettings
   (0x5F, CommMode.Full): SDM on, UID and read counter mirrored inside PICC data encrypted
   under key 1 (SDM meta-read), SDMMAC under key 2 (SDM file-read) over the URL from its
   GS1 path up to the MAC; write and settings changes need key 0 from then on.
6. For keys 1..4, GetKeyVersion (0x64, CommMode.MAC): a key already at the new version was
   changed by an earlier run; the others get ChangeKey (0xC4, CommMode.Full), then
   GetKeyVersion again to confirm.
7. ChangeKey of key 0 last, since changing the authenticated key ends the session; then
   AuthenticateEV2First with the new key 0 confirms it.

Before each ChangeKey the provisioning log (`ProvisioningLog`) notes the key as pending,
and once the tag confirms the change, as confirmed: the keys of a half-done tag are
always known. A lost answer (OutcomeUnknown from the transport) is never answered by
sending the command again; the run starts over from step 1 and reads the tag's state.

Key roles: key 0 application master key, key 1 SDM meta-read key (shared by a supplier's
tags, because the verifier must decrypt PICC data before it knows the UID), key 2 SDM
file-read key (per tag, AN10922-diversified), keys 3 and 4 unused but diversified, so that
no factory key is left on the tag. See `tag_keys`.

>>> layout = sun_layout("https://id.example.com/01/{gtin}/21/{serial}"
...                     "?picc_data={picc_data}&cmac={cmac}",
...                     {"gtin": "09506000134352", "serial": "A1"})
>>> layout.url[-64:]
'picc_data=00000000000000000000000000000000&cmac=0000000000000000'
>>> layout.mac_input_offset, layout.picc_data_offset, layout.mac_offset
(21, 56, 94)
>>> layout.ndef_file[layout.mac_input_offset:layout.mac_offset].decode()[:20]
'/01/09506000134352/2'
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from firmware_tools.chips.ntag424 import ev2
from firmware_tools.chips.ntag424.diversify import diversify_key, sun_file_read_key
from firmware_tools.chips.ntag424.sun import gs1_path_start
from firmware_tools.errors import OutcomeUnknown, TagCommandError
from firmware_tools.formats import ndef

__all__ = [
    "CONFIRMED",
    "FACTORY_KEY_VERSION",
    "NDEF_APP_DF_NAME",
    "NDEF_FILE_NO",
    "NDEF_FILE_SIZE",
    "PENDING",
    "MemoryLog",
    "PersonalizationSummary",
    "ProvisioningLog",
    "SunLayout",
    "authenticate_ev2_first",
    "build_ndef_file",
    "file_settings_answer",
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
READ_CHUNK = 0x80
# NT4H2421Gx §8.2.3: every key leaves the factory with version 00h. A changed key gets
# another version, so that GetKeyVersion tells a changed key from a factory one.
FACTORY_KEY_VERSION = 0x00
PENDING, CONFIRMED = "pending", "confirmed"
# Native status codes the tag gives a command its access rights refuse (NT4H2421Gx §10.2).
_REFUSED = (0x919D, 0x91AE)

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

    def mirrored(self) -> list[tuple[int, int]]:
        """(offset, length) of the spans the tag rewrites on every read (PICC data, MAC)."""
        return [(self.picc_data_offset, 32), (self.mac_offset, 16)]


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
    changed: tuple[str, ...] = ()  # what this call sent to change ("ndef", "settings", "key 1")


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
    path_start = gs1_path_start(url)
    if path_start is None:
        raise ValueError(f"the URL is not a GS1 Digital Link with a /01/ path: {url}")
    ndef_file, url_start = build_ndef_file(url)
    return SunLayout(
        url=url,
        ndef_file=ndef_file,
        picc_data_offset=url_start + positions["picc_data"],
        # SDMMACInputOffset at the "/" of "/01/": the SDMMAC covers the URL text from the
        # GS1 path up to and including "cmac=" (PICC data as mirrored), so GTIN and serial
        # are under the MAC and a tap cannot be pasted under another item (AN12196 §3.4:
        # the MAC input is the file data from SDMMACInputOffset to SDMMACOffset).
        mac_input_offset=url_start + path_start,
        mac_offset=url_start + positions["cmac"],
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


def file_settings_answer(settings: bytes, file_size: int = NDEF_FILE_SIZE) -> bytes:
    """What GetFileSettings returns for a file set with `settings` (NT4H2421Gx Table 73).

    FileType 00h || FileOption || AccessRights || FileSize (3 bytes LSB first) || the SDM
    part of the ChangeFileSettings data.
    """
    return b"\x00" + settings[:3] + file_size.to_bytes(3, "little") + settings[3:]


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


class ProvisioningLog(Protocol):
    """Where personalization notes each key change, before and after it (a port).

    The adapter writes durably before returning: a ChangeKey is sent only once its
    pending note is stored.
    """

    def key_states(self, uid: bytes) -> Mapping[int, tuple[int, str]]:
        """Key number -> (key version, PENDING or CONFIRMED) of the last note per key."""
        ...

    def key_pending(self, uid: bytes, key_no: int, version: int) -> None:
        """Note that key `key_no` of `uid` is about to change to `version`."""
        ...

    def key_confirmed(self, uid: bytes, key_no: int, version: int) -> None:
        """Note that the tag confirmed key `key_no` at `version`."""
        ...


class MemoryLog:
    """A `ProvisioningLog` in memory, for tests and for callers that keep no records."""

    def __init__(self) -> None:
        self.notes: list[tuple[bytes, int, int, str]] = []

    def key_states(self, uid: bytes) -> Mapping[int, tuple[int, str]]:
        return {key_no: (version, state) for u, key_no, version, state in self.notes if u == uid}

    def key_pending(self, uid: bytes, key_no: int, version: int) -> None:
        self.notes.append((uid, key_no, version, PENDING))

    def key_confirmed(self, uid: bytes, key_no: int, version: int) -> None:
        self.notes.append((uid, key_no, version, CONFIRMED))


def personalize(
    transceive: Transceive,
    url_template: str,
    fields: Mapping[str, str],
    keys_for_uid: Callable[[bytes], Sequence[bytes]],
    *,
    uid: bytes | None = None,
    log: ProvisioningLog | None = None,
    current_keys: Sequence[bytes] = (bytes(16),) * 5,
    key_version: int = 1,
    random_bytes: Callable[[int], bytes] = os.urandom,
    attempts: int = 3,
) -> PersonalizationSummary:
    """Personalize, or finish personalizing, the tag in the field of `transceive`.

    `keys_for_uid(uid)` gives the five new keys (see `tag_keys`); `current_keys` are the
    factory keys (version 00h) of a blank tag. `uid`, the UID the reader selected, lets a
    run recognise a tag whose key 0 an earlier run already changed. After a lost answer
    (OutcomeUnknown) the run starts over from the tag's state, up to `attempts` times;
    a tag that left the field (TagNotFound) is finished by calling this again.
    """
    if not 0 < key_version <= 0xFF or key_version == FACTORY_KEY_VERSION:
        raise ValueError("the key version must be 1..255: version 0 marks a factory key")
    layout = sun_layout(url_template, fields)
    settings = sdm_file_settings(layout)
    log = MemoryLog() if log is None else log
    changed: list[str] = []  # across attempts: a change whose answer was lost still counts
    for attempt in range(attempts):
        try:
            return _personalize_once(
                transceive, layout, settings, keys_for_uid, uid, log,
                current_keys, key_version, random_bytes, changed,
            )  # fmt: skip
        except OutcomeUnknown:
            # The command whose answer was lost may have run: never send it again, ask
            # the tag instead, from the beginning.
            if attempt + 1 == attempts:
                raise
    raise AssertionError("unreachable")


def _check(response: bytes, what: str, ok: bytes = b"\x90\x00") -> bytes:
    if len(response) < 2 or response[-2:] != ok:
        raise TagCommandError(
            f"{what} failed: {response[-2:].hex().upper()}",
            int.from_bytes(response[-2:], "big") if len(response) >= 2 else None,
        )
    return response[:-2]


def _write_ndef_plain(transceive: Transceive, layout: SunLayout) -> bool:
    """Write the NDEF file in plain; False if the tag refuses (its SDM settings are on)."""
    for start in range(0, len(layout.ndef_file), WRITE_CHUNK):
        chunk = layout.ndef_file[start : start + WRITE_CHUNK]
        header = bytes([NDEF_FILE_NO]) + _u24(start) + _u24(len(chunk))
        try:
            _native(transceive, ev2.CMD_WRITE_DATA, header + chunk, "WriteData of the NDEF file")
        except TagCommandError as exc:
            if start == 0 and exc.status in _REFUSED:
                return False
            raise
    return True


def _read_ndef_file(transceive: Transceive, length: int) -> bytes:
    """The first `length` bytes of the NDEF file, by ISO ReadBinary (read access is free)."""
    _check(transceive(bytes.fromhex("00A4000C02E104")), "ISOSelectFile of the NDEF file")
    data = b""
    while len(data) < length:
        size = min(length - len(data), READ_CHUNK)
        apdu = bytes((0x00, 0xB0, len(data) >> 8, len(data) & 0xFF, size))
        data += _check(transceive(apdu), "ISOReadBinary of the NDEF file")
    return data[:length]


def _same_outside(a: bytes, b: bytes, spans: list[tuple[int, int]]) -> bool:
    masked_a, masked_b = bytearray(a), bytearray(b)
    for start, length in spans:
        masked_a[start : start + length] = bytes(length)
        masked_b[start : start + length] = bytes(length)
    return masked_a == masked_b


def _mac(
    transceive: Transceive, session: ev2.Ev2Session, cmd: int, header: bytes, what: str
) -> tuple[ev2.Ev2Session, bytes]:
    """One CommMode.MAC command without data; (the advanced session, response data)."""
    status, answer = _native(transceive, cmd, ev2.wrap_command_mac(session, cmd, header, b""), what)
    try:
        plain = ev2.unwrap_response_mac(session, status, answer)
    except ev2.Ev2Error as exc:
        raise TagCommandError(f"{what}: {exc}") from exc
    return session.advanced(), plain


def _key_version(
    transceive: Transceive, session: ev2.Ev2Session, key_no: int
) -> tuple[ev2.Ev2Session, int]:
    session, answer = _mac(
        transceive, session, ev2.CMD_GET_KEY_VERSION, bytes([key_no]), f"GetKeyVersion {key_no}"
    )
    if len(answer) != 1:
        raise TagCommandError(f"GetKeyVersion {key_no}: {len(answer)} bytes, expected 1")
    return session, answer[0]


def _authenticate_key0(
    transceive: Transceive,
    candidates: list[tuple[bytes, bool]],
    random_bytes: Callable[[int], bytes],
) -> tuple[ev2.Ev2Session, bool]:
    """A session under key 0 with the first candidate the tag accepts; (session, is_new)."""
    for key, is_new in candidates:
        try:
            return authenticate_ev2_first(transceive, 0, key, random_bytes), is_new
        except TagCommandError as exc:
            if exc.status != 0x91AE:
                raise
    raise TagCommandError(
        "AuthenticateEV2First with key 0 failed with every key it may have (the factory"
        " key and this key file's key for the UID): the tag was personalized by someone"
        " else, or with another key file",
        0x91AE,
    )


def _personalize_once(
    transceive: Transceive,
    layout: SunLayout,
    settings: bytes,
    keys_for_uid: Callable[[bytes], Sequence[bytes]],
    uid: bytes | None,
    log: ProvisioningLog,
    current_keys: Sequence[bytes],
    key_version: int,
    random_bytes: Callable[[int], bytes],
    changed: list[str],
) -> PersonalizationSummary:
    wrote_ndef = False
    _check(transceive(SELECT_NDEF_APPLICATION), "ISOSelectFile of the NDEF application")
    if _write_ndef_plain(transceive, layout):
        wrote_ndef = True
        changed.append("ndef")
    else:
        # The file is no longer write-free: an earlier run enabled SDM. It must hold this
        # URL (the mirrored spans aside), or the tag is someone else's.
        found = _read_ndef_file(transceive, len(layout.ndef_file))
        if not _same_outside(found, layout.ndef_file, layout.mirrored()):
            raise TagCommandError(
                "the NDEF file is locked and holds another URL than"
                f" {layout.url}: the tag was personalized for another item"
            )
        _check(transceive(SELECT_NDEF_APPLICATION), "ISOSelectFile of the NDEF application")

    states = log.key_states(uid) if uid is not None else {}
    factory = (bytes(current_keys[0]), False)
    candidates = [factory]
    if uid is not None:
        mine = (bytes(keys_for_uid(uid)[0]), True)
        # Try first the key 0 the tag most likely has, to spend few failed attempts.
        candidates = [mine, factory] if 0 in states else [factory, mine]
    session, key0_changed = _authenticate_key0(transceive, candidates, random_bytes)

    session, card_uid = _full(transceive, session, ev2.CMD_GET_CARD_UID, b"", b"", "GetCardUID")
    if uid is not None and card_uid != uid:
        raise TagCommandError(
            f"GetCardUID says {card_uid.hex().upper()}, the reader selected {uid.hex().upper()}"
        )
    new_keys = list(keys_for_uid(card_uid))
    if len(new_keys) != 5 or any(len(k) != 16 for k in new_keys):
        raise ValueError("keys_for_uid must give five 16-byte keys")
    if uid is None:
        states = log.key_states(card_uid)

    wanted = file_settings_answer(settings)
    session, found = _mac(
        transceive, session, ev2.CMD_GET_FILE_SETTINGS, bytes([NDEF_FILE_NO]), "GetFileSettings"
    )
    if found != wanted:
        if not wrote_ndef:
            raise TagCommandError(
                f"file 02 has settings this tool did not write ({found.hex().upper()})"
            )
        changed.append("settings")
        session, _ = _full(
            transceive,
            session,
            ev2.CMD_CHANGE_FILE_SETTINGS,
            bytes([NDEF_FILE_NO]),
            settings,
            "ChangeFileSettings",
            response_mode="mac",
        )

    versions = [key_version] * 5
    for key_no in (1, 2, 3, 4):
        session, version = _key_version(transceive, session, key_no)
        if version == FACTORY_KEY_VERSION:
            log.key_pending(card_uid, key_no, key_version)
            changed.append(f"key {key_no}")
            data = ev2.change_key_data(
                key_no, 0, current_keys[key_no], new_keys[key_no], key_version
            )
            session, _ = _full(
                transceive,
                session,
                ev2.CMD_CHANGE_KEY,
                bytes([key_no]),
                data,
                f"ChangeKey {key_no}",
                response_mode="mac",
            )
            session, version = _key_version(transceive, session, key_no)
        if version != key_version:
            raise TagCommandError(
                f"key {key_no} has version {version}, neither the factory's"
                f" ({FACTORY_KEY_VERSION}) nor this run's ({key_version})"
            )
        if states.get(key_no) != (key_version, CONFIRMED):
            log.key_confirmed(card_uid, key_no, key_version)

    if not key0_changed:
        log.key_pending(card_uid, 0, key_version)
        changed.append("key 0")
        # AN12196 Table 26: changing the authenticated key ends the session; the answer
        # is a bare 9100 without a MAC.
        data = ev2.change_key_data(0, 0, current_keys[0], new_keys[0], key_version)
        _full(transceive, session, ev2.CMD_CHANGE_KEY, b"\x00", data, "ChangeKey 0", "none")
        # Confirm with the tag: the new key 0 authenticates.
        session = authenticate_ev2_first(transceive, 0, new_keys[0], random_bytes)
    session, version = _key_version(transceive, session, 0)
    if version != key_version:
        raise TagCommandError(f"key 0 has version {version}, expected {key_version}")
    if states.get(0) != (key_version, CONFIRMED) or not key0_changed:
        log.key_confirmed(card_uid, 0, key_version)

    return PersonalizationSummary(
        uid=card_uid,
        url=layout.url,
        picc_data_offset=layout.picc_data_offset,
        mac_input_offset=layout.mac_input_offset,
        mac_offset=layout.mac_offset,
        file_settings=settings,
        key_versions=tuple(versions),
        changed=tuple(dict.fromkeys(changed)),
    )
