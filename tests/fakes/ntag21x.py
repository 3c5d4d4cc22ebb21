"""A simulated NTAG 213/215/216: the chip side of the Type 2 commands the host uses.

Written from the NTAG213/215/216 datasheet Rev. 3.2 (memory §8.5, lock bytes §8.5.2 and
§8.5.3, ACK/NAK §9.3, commands §10) on its own, without the host's `firmware_tools.chips.ntag21x`
layout code, so that a bug there cannot hide itself here.

Interface used by the PN532 emulator (the same shape as `tests.fakes.ntag424`): `uid`,
`sens_res` (ATQA 00 44), `sel_res` (SAK 00), `activate()` (a new RF activation) and
`exchange(command) -> response`. A 4-bit ACK or NAK comes back as a `FourBit` (a one-byte
`bytes` subclass) so that the emulator can tell it from data; `None` means the tag does not
answer at all (after a NAK the chip is back in IDLE and ignores everything until it is
selected again, §9.3).
"""

from __future__ import annotations

from dataclasses import dataclass, field

ACK = 0x0A
NAK_INVALID = 0x00  # §9.3: invalid argument (page out of range, locked page)


class FourBit(bytes):
    """A 4-bit ACK/NAK frame, not a data byte."""


# §8.5 Tables 4-6: (pages, user pages end, CC size byte, GET_VERSION storage byte,
# pages locked per dynamic lock bit).
VARIANTS = {
    213: (0x2D, 0x27, 0x12, 0x0F, 2),
    215: (0x87, 0x81, 0x3E, 0x11, 16),
    216: (0xE7, 0xE1, 0x6D, 0x13, 16),
}


@dataclass
class SimulatedNtag21x:
    """One NTAG 21x in the field; memory is a bytearray of all pages."""

    uid: bytes
    signature: bytes = bytes(32)
    variant: int = 215
    sens_res: bytes = b"\x00\x44"
    sel_res: int = 0x00
    log: list[tuple[bytes, bytes | None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if len(self.uid) != 7:
            raise ValueError("an NTAG 21x has a 7-byte UID")
        pages, last_user, cc_size, _, _ = VARIANTS[self.variant]
        self.memory = bytearray(pages * 4)
        u = self.uid
        # §8.5.1: BCC0 = CT (88h) ^ UID0 ^ UID1 ^ UID2; BCC1 = UID3 ^ UID4 ^ UID5 ^ UID6.
        self.memory[0:8] = u[:3] + bytes((0x88 ^ u[0] ^ u[1] ^ u[2],)) + u[3:]
        self.memory[8] = u[3] ^ u[4] ^ u[5] ^ u[6]
        self.memory[9] = 0x48  # internal
        # §8.5.6: the capability container is programmed at delivery; empty NDEF TLV.
        self.memory[12:16] = bytes((0xE1, 0x10, cc_size, 0x00))
        self.memory[16:20] = bytes((0x03, 0x00, 0xFE, 0x00))
        dyn = (last_user + 1) * 4
        self.memory[dyn : dyn + 4] = bytes((0x00, 0x00, 0x00, 0xBD))
        self.memory[dyn + 4 : dyn + 8] = bytes((0x04, 0x00, 0x00, 0xFF))  # CFG0, AUTH0 = FF
        self.memory[dyn + 8 : dyn + 12] = bytes((0x00, 0x05, 0x00, 0x00))  # CFG1
        self.active = False

    # --- RF layer -------------------------------------------------------------------

    def activate(self) -> None:
        """Selected by the reader (ISO 14443-3 anticollision done)."""
        self.active = True

    def exchange(self, command: bytes) -> bytes | None:
        """One Type 2 command in, its answer out (data, `FourBit` ACK/NAK, or None)."""
        response = self._dispatch(bytes(command)) if self.active else None
        if isinstance(response, FourBit) and response[0] != ACK:
            self.active = False  # §9.3: after a NAK the tag falls back to IDLE
        self.log.append((bytes(command), response))
        return response

    # --- test helpers -------------------------------------------------------------------

    def page(self, number: int) -> bytes:
        """The raw content of one page, as stored."""
        return bytes(self.memory[number * 4 : number * 4 + 4])

    def lock_page(self, number: int) -> None:
        """Set the static lock bit of page 3-15 (§8.5.2), as a host's WRITE to page 2 would."""
        if not 3 <= number <= 15:
            raise ValueError("static lock bits cover pages 3 to 15")
        if number < 8:
            self.memory[10] |= 1 << number
        else:
            self.memory[11] |= 1 << (number - 8)

    # --- commands -----------------------------------------------------------------------

    @property
    def _pages(self) -> int:
        return VARIANTS[self.variant][0]

    def _dispatch(self, command: bytes) -> bytes:
        if not command:
            return FourBit((NAK_INVALID,))
        code = command[0]
        if code == 0x60 and len(command) == 1:  # §10.1 GET_VERSION
            storage = VARIANTS[self.variant][3]
            return bytes((0x00, 0x04, 0x04, 0x02, 0x01, 0x00, storage, 0x03))
        if code == 0x30 and len(command) == 2:  # §10.2 READ
            return self._read(command[1])
        if code == 0xA2 and len(command) == 6:  # §10.4 WRITE
            return self._write(command[1], command[2:6])
        if code == 0x3C and len(command) == 2:  # §10.7 READ_SIG
            return bytes(self.signature) if command[1] == 0x00 else FourBit((NAK_INVALID,))
        return FourBit((NAK_INVALID,))

    def _read(self, start: int) -> bytes:
        if start >= self._pages:
            return FourBit((NAK_INVALID,))
        out = bytearray()
        for i in range(4):
            page = (start + i) % self._pages  # §10.2: roll-over to page 0
            data = self.page(page)
            if page >= self._pages - 2:
                data = bytes(4)  # PWD and PACK always read as 00h
            out += data
        return bytes(out)

    def _locked(self, page: int) -> bool:
        lock0, lock1 = self.memory[10], self.memory[11]
        if page < 3:
            return page < 2  # UID pages are read-only; page 2 holds the lock bytes
        if page < 8:
            return bool(lock0 >> page & 1)  # §8.5.2: L-CC, L4 .. L7 in bits 3..7
        if page < 16:
            return bool(lock1 >> (page - 8) & 1)
        _, last_user, _, _, per_bit = VARIANTS[self.variant]
        if page > last_user:
            return False
        # §8.5.3: each dynamic lock bit locks `per_bit` pages from page 16 on.
        dyn = (last_user + 1) * 4
        bit = (page - 16) // per_bit
        dynamic = self.memory[dyn] | self.memory[dyn + 1] << 8 | self.memory[dyn + 2] << 16
        return bool(dynamic >> bit & 1)

    def _write(self, page: int, data: bytes) -> bytes:
        if page < 2 or page >= self._pages or self._locked(page):
            return FourBit((NAK_INVALID,))
        at = page * 4
        if page == 2:
            # §8.5.2: only the lock bytes are writable, and bits can only be set.
            self.memory[at + 2] |= data[2]
            self.memory[at + 3] |= data[3]
        elif page == 3:
            # §8.5.6: the capability container is OTP: written bits are ORed in.
            for i in range(4):
                self.memory[at + i] |= data[i]
        elif page == VARIANTS[self.variant][1] + 1:
            for i in range(3):  # dynamic lock bytes: OR; byte 3 is RFUI
                self.memory[at + i] |= data[i]
        else:
            self.memory[at : at + 4] = data
        return FourBit((ACK,))
