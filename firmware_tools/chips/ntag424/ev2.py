"""EV2 authentication and secure messaging of the NTAG 424 DNA, both sides of the wire.

Pure: no I/O; keys are arguments.

Sources: NT4H2421Gx rev 3.0 §9.1 (AES secure messaging), §10.4 (AuthenticateEV2First),
§10.6.1 (ChangeKey); AN12196 §5 worked examples. Byte order: keys, random numbers, TI
and MACs are written MSB first; the command counter, offsets and lengths LSB first.

A session is an immutable value; after each command/response pair the caller keeps
``session.advanced()`` (the command counter goes up by one, NT4H2421Gx §9.1.2).

>>> rotate_left(bytes([1, 2, 3]))
b'\\x02\\x03\\x01'
"""

from __future__ import annotations

import dataclasses
import hmac
import zlib
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

__all__ = [
    "CMD_ADDITIONAL_FRAME",
    "CMD_AUTHENTICATE_EV2_FIRST",
    "CMD_CHANGE_FILE_SETTINGS",
    "CMD_CHANGE_KEY",
    "Ev2Error",
    "Ev2Session",
    "aes_cbc_decrypt",
    "aes_cbc_encrypt",
    "aes_cmac",
    "auth_part2",
    "change_key_data",
    "crc32_nk",
    "finish_auth",
    "open_command_full",
    "open_command_mac",
    "pad",
    "rotate_left",
    "rotate_right",
    "seal_response_full",
    "seal_response_mac",
    "session_keys",
    "unpad",
    "unwrap_response_full",
    "unwrap_response_mac",
    "wrap_command_full",
    "wrap_command_mac",
]

CMD_AUTHENTICATE_EV2_FIRST = 0x71
CMD_AUTHENTICATE_EV2_NON_FIRST = 0x77
CMD_ADDITIONAL_FRAME = 0xAF
CMD_CHANGE_KEY = 0xC4
CMD_CHANGE_FILE_SETTINGS = 0x5F
CMD_WRITE_DATA = 0x8D
CMD_READ_DATA = 0xAD
CMD_GET_VERSION = 0x60
CMD_GET_CARD_UID = 0x51
CMD_GET_KEY_VERSION = 0x64
CMD_GET_FILE_SETTINGS = 0xF5
CMD_READ_SIG = 0x3C

# NT4H2421Gx §9.1.4 / §9.1.7: labels of the IVs and the session vectors.
_LABEL_CMD_IV = b"\xa5\x5a"
_LABEL_RESP_IV = b"\x5a\xa5"
_SV1_HEAD = bytes.fromhex("A55A00010080")
_SV2_HEAD = bytes.fromhex("5AA500010080")


class Ev2Error(ValueError):
    """A secure-messaging frame that does not verify or does not parse."""


def aes_cbc_encrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    """AES-128-CBC without padding; `data` is whole blocks."""
    ctx = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return ctx.update(data) + ctx.finalize()


def aes_cbc_decrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    """AES-128-CBC decryption without padding; `data` is whole blocks."""
    if len(data) % 16:
        raise Ev2Error("ciphertext is not a whole number of AES blocks")
    ctx = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    return ctx.update(data) + ctx.finalize()


def aes_cmac(key: bytes, data: bytes) -> bytes:
    """AES-CMAC (NIST SP 800-38B), 16 bytes."""
    mac = CMAC(algorithms.AES(key))
    mac.update(data)
    return mac.finalize()


def truncate_mac(full: bytes) -> bytes:
    """The 8-byte MACt: bytes 1, 3, 5, ..., 15 of a 16-byte CMAC (NT4H2421Gx §9.1.3)."""
    return full[1::2]


def rotate_left(data: bytes) -> bytes:
    """Rotate left by one byte: RndB -> RndB' (NT4H2421Gx §10.4.1)."""
    return data[1:] + data[:1]


def rotate_right(data: bytes) -> bytes:
    """Rotate right by one byte: RndA' -> RndA."""
    return data[-1:] + data[:-1]


def pad(data: bytes) -> bytes:
    """ISO/IEC 9797-1 padding method 2, always at least one byte (NT4H2421Gx §9.1.4)."""
    return data + b"\x80" + bytes(15 - len(data) % 16)


def unpad(data: bytes) -> bytes:
    """Remove ISO/IEC 9797-1 method 2 padding."""
    stripped = data.rstrip(b"\x00")
    if not stripped.endswith(b"\x80") or len(data) - len(stripped) > 15:
        raise Ev2Error("bad padding in decrypted data")
    return stripped[:-1]


def crc32_nk(data: bytes) -> bytes:
    """CRC32 of ChangeKey: IEEE 802.3 polynomial without the final complement, LSB first."""
    # NT4H2421Gx §10.6.1 Table 63 footnote; AN12196 Table 25 step 7 pins this spelling.
    return ((zlib.crc32(data) ^ 0xFFFFFFFF) & 0xFFFFFFFF).to_bytes(4, "little")


def session_keys(key: bytes, rnd_a: bytes, rnd_b: bytes) -> tuple[bytes, bytes]:
    """(SesAuthENCKey, SesAuthMACKey) from the authentication randoms (NT4H2421Gx §9.1.7)."""
    # SV = label || RndA[15..14] || (RndA[13..8] XOR RndB[15..10]) || RndB[9..0] ||
    # RndA[7..0], with byte 15 the leftmost (MSB first).
    xored = bytes(a ^ b for a, b in zip(rnd_a[2:8], rnd_b[0:6], strict=True))
    tail = rnd_a[0:2] + xored + rnd_b[6:16] + rnd_a[8:16]
    return aes_cmac(key, _SV1_HEAD + tail), aes_cmac(key, _SV2_HEAD + tail)


@dataclass(frozen=True, slots=True)
class Ev2Session:
    """An authenticated EV2 session: transaction identifier, session keys, counter."""

    key_no: int
    ti: bytes
    enc_key: bytes = dataclasses.field(repr=False)
    mac_key: bytes = dataclasses.field(repr=False)
    cmd_ctr: int = 0

    def advanced(self) -> Ev2Session:
        """The session after one more command/response pair."""
        if self.cmd_ctr >= 0xFFFF:
            raise Ev2Error("command counter exhausted: authenticate again")
        return dataclasses.replace(self, cmd_ctr=self.cmd_ctr + 1)

    def _iv(self, label: bytes, ctr: int) -> bytes:
        block = label + self.ti + ctr.to_bytes(2, "little") + bytes(8)
        return Cipher(algorithms.AES(self.enc_key), modes.ECB()).encryptor().update(block)

    def command_iv(self) -> bytes:
        """IVc = E(SesAuthENCKey, A55A || TI || CmdCtr || 0^8) (NT4H2421Gx §9.1.4)."""
        return self._iv(_LABEL_CMD_IV, self.cmd_ctr)

    def response_iv(self) -> bytes:
        """IVr = E(SesAuthENCKey, 5AA5 || TI || CmdCtr+1 || 0^8)."""
        return self._iv(_LABEL_RESP_IV, self.cmd_ctr + 1)

    def command_mact(self, cmd: int, header: bytes, data: bytes) -> bytes:
        """MACt over Cmd || CmdCtr || TI || CmdHeader || data (NT4H2421Gx §9.1.3)."""
        message = bytes([cmd]) + self.cmd_ctr.to_bytes(2, "little") + self.ti + header + data
        return truncate_mac(aes_cmac(self.mac_key, message))

    def response_mact(self, status: int, data: bytes) -> bytes:
        """MACt over RC || CmdCtr+1 || TI || data (no command byte, NT4H2421Gx §9.1.3)."""
        message = bytes([status]) + (self.cmd_ctr + 1).to_bytes(2, "little") + self.ti + data
        return truncate_mac(aes_cmac(self.mac_key, message))


# --- PCD side of AuthenticateEV2First (NT4H2421Gx §10.4.1, AN12196 Table 14) ---------


def auth_part2(key: bytes, enc_rnd_b: bytes, rnd_a: bytes) -> tuple[bytes, bytes]:
    """(E(K, RndA || RndB'), RndB) from the tag's first answer and our RndA."""
    if len(enc_rnd_b) != 16 or len(rnd_a) != 16:
        raise Ev2Error("authentication part 1 answer must be 16 bytes")
    rnd_b = aes_cbc_decrypt(key, bytes(16), enc_rnd_b)
    return aes_cbc_encrypt(key, bytes(16), rnd_a + rotate_left(rnd_b)), rnd_b


def finish_auth(key: bytes, key_no: int, rnd_a: bytes, rnd_b: bytes, response: bytes) -> Ev2Session:
    """The session, once the tag's E(K, TI || RndA' || PDcap2 || PCDcap2) proves it knew K."""
    if len(response) != 32:
        raise Ev2Error("authentication part 2 answer must be 32 bytes")
    plain = aes_cbc_decrypt(key, bytes(16), response)
    # The tag proves knowledge of the key by returning our challenge rotated.
    if rotate_right(plain[4:20]) != rnd_a:
        raise Ev2Error("the tag did not return RndA': wrong key or not this tag")
    enc_key, mac_key = session_keys(key, rnd_a, rnd_b)
    return Ev2Session(key_no=key_no, ti=plain[0:4], enc_key=enc_key, mac_key=mac_key)


# --- Secure messaging, PCD side --------------------------------------------------------


def wrap_command_full(session: Ev2Session, cmd: int, header: bytes, data: bytes) -> bytes:
    """Data field of a CommMode.Full command: header || E(pad(data)) || MACt."""
    encrypted = aes_cbc_encrypt(session.enc_key, session.command_iv(), pad(data)) if data else b""
    return header + encrypted + session.command_mact(cmd, header, encrypted)


def wrap_command_mac(session: Ev2Session, cmd: int, header: bytes, data: bytes) -> bytes:
    """Data field of a CommMode.MAC command: header || data || MACt."""
    return header + data + session.command_mact(cmd, header, data)


def unwrap_response_full(session: Ev2Session, status: int, field: bytes) -> bytes:
    """Plain response data of a CommMode.Full answer, after its MAC verified."""
    if len(field) < 8 or (len(field) - 8) % 16:
        raise Ev2Error("CommMode.Full response has a bad length")
    encrypted, mact = field[:-8], field[-8:]
    if not hmac.compare_digest(session.response_mact(status, encrypted), mact):
        raise Ev2Error("response MAC does not verify")
    if not encrypted:
        return b""
    return unpad(aes_cbc_decrypt(session.enc_key, session.response_iv(), encrypted))


def unwrap_response_mac(session: Ev2Session, status: int, field: bytes) -> bytes:
    """Plain response data of a CommMode.MAC answer, after its MAC verified."""
    if len(field) < 8:
        raise Ev2Error("CommMode.MAC response is shorter than its MAC")
    data, mact = field[:-8], field[-8:]
    if not hmac.compare_digest(session.response_mact(status, data), mact):
        raise Ev2Error("response MAC does not verify")
    return data


# --- Secure messaging, PICC side (the simulator) ---------------------------------------


def open_command_full(
    session: Ev2Session, cmd: int, header_length: int, field: bytes
) -> tuple[bytes, bytes]:
    """(header, plain data) of a CommMode.Full command, after its MAC verified."""
    if len(field) < header_length + 8 or (len(field) - header_length - 8) % 16:
        raise Ev2Error("CommMode.Full command has a bad length")
    header, encrypted, mact = field[:header_length], field[header_length:-8], field[-8:]
    if not hmac.compare_digest(session.command_mact(cmd, header, encrypted), mact):
        raise Ev2Error("command MAC does not verify")
    if not encrypted:
        return header, b""
    return header, unpad(aes_cbc_decrypt(session.enc_key, session.command_iv(), encrypted))


def open_command_mac(
    session: Ev2Session, cmd: int, header_length: int, field: bytes
) -> tuple[bytes, bytes]:
    """(header, data) of a CommMode.MAC command, after its MAC verified."""
    if len(field) < header_length + 8:
        raise Ev2Error("CommMode.MAC command is shorter than its MAC")
    header, data, mact = field[:header_length], field[header_length:-8], field[-8:]
    if not hmac.compare_digest(session.command_mact(cmd, header, data), mact):
        raise Ev2Error("command MAC does not verify")
    return header, data


def seal_response_full(session: Ev2Session, status: int, data: bytes) -> bytes:
    """Response field of a CommMode.Full answer: E(pad(data)) || MACt (empty data: MACt)."""
    encrypted = aes_cbc_encrypt(session.enc_key, session.response_iv(), pad(data)) if data else b""
    return encrypted + session.response_mact(status, encrypted)


def seal_response_mac(session: Ev2Session, status: int, data: bytes) -> bytes:
    """Response field of a CommMode.MAC answer: data || MACt."""
    return data + session.response_mact(status, data)


def change_key_data(
    key_no: int, auth_key_no: int, old_key: bytes, new_key: bytes, version: int
) -> bytes:
    """Plain ChangeKey data before padding (NT4H2421Gx §10.6.1 Table 63).

    Changing the key the session authenticated with: NewKey || KeyVer. Any other key:
    (NewKey XOR OldKey) || KeyVer || CRC32NK(NewKey).
    """
    if len(new_key) != 16 or len(old_key) != 16:
        raise ValueError("keys are 16 bytes (AES-128)")
    if not 0 <= version <= 0xFF:
        raise ValueError("key version is one byte")
    if key_no == auth_key_no:
        return new_key + bytes([version])
    xored = bytes(a ^ b for a, b in zip(new_key, old_key, strict=True))
    return xored + bytes([version]) + crc32_nk(new_key)
