"""A simulated NTAG 424 DNA: the chip side of ISO 7816-4, EV2 secure messaging and SDM.

Written from NT4H2421Gx rev 3.0 (commands §10, secure messaging §9.1, SDM §9.3) so that
the host code (`firmware_tools.chips.ntag424.personalize`, the verifier, the PN532 emulator)
can be exercised end to end without hardware. It holds the state a real tag holds: five
AES keys with versions, the three files of the NDEF application with their access
rights, the SDM settings and read counter of file 02, the EV2 session.

Interface used by the PN532 emulator: `uid`, `sens_res`, `sel_res`, `ats`, `activate()`
(a new RF activation: authentication and selection are lost, and the next read of the
SDM file mirrors a fresh SUN message with the read counter one higher) and
`exchange(c_apdu) -> r_apdu`. Anything the tag would refuse gets an error status word;
nothing unexpected succeeds silently.

Known simplifications: no LRP mode, no Random ID, no TagTamper, no ISO chaining; native
GetVersion answers in plain even inside a session; SDMReadCtrLimit is parsed but not
enforced; the counter saturates at FFFFFF and the tag keeps mirroring it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from firmware_tools.chips import ecc
from firmware_tools.chips.ntag424 import ev2

# NT4H2421Gx §10.2 (native status codes, second byte after 0x91) and ISO 7816-4 words.
OK = 0x00
ADDITIONAL_FRAME = 0xAF
ILLEGAL_COMMAND = 0x1C
INTEGRITY_ERROR = 0x1E
NO_SUCH_KEY = 0x40
LENGTH_ERROR = 0x7E
PERMISSION_DENIED = 0x9D
PARAMETER_ERROR = 0x9E
AUTHENTICATION_ERROR = 0xAE
BOUNDARY_ERROR = 0xBE
FILE_NOT_FOUND = 0xF0

SW_OK = b"\x90\x00"
SW_WRONG_LENGTH = b"\x67\x00"
SW_SECURITY = b"\x69\x82"
SW_NO_EF = b"\x69\x86"
SW_FILE_NOT_FOUND = b"\x6a\x82"
SW_WRONG_P1P2 = b"\x6a\x86"
SW_WRONG_OFFSET = b"\x6b\x00"
SW_INS_UNKNOWN = b"\x6d\x00"
SW_CLA_UNKNOWN = b"\x6e\x00"

NDEF_DF_NAME = bytes.fromhex("D2760000850101")
NDEF_DF_FID = b"\xe1\x10"
FREE = 0xE
NEVER = 0xF

# NT4H2421Gx GetVersion: vendor NXP, type NTAG, subtype 424 DNA.
HW_VERSION = bytes.fromhex("04040230001105")
SW_VERSION = bytes.fromhex("04040201021105")
# NT4H2421Gx, CC file content at delivery: T4T v2.0, NDEF file E104 of 256 bytes
# readable and writable freely, proprietary file E105 of 128 bytes not readable.
FACTORY_CC = bytes.fromhex("001720010000FF0406E10401000000" + "0506E10500808283") + bytes(9)


def fake_signing_key() -> int:
    """A fixed secp224r1 key standing in for NXP's originality key (whose secret is NXP's)."""
    return 0x424424424424424424424424424424424424424424424424424424


def fake_public_key() -> bytes:
    """The uncompressed public key of `fake_signing_key`, for `verify_originality_424`."""
    return ecc.public_key_of(ecc.SECP224R1, fake_signing_key())


@dataclass
class _Sdm:
    """SDM settings of a file (NT4H2421Gx §10.7.1 Table 69)."""

    options: int
    meta_read: int
    file_read: int
    ctr_ret: int
    uid_offset: int | None = None
    ctr_offset: int | None = None
    picc_offset: int | None = None
    mac_input_offset: int | None = None
    enc_offset: int | None = None
    enc_length: int | None = None
    mac_offset: int | None = None
    ctr_limit: int | None = None

    @property
    def uid_mirror(self) -> bool:
        return bool(self.options & 0x80)

    @property
    def ctr_mirror(self) -> bool:
        return bool(self.options & 0x40)


@dataclass
class _File:
    number: int
    fid: bytes
    data: bytearray
    comm_mode: int  # 0 plain, 1 MAC, 3 full
    read: int
    write: int
    read_write: int
    change: int
    sdm: _Sdm | None = None
    sdm_read_ctr: int = 0

    def access_bytes(self) -> bytes:
        value = (self.read << 12) | (self.write << 8) | (self.read_write << 4) | self.change
        return value.to_bytes(2, "little")


class _Refusal(Exception):
    """A command refused with a native status code."""

    def __init__(self, status: int, reset_session: bool = False) -> None:
        super().__init__(hex(status))
        self.status = status
        self.reset_session = reset_session


@dataclass
class SimulatedNtag424:
    """A simulated NTAG 424 DNA; `keys` default to the factory's five zero keys."""

    uid: bytes
    keys: list[bytes] | None = None
    signing_key: int | None = None
    random_bytes: Callable[[int], bytes] = os.urandom
    sens_res: bytes = b"\x03\x44"
    sel_res: int = 0x20
    ats: bytes = bytes.fromhex("067777710280")
    key_versions: list[int] = field(default_factory=lambda: [0] * 5)
    log: list[tuple[bytes, bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if len(self.uid) != 7:
            raise ValueError("an NTAG 424 DNA has a 7-byte UID")
        self.keys = [bytes(k) for k in (self.keys or [bytes(16)] * 5)]
        if len(self.keys) != 5 or any(len(k) != 16 for k in self.keys):
            raise ValueError("five 16-byte keys")
        if self.signing_key is None:
            self.signing_key = fake_signing_key()
        # NT4H2421Gx Read_Sig: ECDSA secp224r1 over the raw UID, 56 bytes r || s.
        self.signature = ecc.sign(ecc.SECP224R1, self.signing_key, self.uid)
        # NT4H2421Gx §8.2: the three files at delivery.
        self.files = {
            1: _File(1, b"\xe1\x03", bytearray(FACTORY_CC), 0, FREE, 0, 0, 0),
            2: _File(2, b"\xe1\x04", bytearray(256), 0, FREE, FREE, FREE, 0),
            3: _File(3, b"\xe1\x05", bytearray(128), 3, 2, 3, 3, 0),
        }
        self.activate()

    # --- RF layer ---------------------------------------------------------------------

    def activate(self) -> None:
        """A new RF activation: selection and authentication are lost (NT4H2421Gx §9)."""
        self.app_selected = False
        self.selected_file: int | None = None
        self.session: ev2.Ev2Session | None = None
        self.pending: tuple | None = None
        self.sdm_content: dict[int, bytes] = {}

    def exchange(self, apdu: bytes) -> bytes:
        """One C-APDU in, one R-APDU (data || SW1 SW2) out."""
        response = self._dispatch(bytes(apdu))
        self.log.append((bytes(apdu), response))
        return response

    # --- shortcuts for tests ------------------------------------------------------------

    @property
    def sdm_read_counter(self) -> int:
        """SDMReadCtr of the NDEF file (settable, to test the end of the counter)."""
        return self.files[2].sdm_read_ctr

    @sdm_read_counter.setter
    def sdm_read_counter(self, value: int) -> None:
        self.files[2].sdm_read_ctr = value

    @classmethod
    def with_sun(
        cls, uid: bytes, keys: list[bytes], ndef_file: bytes, file_settings: bytes, **kwargs
    ) -> SimulatedNtag424:
        """A tag already personalized: `ndef_file` written, `file_settings` applied to 02."""
        tag = cls(uid, keys, **kwargs)
        tag.files[2].data[: len(ndef_file)] = ndef_file
        tag._apply_file_settings(tag.files[2], file_settings)
        return tag

    # --- dispatch -----------------------------------------------------------------------

    def _dispatch(self, apdu: bytes) -> bytes:
        if len(apdu) < 4:
            return SW_WRONG_LENGTH
        cla, ins = apdu[0], apdu[1]
        if cla == 0x00:
            pending, self.pending = self.pending, None
            if pending is not None:
                self.session = None
            if ins == 0xA4:
                return self._iso_select(apdu)
            if ins == 0xB0:
                return self._iso_read_binary(apdu)
            if ins == 0xD6:
                return self._iso_update_binary(apdu)
            return SW_INS_UNKNOWN
        if cla != 0x90:
            return SW_CLA_UNKNOWN
        return self._native(apdu)

    def _native(self, apdu: bytes) -> bytes:
        cmd = apdu[1]
        if len(apdu) < 5 or apdu[2] != 0 or apdu[3] != 0:
            return b"\x91" + bytes([LENGTH_ERROR])
        if len(apdu) == 5:
            data = b""
            if apdu[4] != 0:
                return b"\x91" + bytes([LENGTH_ERROR])
        else:
            lc = apdu[4]
            if lc == 0 or len(apdu) != 5 + lc + 1 or apdu[-1] != 0:
                return b"\x91" + bytes([LENGTH_ERROR])
            data = apdu[5 : 5 + lc]
        pending, self.pending = self.pending, None
        try:
            if cmd == ev2.CMD_ADDITIONAL_FRAME:
                if pending is None:
                    raise _Refusal(ILLEGAL_COMMAND)
                return self._continue(pending, data)
            if pending is not None and pending[0] == "auth":
                self.session = None
            handler = self._handlers().get(cmd)
            if handler is None:
                raise _Refusal(ILLEGAL_COMMAND)
            if not self.app_selected and cmd != ev2.CMD_GET_VERSION:
                raise _Refusal(PERMISSION_DENIED)
            session_before = self.session
            body, status = handler(data)
            # NT4H2421Gx §9.1.2: every command/response pair in a session advances CmdCtr.
            if session_before is not None and self.session is session_before and status == OK:
                self.session = session_before.advanced()
            return body + bytes([0x91, status])
        except _Refusal as refusal:
            if refusal.reset_session:
                self.session = None
            return bytes([0x91, refusal.status])

    def _handlers(self) -> dict[int, Callable[[bytes], tuple[bytes, int]]]:
        return {
            ev2.CMD_GET_VERSION: self._get_version,
            ev2.CMD_AUTHENTICATE_EV2_FIRST: self._authenticate_first,
            ev2.CMD_GET_CARD_UID: self._get_card_uid,
            ev2.CMD_CHANGE_KEY: self._change_key,
            ev2.CMD_CHANGE_FILE_SETTINGS: self._change_file_settings,
            ev2.CMD_GET_FILE_SETTINGS: self._get_file_settings,
            ev2.CMD_GET_KEY_VERSION: self._get_key_version,
            ev2.CMD_WRITE_DATA: self._write_data,
            ev2.CMD_READ_DATA: self._read_data,
            ev2.CMD_READ_SIG: self._read_sig,
        }

    def _continue(self, pending: tuple, data: bytes) -> bytes:
        if pending[0] == "version":
            step = pending[1]
            if data:
                raise _Refusal(LENGTH_ERROR)
            if step == 1:
                self.pending = ("version", 2)
                return SW_VERSION + bytes([0x91, ADDITIONAL_FRAME])
            # UID, batch number (5), production week and year (NT4H2421Gx Table 6).
            return self.uid + bytes.fromhex("CF39A14960") + b"\x04\x26" + b"\x91\x00"
        # AuthenticateEV2First part 2 (NT4H2421Gx §10.4.1).
        _, key_no, rnd_b = pending
        if len(data) != 32:
            raise _Refusal(LENGTH_ERROR)
        key = self.keys[key_no]
        plain = ev2.aes_cbc_decrypt(key, bytes(16), data)
        rnd_a, rnd_b_rotated = plain[:16], plain[16:]
        if rnd_b_rotated != ev2.rotate_left(rnd_b):
            raise _Refusal(AUTHENTICATION_ERROR, reset_session=True)
        ti = self.random_bytes(4)
        answer = ev2.aes_cbc_encrypt(key, bytes(16), ti + ev2.rotate_left(rnd_a) + bytes(12))
        enc_key, mac_key = ev2.session_keys(key, rnd_a, rnd_b)
        self.session = ev2.Ev2Session(key_no=key_no, ti=ti, enc_key=enc_key, mac_key=mac_key)
        return answer + b"\x91\x00"

    # --- ISO commands -------------------------------------------------------------------

    def _iso_select(self, apdu: bytes) -> bytes:
        p1, p2 = apdu[2], apdu[3]
        if len(apdu) < 5 or p2 not in (0x00, 0x0C):
            return SW_WRONG_P1P2
        lc = apdu[4]
        if len(apdu) not in (5 + lc, 6 + lc):
            return SW_WRONG_LENGTH
        data = apdu[5 : 5 + lc]
        self.session = None
        if p1 == 0x04:
            if data != NDEF_DF_NAME:
                return SW_FILE_NOT_FOUND
            self.app_selected, self.selected_file = True, None
            return SW_OK
        if p1 in (0x00, 0x02) and len(data) == 2:
            if p1 == 0x00 and data == NDEF_DF_FID:
                self.app_selected, self.selected_file = True, None
                return SW_OK
            if p1 == 0x00 and data == b"\x3f\x00":
                self.app_selected, self.selected_file = False, None
                return SW_OK
            if self.app_selected:
                for file in self.files.values():
                    if file.fid == data:
                        self.selected_file = file.number
                        return SW_OK
            return SW_FILE_NOT_FOUND
        return SW_WRONG_P1P2

    def _iso_file(self, p1: int) -> tuple[_File | None, bytes]:
        if not self.app_selected:
            return None, SW_NO_EF
        if p1 & 0x80:  # short file identifier in bits 4..0
            file = self.files.get(p1 & 0x1F)
            if file is None:
                return None, SW_FILE_NOT_FOUND
            self.selected_file = file.number
            return file, SW_OK
        if self.selected_file is None:
            return None, SW_NO_EF
        return self.files[self.selected_file], SW_OK

    def _iso_read_binary(self, apdu: bytes) -> bytes:
        if len(apdu) != 5:
            return SW_WRONG_LENGTH
        file, sw = self._iso_file(apdu[2])
        if file is None:
            return sw
        offset = apdu[3] if apdu[2] & 0x80 else ((apdu[2] & 0x7F) << 8) | apdu[3]
        length = apdu[4] or 256
        # ISO commands only ever run in plain: reading needs free access.
        if FREE not in (file.read, file.read_write):
            return SW_SECURITY
        if offset >= len(file.data):
            return SW_WRONG_OFFSET
        return self._content(file)[offset : offset + length] + SW_OK

    def _iso_update_binary(self, apdu: bytes) -> bytes:
        if len(apdu) < 6 or len(apdu) != 5 + apdu[4]:
            return SW_WRONG_LENGTH
        file, sw = self._iso_file(apdu[2])
        if file is None:
            return sw
        offset = apdu[3] if apdu[2] & 0x80 else ((apdu[2] & 0x7F) << 8) | apdu[3]
        data = apdu[5:]
        if FREE not in (file.write, file.read_write):
            return SW_SECURITY
        if offset + len(data) > len(file.data):
            return SW_WRONG_OFFSET
        file.data[offset : offset + len(data)] = data
        self.sdm_content.pop(file.number, None)
        return SW_OK

    # --- native commands ----------------------------------------------------------------

    def _require_session(self) -> ev2.Ev2Session:
        if self.session is None:
            raise _Refusal(AUTHENTICATION_ERROR)
        return self.session

    def _open_full(self, cmd: int, header_length: int, data: bytes) -> tuple[bytes, bytes]:
        try:
            return ev2.open_command_full(self._require_session(), cmd, header_length, data)
        except ev2.Ev2Error:
            raise _Refusal(INTEGRITY_ERROR, reset_session=True) from None

    def _open_mac(self, cmd: int, header_length: int, data: bytes) -> tuple[bytes, bytes]:
        try:
            return ev2.open_command_mac(self._require_session(), cmd, header_length, data)
        except ev2.Ev2Error:
            raise _Refusal(INTEGRITY_ERROR, reset_session=True) from None

    def _get_version(self, data: bytes) -> tuple[bytes, int]:
        if data:
            raise _Refusal(LENGTH_ERROR)
        self.pending = ("version", 1)
        return HW_VERSION, ADDITIONAL_FRAME

    def _authenticate_first(self, data: bytes) -> tuple[bytes, int]:
        self.session = None
        if len(data) < 2 or len(data) != 2 + data[1] or data[1] > 6:
            raise _Refusal(LENGTH_ERROR)
        key_no = data[0]
        if key_no > 4:
            raise _Refusal(NO_SUCH_KEY)
        rnd_b = self.random_bytes(16)
        self.pending = ("auth", key_no, rnd_b)
        return ev2.aes_cbc_encrypt(self.keys[key_no], bytes(16), rnd_b), ADDITIONAL_FRAME

    def _get_card_uid(self, data: bytes) -> tuple[bytes, int]:
        self._open_full(ev2.CMD_GET_CARD_UID, 0, data)
        return ev2.seal_response_full(self._require_session(), OK, self.uid), OK

    def _change_key(self, data: bytes) -> tuple[bytes, int]:
        session = self._require_session()
        header, plain = self._open_full(ev2.CMD_CHANGE_KEY, 1, data)
        key_no = header[0]
        if key_no > 4:
            raise _Refusal(NO_SUCH_KEY)
        # NT4H2421Gx §8.2.4.1: only the application master key (key 0) changes keys.
        if session.key_no != 0:
            raise _Refusal(PERMISSION_DENIED)
        if key_no == session.key_no:
            if len(plain) != 17:
                raise _Refusal(LENGTH_ERROR)
            self.keys[key_no], self.key_versions[key_no] = plain[:16], plain[16]
            # Changing the authenticated key ends the session; the answer carries no MAC.
            self.session = None
            return b"", OK
        if len(plain) != 21:
            raise _Refusal(LENGTH_ERROR)
        new_key = bytes(a ^ b for a, b in zip(plain[:16], self.keys[key_no], strict=True))
        if ev2.crc32_nk(new_key) != plain[17:21]:
            raise _Refusal(INTEGRITY_ERROR, reset_session=True)
        self.keys[key_no], self.key_versions[key_no] = new_key, plain[16]
        return ev2.seal_response_mac(session, OK, b""), OK

    def _file(self, number: int) -> _File:
        file = self.files.get(number)
        if file is None:
            raise _Refusal(FILE_NOT_FOUND)
        return file

    def _change_file_settings(self, data: bytes) -> tuple[bytes, int]:
        if not data:
            raise _Refusal(LENGTH_ERROR)
        file = self._file(data[0])
        if file.change == FREE:
            plain = data[1:]
        else:
            session = self._require_session()
            if session.key_no != file.change:
                raise _Refusal(PERMISSION_DENIED)
            _, plain = self._open_full(ev2.CMD_CHANGE_FILE_SETTINGS, 1, data)
        self._apply_file_settings(file, plain)
        if self.session is None:
            return b"", OK
        return ev2.seal_response_mac(self.session, OK, b""), OK

    def _apply_file_settings(self, file: _File, data: bytes) -> None:
        """Parse ChangeFileSettings data (NT4H2421Gx §10.7.1 Table 69) and apply it."""
        if len(data) < 3:
            raise _Refusal(LENGTH_ERROR)
        option = data[0]
        comm_mode = option & 0x03
        if comm_mode == 2 or option & ~0x43:
            raise _Refusal(PARAMETER_ERROR)
        access = int.from_bytes(data[1:3], "little")
        sdm = None
        position = 3
        if option & 0x40:
            if file.number != 2 or len(data) < 6:
                raise _Refusal(PARAMETER_ERROR if file.number != 2 else LENGTH_ERROR)
            options = data[3]
            # ASCII encoding is the only one defined; bits 3..1 are RFU.
            if not options & 0x01 or options & 0x0E:
                raise _Refusal(PARAMETER_ERROR)
            rights = int.from_bytes(data[4:6], "little")
            sdm = _Sdm(options, rights >> 12, (rights >> 8) & 0xF, rights & 0xF)
            position = 6

            def take() -> int:
                nonlocal position
                if position + 3 > len(data):
                    raise _Refusal(LENGTH_ERROR)
                value = int.from_bytes(data[position : position + 3], "little")
                position += 3
                return value

            if sdm.meta_read == FREE:
                if sdm.uid_mirror:
                    sdm.uid_offset = take()
                if sdm.ctr_mirror:
                    sdm.ctr_offset = take()
            elif sdm.meta_read <= 4:
                sdm.picc_offset = take()
            elif sdm.meta_read != NEVER:
                raise _Refusal(PARAMETER_ERROR)
            if sdm.file_read != NEVER:
                if sdm.file_read > 4:
                    raise _Refusal(PARAMETER_ERROR)
                sdm.mac_input_offset = take()
                if options & 0x10:
                    sdm.enc_offset = take()
                    sdm.enc_length = take()
                sdm.mac_offset = take()
            elif options & 0x10:
                raise _Refusal(PARAMETER_ERROR)
            if options & 0x20:
                sdm.ctr_limit = take()
            self._check_sdm(sdm, len(file.data))
        if position != len(data):
            raise _Refusal(LENGTH_ERROR)
        file.comm_mode = comm_mode
        file.read, file.write = access >> 12, (access >> 8) & 0xF
        file.read_write, file.change = (access >> 4) & 0xF, access & 0xF
        file.sdm = sdm
        # NT4H2421Gx §9.3: enabling SDM resets SDMReadCtr.
        file.sdm_read_ctr = 0
        self.sdm_content.pop(file.number, None)

    @staticmethod
    def _check_sdm(sdm: _Sdm, size: int) -> None:
        spans = []
        if sdm.uid_offset is not None:
            spans.append((sdm.uid_offset, 14))
        if sdm.ctr_offset is not None:
            spans.append((sdm.ctr_offset, 6))
        if sdm.picc_offset is not None:
            spans.append((sdm.picc_offset, 32))
        if sdm.mac_offset is not None:
            spans.append((sdm.mac_offset, 16))
            assert sdm.mac_input_offset is not None
            if sdm.mac_input_offset > sdm.mac_offset:
                raise _Refusal(PARAMETER_ERROR)
        if sdm.enc_offset is not None:
            assert sdm.enc_length is not None and sdm.mac_input_offset is not None
            if (
                sdm.enc_length == 0
                or sdm.enc_length % 32
                or sdm.enc_offset < sdm.mac_input_offset
                or sdm.enc_offset + sdm.enc_length > (sdm.mac_offset or 0)
            ):
                raise _Refusal(PARAMETER_ERROR)
            spans.append((sdm.enc_offset, sdm.enc_length))
        if any(start + length > size for start, length in spans):
            raise _Refusal(BOUNDARY_ERROR)

    def _get_file_settings(self, data: bytes) -> tuple[bytes, int]:
        if self.session is not None:
            header, rest = self._open_mac(ev2.CMD_GET_FILE_SETTINGS, 1, data)
        else:
            header, rest = data[:1], data[1:]
        if len(header) != 1 or rest:
            raise _Refusal(LENGTH_ERROR)
        file = self._file(header[0])
        option = file.comm_mode | (0x40 if file.sdm else 0)
        out = bytes([0x00, option]) + file.access_bytes() + len(file.data).to_bytes(3, "little")
        if file.sdm is not None:
            sdm = file.sdm
            rights = (sdm.meta_read << 12) | (sdm.file_read << 8) | 0xF0 | sdm.ctr_ret
            out += bytes([sdm.options]) + rights.to_bytes(2, "little")
            for value in (
                sdm.uid_offset,
                sdm.ctr_offset,
                sdm.picc_offset,
                sdm.mac_input_offset,
                sdm.enc_offset,
                sdm.enc_length,
                sdm.mac_offset,
                sdm.ctr_limit,
            ):
                if value is not None:
                    out += value.to_bytes(3, "little")
        if self.session is not None:
            return ev2.seal_response_mac(self.session, OK, out), OK
        return out, OK

    def _get_key_version(self, data: bytes) -> tuple[bytes, int]:
        if self.session is not None:
            header, rest = self._open_mac(ev2.CMD_GET_KEY_VERSION, 1, data)
        else:
            header, rest = data[:1], data[1:]
        if len(header) != 1 or rest:
            raise _Refusal(LENGTH_ERROR)
        if header[0] > 4:
            raise _Refusal(NO_SUCH_KEY)
        version = bytes([self.key_versions[header[0]]])
        if self.session is not None:
            return ev2.seal_response_mac(self.session, OK, version), OK
        return version, OK

    def _read_sig(self, data: bytes) -> tuple[bytes, int]:
        if self.session is not None:
            header, rest = self._open_mac(ev2.CMD_READ_SIG, 1, data)
        else:
            header, rest = data[:1], data[1:]
        if header != b"\x00" or rest:
            raise _Refusal(PARAMETER_ERROR if len(header) == 1 and not rest else LENGTH_ERROR)
        if self.session is not None:
            return ev2.seal_response_full(self.session, OK, self.signature), OK
        return self.signature, OK

    def _data_mode(self, file: _File, keys: tuple[int, int]) -> int | None:
        """None for a free (plain) access, else the comm mode; refuses a wrong session."""
        if FREE in keys:
            return None
        session = self._require_session()
        if session.key_no not in keys:
            raise _Refusal(PERMISSION_DENIED)
        return file.comm_mode

    def _write_data(self, data: bytes) -> tuple[bytes, int]:
        if len(data) < 7:
            raise _Refusal(LENGTH_ERROR)
        file = self._file(data[0])
        mode = self._data_mode(file, (file.write, file.read_write))
        if mode == 3:
            header, payload = self._open_full(ev2.CMD_WRITE_DATA, 7, data)
        elif mode == 1:
            header, payload = self._open_mac(ev2.CMD_WRITE_DATA, 7, data)
        else:
            header, payload = data[:7], data[7:]
        offset = int.from_bytes(header[1:4], "little")
        length = int.from_bytes(header[4:7], "little")
        if length != len(payload) or length == 0:
            raise _Refusal(LENGTH_ERROR)
        if offset + length > len(file.data):
            raise _Refusal(BOUNDARY_ERROR)
        file.data[offset : offset + length] = payload
        self.sdm_content.pop(file.number, None)
        if mode in (1, 3):
            return ev2.seal_response_mac(self._require_session(), OK, b""), OK
        return b"", OK

    def _read_data(self, data: bytes) -> tuple[bytes, int]:
        if len(data) < 7:
            raise _Refusal(LENGTH_ERROR)
        file = self._file(data[0])
        mode = self._data_mode(file, (file.read, file.read_write))
        if mode == 3 or mode == 1:
            header, rest = self._open_mac(ev2.CMD_READ_DATA, 7, data)
        else:
            header, rest = data[:7], data[7:]
        if rest:
            raise _Refusal(LENGTH_ERROR)
        offset = int.from_bytes(header[1:4], "little")
        length = int.from_bytes(header[4:7], "little")
        if offset >= len(file.data) or offset + length > len(file.data):
            raise _Refusal(BOUNDARY_ERROR)
        content = self._content(file)
        chunk = content[offset : offset + length] if length else content[offset:]
        if mode == 3:
            return ev2.seal_response_full(self._require_session(), OK, chunk), OK
        if mode == 1:
            return ev2.seal_response_mac(self._require_session(), OK, chunk), OK
        return chunk, OK

    # --- SDM ------------------------------------------------------------------------------

    def _content(self, file: _File) -> bytes:
        """The file as a reader sees it: with SDM, one fresh SUN message per activation."""
        if file.sdm is None:
            return bytes(file.data)
        cached = self.sdm_content.get(file.number)
        if cached is None:
            # NT4H2421Gx §9.3: SDMReadCtr goes up with the first read of the activation.
            file.sdm_read_ctr = min(file.sdm_read_ctr + 1, 0xFFFFFF)
            cached = self.sdm_content[file.number] = self._mirror(file)
        return cached

    def _mirror(self, file: _File) -> bytes:
        sdm = file.sdm
        assert sdm is not None
        content = bytearray(file.data)
        ctr = file.sdm_read_ctr.to_bytes(3, "little")
        uid_part = self.uid if sdm.uid_mirror else b""
        ctr_part = ctr if sdm.ctr_mirror else b""

        def put(offset: int, text: bytes) -> None:
            content[offset : offset + len(text)] = text

        if sdm.uid_offset is not None:
            put(sdm.uid_offset, self.uid.hex().upper().encode())
        if sdm.ctr_offset is not None:
            # ASCII mirror of the counter is MSB first (NT4H2421Gx §9.3).
            put(sdm.ctr_offset, f"{file.sdm_read_ctr:06X}".encode())
        if sdm.picc_offset is not None:
            # NT4H2421Gx §9.3: PICCDataTag || UID || SDMReadCtr || random padding.
            tag = (0x80 if sdm.uid_mirror else 0) | (0x40 if sdm.ctr_mirror else 0) | 7
            plain = bytes([tag]) + uid_part + ctr_part
            plain += self.random_bytes(16 - len(plain))
            encrypted = ev2.aes_cbc_encrypt(self.keys[sdm.meta_read], bytes(16), plain)
            put(sdm.picc_offset, encrypted.hex().upper().encode())
        if sdm.mac_offset is not None:
            key = self.keys[sdm.file_read]
            # NT4H2421Gx §9.3: SV = label || 0001 0080 || [UID] || [SDMReadCtr], zero
            # padded to whole blocks.
            tail = uid_part + ctr_part
            sv1 = bytes.fromhex("C33C00010080") + tail
            sv2 = bytes.fromhex("3CC300010080") + tail
            sv1 += bytes(-len(sv1) % 16)
            sv2 += bytes(-len(sv2) % 16)
            if sdm.enc_offset is not None:
                assert sdm.enc_length is not None
                enc_key = ev2.aes_cmac(key, sv1)
                iv_cipher = Cipher(algorithms.AES(enc_key), modes.ECB()).encryptor()
                iv = iv_cipher.update(ctr + bytes(13))
                plain = bytes(file.data[sdm.enc_offset : sdm.enc_offset + sdm.enc_length // 2])
                encrypted = ev2.aes_cbc_encrypt(enc_key, iv, plain)
                put(sdm.enc_offset, encrypted.hex().upper().encode())
            assert sdm.mac_input_offset is not None
            mac_key = ev2.aes_cmac(key, sv2)
            mac_input = bytes(content[sdm.mac_input_offset : sdm.mac_offset])
            put(sdm.mac_offset, ev2.aes_cmac(mac_key, mac_input)[1::2].hex().upper().encode())
        return bytes(content)
