"""A PN532 on a pseudo-terminal, for libnfc's pn532_uart driver.

`Pn532` is the chip: host frames in, reader frames out, no I/O, so that a recorded libnfc
trace can be replayed through it byte for byte. `Pn532Emulator` puts it behind a pty in a
thread; point libnfc at `emulator.connstring` (`pn532_uart:/dev/pts/N`).

Written from the PN532 User Manual (UM0701-02): §6.2.1 frames (normal 00 00 FF LEN LCS
D4 CMD ... DCS 00, extended 00 00 FF FF FF LENM LENL LCS ..., ACK 00 00 FF 00 FF 00,
NACK 00 00 FF FF 00 00, syntax error frame 00 00 FF 01 FF 7F 81 00), §6.2.2 (the HSU wake-up
preamble 55 55 00 00 ...), §7 (commands) and §7.1 (error codes); checked against
tests/vectors/libnfc_1.8.0_pn532_uart_trace.txt.

It answers exactly the commands libnfc 1.8 sends to open a device, list targets and talk to
them. Anything else is recorded in `errors` (and answered with a syntax error frame, as
the chip does), so that a test fails instead of passing by accident. Faults a real link
shows can be injected: `garble_next()` (the next answer has a bad checksum), `nack_next()`
(the next command is answered with a NACK instead of an ACK and is not executed),
`fall_silent()` (no answer at all until `resume()`). Faults tied to one tag command:
`garble_answer_to(match)` (the tag executes the first matching command, its answer
reaches the host with a bad checksum) and `leave_field_after(match)` (the tag executes it,
then leaves the field before it answers). A tag that leaves the field, this way or by
`remove()` while selected, is reported as a real PN532 reports a target that stopped
answering: status 01h (time out, §7.1) to every InDataExchange until the host releases
it or lists targets again; libnfc reads that as NFC_ERFTRANS.

Tags: any object with `uid`, `sens_res`, `sel_res`, `activate()` and `exchange()`
(`tests.fakes.ntag21x.SimulatedNtag21x`, `tests.fakes.ntag424.SimulatedNtag424`); a tag
whose SAK has bit 6 (20h) set is ISO 14443-4 and must also have `ats`.
"""

from __future__ import annotations

import os
import select
import threading
import tty
from collections import deque
from collections.abc import Callable
from typing import Any

from tests.fakes.ntag21x import ACK as TAG_ACK
from tests.fakes.ntag21x import FourBit

HOST_TFI = 0xD4
CHIP_TFI = 0xD5
ACK_FRAME = bytes.fromhex("0000FF00FF00")
NACK_FRAME = bytes.fromhex("0000FFFF0000")
SYNTAX_ERROR_FRAME = bytes.fromhex("0000FF01FF7F8100")

# §7.1 Table 15 error codes used here.
STATUS_OK = 0x00
STATUS_TIMEOUT = 0x01  # the target has not answered
STATUS_MIFARE_ERROR = 0x14  # MIFARE authentication error
STATUS_NOT_ACCEPTABLE = 0x27  # command not acceptable in the current context

# GetFirmwareVersion: IC 32h (PN532), version 1.6, support 07h (ISO 18092, ISO/IEC 14443
# types A and B), as the trace shows.
FIRMWARE_VERSION = bytes.fromhex("32010607")


def frame(payload: bytes) -> bytes:
    """A reader-to-host information frame (normal, or extended above 255 bytes)."""
    body = bytes((CHIP_TFI,)) + payload
    dcs = -sum(body) & 0xFF
    if len(body) <= 255:
        return bytes((0x00, 0x00, 0xFF, len(body), -len(body) & 0xFF)) + body + bytes((dcs, 0))
    high, low = len(body) >> 8, len(body) & 0xFF
    head = bytes((0x00, 0x00, 0xFF, 0xFF, 0xFF, high, low, -(high + low) & 0xFF))
    return head + body + bytes((dcs, 0))


class Pn532:
    """The chip's side of the host link: `feed(bytes) -> bytes`, no I/O."""

    def __init__(self, tags: list[Any] | tuple[Any, ...] = ()) -> None:
        self.tags: list[Any] = list(tags)
        self.registers: dict[int, int] = {}
        self.field_on = False
        self.selected: Any = None
        self.halted: set[int] = set()  # id() of tags sent to HALT since the last field reset
        self.errors: list[str] = []
        self.commands: list[bytes] = []  # every host command, D4 stripped
        self._buffer = bytearray()
        self._last_answer = b""
        self._faults: deque[str] = deque()
        self._command_faults: list[tuple[Callable[[bytes], bool], str]] = []
        self._garble_answer = False
        self.lost_target = False  # the selected tag left the field; the chip still holds it
        self.silent = False

    # --- faults -------------------------------------------------------------------------

    def garble_next(self) -> None:
        self._faults.append("garble")

    def nack_next(self) -> None:
        self._faults.append("nack")

    def garble_answer_to(self, match: Callable[[bytes], bool]) -> None:
        """The first tag command `match` accepts runs; its answer frame is garbled."""
        self._command_faults.append((match, "garble"))

    def leave_field_after(self, match: Callable[[bytes], bool]) -> None:
        """The first tag command `match` accepts runs; then the tag leaves, unanswered."""
        self._command_faults.append((match, "leave"))

    def fall_silent(self) -> None:
        self.silent = True

    def resume(self) -> None:
        self.silent = False

    # --- the field ----------------------------------------------------------------------

    def place(self, tag: Any) -> None:
        """Put a tag into the field."""
        self.tags.append(tag)

    def remove(self, tag: Any) -> None:
        """Take a tag out of the field."""
        self.tags.remove(tag)
        self.halted.discard(id(tag))
        if self.selected is tag:
            self.selected = None
            self.lost_target = True

    # --- framing (§6.2.1) -------------------------------------------------------------

    def feed(self, data: bytes) -> bytes:
        """Bytes from the host in; bytes for the host out."""
        self._buffer += data
        out = bytearray()
        while True:
            start = self._buffer.find(b"\x00\xff")
            if start < 0:
                self._skip(len(self._buffer) - 1 if self._buffer.endswith(b"\x00") else None)
                return bytes(out)
            self._skip(start)
            buf = self._buffer
            if len(buf) < 4:
                return bytes(out)
            length, lcs = buf[2], buf[3]
            if (length, lcs) == (0x00, 0xFF):  # host ACK: aborts the running command
                del buf[:4]
                continue
            if (length, lcs) == (0xFF, 0x00):  # host NACK: send the last answer again
                del buf[:4]
                if not self.silent:
                    out += self._last_answer
                continue
            if (length, lcs) == (0xFF, 0xFF):  # extended frame
                if len(buf) < 7:
                    return bytes(out)
                length = buf[4] << 8 | buf[5]
                if (buf[4] + buf[5] + buf[6]) & 0xFF:
                    self._error(f"extended frame with a bad length checksum: {bytes(buf).hex()}")
                    del buf[:2]
                    continue
                body_at = 7
            else:
                if (length + lcs) & 0xFF:
                    self._error(f"frame with a bad length checksum: {bytes(buf[:4]).hex()}")
                    del buf[:2]
                    continue
                body_at = 4
            if len(buf) < body_at + length + 1:
                return bytes(out)
            body = bytes(buf[body_at : body_at + length])
            dcs = buf[body_at + length]
            del buf[: body_at + length + 1]
            if (sum(body) + dcs) & 0xFF:
                self._error(f"frame with a bad data checksum: {body.hex()}")
                continue
            if not body or body[0] != HOST_TFI:
                self._error(f"frame without the host TFI D4: {body.hex()}")
                continue
            out += self._answer(body[1:])

    def _skip(self, count: int | None) -> None:
        # Before a start code only the wake-up preamble (55 55 00 ...) and postambles may
        # appear (§6.2.2); anything else is a framing bug worth failing on.
        dropped = bytes(self._buffer if count is None else self._buffer[:count])
        if dropped.strip(b"\x55\x00"):
            self._error(f"bytes outside a frame: {dropped.hex()}")
        del self._buffer[: len(dropped)]

    def _error(self, message: str) -> None:
        self.errors.append(message)

    def _answer(self, command: bytes) -> bytes:
        self.commands.append(command)
        if self.silent:
            return b""
        fault = self._faults.popleft() if self._faults else None
        if fault == "nack":
            return NACK_FRAME
        if not command:
            self._error("empty command")
            return ACK_FRAME + SYNTAX_ERROR_FRAME
        handler = self._handlers().get(command[0])
        if handler is None:
            self._error(f"unexpected command {command.hex()}")
            return ACK_FRAME + SYNTAX_ERROR_FRAME
        payload = handler(command[1:])
        if payload is None:
            return ACK_FRAME + SYNTAX_ERROR_FRAME
        answer = frame(bytes((command[0] + 1,)) + payload)
        self._last_answer = answer
        if fault == "garble" or self._garble_answer:
            self._garble_answer = False
            answer = answer[:-2] + bytes(((answer[-2] + 1) & 0xFF, 0))
        return ACK_FRAME + answer

    # --- commands (§7) ----------------------------------------------------------------

    def _handlers(self) -> dict:
        return {
            0x00: self._diagnose,
            0x02: lambda params: FIRMWARE_VERSION,
            0x06: self._read_register,
            0x08: self._write_register,
            0x12: lambda params: b"",  # SetParameters
            0x14: lambda params: b"",  # SAMConfiguration
            0x16: lambda params: bytes((STATUS_OK,)),  # PowerDown
            0x32: self._rf_configuration,
            0x40: self._in_data_exchange,
            0x42: self._in_communicate_thru,
            0x44: self._in_deselect,
            0x4A: self._in_list_passive_target,
            0x52: self._in_deselect,  # InRelease: the same for a target in the field
        }

    def _diagnose(self, params: bytes) -> bytes | None:
        # §7.2.1: only NumTst 00h (communication line test: echo) is used by libnfc.
        if not params or params[0] != 0x00:
            self._error(f"Diagnose test {params.hex()} is not emulated")
            return None
        return params

    def _read_register(self, params: bytes) -> bytes | None:
        if len(params) % 2:
            self._error(f"ReadRegister with an odd parameter length: {params.hex()}")
            return None
        return bytes(
            self.registers.get(params[i] << 8 | params[i + 1], 0) for i in range(0, len(params), 2)
        )

    def _write_register(self, params: bytes) -> bytes | None:
        if len(params) % 3:
            self._error(f"WriteRegister with a bad parameter length: {params.hex()}")
            return None
        for i in range(0, len(params), 3):
            self.registers[params[i] << 8 | params[i + 1]] = params[i + 2]
        return b""

    def _rf_configuration(self, params: bytes) -> bytes:
        # §7.3.1: item 01h is the RF field; the others (timings, retries, analog settings)
        # change nothing a simulated tag can notice.
        if params[:1] == b"\x01":
            self.field_on = bool(params[1] & 0x01)
            if not self.field_on:
                # Tags lose power: HALT state and selection are forgotten.
                self.halted.clear()
                self.selected = None
                self.lost_target = False
        return b""

    def _in_list_passive_target(self, params: bytes) -> bytes:
        # §7.3.5: MaxTg, BrTy, InitiatorData. Only 106 kbps type A tags are emulated;
        # the FeliCa, type B and Jewel probes of nfc-list find nothing.
        if len(params) < 2 or params[1] != 0x00:
            return b"\x00"
        wanted = params[2:]
        # libnfc passes a selection UID with its cascade tag (88h) in front (ISO 14443-3).
        if len(wanted) == 8 and wanted[0] == 0x88:
            wanted = wanted[1:]
        for tag in self.tags:
            if id(tag) in self.halted or (wanted and bytes(tag.uid) != wanted):
                continue
            tag.activate()
            self.field_on = True
            self.selected = tag
            self.lost_target = False
            sens_res = tag.sens_res
            if isinstance(sens_res, int):
                sens_res = sens_res.to_bytes(2, "big")
            answer = bytes((1, 1)) + bytes(sens_res) + bytes((tag.sel_res, len(tag.uid)))
            answer += bytes(tag.uid)
            if tag.sel_res & 0x20:
                # SetParameters fAutomaticRATS: the chip sends RATS and reports the ATS
                # (with its length byte TL first).
                answer += bytes(tag.ats)
            return answer
        return b"\x00"

    def _target(self, tg: int) -> Any:
        if self.selected is None or tg & 0x0F != 1:
            return None
        return self.selected

    def _command_fault(self, data: bytes) -> str | None:
        for i, (match, fault) in enumerate(self._command_faults):
            if match(data):
                del self._command_faults[i]
                return fault
        return None

    def _in_data_exchange(self, params: bytes) -> bytes:
        tag = self._target(params[0]) if params else None
        if tag is None:
            if self.lost_target and params[:1] == b"\x01":
                # The target is still on the chip's list but does not answer: the chip
                # waits out its timeout and reports 01h (§7.1), as for a silent tag.
                return bytes((STATUS_TIMEOUT,))
            return bytes((STATUS_NOT_ACCEPTABLE,))
        data = params[1:]
        if tag.sel_res & 0x20:
            # ISO 14443-4: the chip does the ISO-DEP block framing; the data is the APDU.
            fault = self._command_fault(data)
            answer = bytes(tag.exchange(data))
            if fault == "leave":
                # The tag ran the command and was pulled away before its answer (or the
                # chip's retransmissions of it) came back: a time out.
                self.remove(tag)
                return bytes((STATUS_TIMEOUT,))
            self._garble_answer = fault == "garble"
            return bytes((STATUS_OK,)) + answer
        if data[:1] in (b"\x60", b"\x61"):
            # PN532 quirk (§7.3.8 Table 19): for a MIFARE target, InDataExchange reads 60h
            # and 61h as MIFARE Classic authentication with key A/B, not as a raw byte,
            # so an NTAG GET_VERSION (60h) sent this way fails the Crypto1 handshake.
            return bytes((STATUS_MIFARE_ERROR,))
        reply = tag.exchange(data)
        if reply is None:
            return bytes((STATUS_TIMEOUT,))
        if isinstance(reply, FourBit):
            if reply[0] == TAG_ACK:
                return bytes((STATUS_OK,))  # the chip consumes the 4-bit ACK of a WRITE
            # Model: a 4-bit NAK is reported as a MIFARE error (14h), which libnfc maps to
            # NFC_EMFCAUTHFAIL; the tag is then out of ACTIVE state (IDLE), like a MIFARE
            # Classic after a failed authentication.
            self.selected = None
            return bytes((STATUS_MIFARE_ERROR,))
        return bytes((STATUS_OK,)) + bytes(reply)

    def _in_communicate_thru(self, params: bytes) -> bytes:
        tag = self.selected
        if tag is None or not params or tag.sel_res & 0x20:
            # Nothing answers (nfc-list's ISO 14443B', SRx, CTS, iClass, barcode probes).
            return bytes((STATUS_TIMEOUT,))
        reply = tag.exchange(params)
        if reply is None:
            return bytes((STATUS_TIMEOUT,))
        # Model: the raw path hands a 4-bit ACK/NAK up as one byte (its 4 bits).
        return bytes((STATUS_OK,)) + bytes(reply)

    def _in_deselect(self, params: bytes) -> bytes:
        # §7.3.10/7.3.11: InDeselect and InRelease put the target to HALT (HLTA, or
        # S(DESELECT) for ISO-DEP); a halted tag ignores REQA until the field is reset,
        # which is how libnfc's listing loop sees that no new target is left.
        tg = params[0] if params else 0
        if tg in (0, 1):
            self.lost_target = False
        if self.selected is not None and tg in (0, 1):
            self.halted.add(id(self.selected))
            self.selected = None
        return bytes((STATUS_OK,))


class Pn532Emulator:
    """A `Pn532` behind a pseudo-terminal, served by a thread; a context manager."""

    def __init__(self, tags: list[Any] | tuple[Any, ...] = ()) -> None:
        self.chip = Pn532(tags)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.master_fd = -1
        self.slave_fd = -1
        self.path = ""

    @property
    def connstring(self) -> str:
        return f"pn532_uart:{self.path}"

    @property
    def errors(self) -> list[str]:
        return self.chip.errors

    def start(self) -> Pn532Emulator:
        self.master_fd, self.slave_fd = os.openpty()
        # Raw mode on our end of the slave: with the default line discipline the bytes we
        # write would be echoed back to us as if the host had sent them.
        tty.setraw(self.slave_fd)
        self.path = os.ttyname(self.slave_fd)
        self._thread = threading.Thread(target=self._serve, name="pn532-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            if self._thread.is_alive():
                self.chip.errors.append("emulator thread did not stop within 2 s")
        for fd in (self.master_fd, self.slave_fd):
            if fd >= 0:
                os.close(fd)
        self.master_fd = self.slave_fd = -1

    def __enter__(self) -> Pn532Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(self) -> None:
        # The slave stays open on our side too, so that the master never sees a hang-up
        # (EIO) between two libnfc sessions.
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master_fd], [], [], 0.05)
            if not ready:
                continue
            try:
                data = os.read(self.master_fd, 4096)
            except OSError as exc:
                self.chip.errors.append(f"pty read failed: {exc}")
                return
            with self._lock:
                out = self.chip.feed(data)
            if out:
                os.write(self.master_fd, out)

    # Faults and the field, under the lock the serving thread takes.

    def garble_next(self) -> None:
        with self._lock:
            self.chip.garble_next()

    def nack_next(self) -> None:
        with self._lock:
            self.chip.nack_next()

    def garble_answer_to(self, match: Callable[[bytes], bool]) -> None:
        with self._lock:
            self.chip.garble_answer_to(match)

    def leave_field_after(self, match: Callable[[bytes], bool]) -> None:
        with self._lock:
            self.chip.leave_field_after(match)

    def fall_silent(self) -> None:
        with self._lock:
            self.chip.fall_silent()

    def resume(self) -> None:
        with self._lock:
            self.chip.resume()

    def place(self, tag: Any) -> None:
        with self._lock:
            self.chip.place(tag)

    def remove(self, tag: Any) -> None:
        with self._lock:
            self.chip.remove(tag)
