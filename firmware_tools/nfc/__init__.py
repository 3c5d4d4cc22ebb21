"""NFC readers and the tags in their field, above whichever transport carries the frames.

Layers (STYLE.md "Hardware"): a transport (`firmware_tools.nfc.libnfc`, libnfc through
pynfc) gives a `Link` to the selected target; the tag classes here turn tag commands into
link exchanges, using the chip and format layers (`firmware_tools.chips.ntag21x`,
`firmware_tools.formats.ndef`); `open_reader` picks the transport. Nothing here imports
libnfc until a reader is opened.

    with open_reader("pn532_uart:/dev/ttyUSB0") as reader:
        tag = reader.wait_for_tag(timeout_s=5)
        if isinstance(tag, Ntag21x):
            url = tag.read_ndef_url()
"""

from __future__ import annotations

from typing import Protocol

from firmware_tools.chips.ntag21x import (
    FIRST_USER_PAGE,
    NTAG213,
    PAGE_SIZE,
    Ntag21xLayout,
    check_response,
    get_version_command,
    layout_for_version,
    nak_meaning,
    read_command,
    read_sig_command,
    write_command,
)
from firmware_tools.chips.ntag424.ev2 import CMD_READ_SIG
from firmware_tools.chips.ntag424.personalize import SELECT_NDEF_APPLICATION, native_apdu
from firmware_tools.errors import FormatError, TagCommandError, TagLocked, TagNak, TagNotFound
from firmware_tools.formats.ndef import (
    decode_uri_record,
    parse_capability_container,
    parse_type2_image,
    tlv_area_length,
)

__all__ = [
    "Link",
    "Ntag21x",
    "Ntag424",
    "Reader",
    "Tag",
    "TagNak",
    "classify",
    "open_reader",
]


class Link(Protocol):
    """The selected target, as a transport exposes it."""

    def transceive(self, data: bytes, *, raw: bool = False, idempotent: bool = False) -> bytes:
        """Send a tag command, return its answer; raises TagNak, ReaderError subclasses.

        `raw` bypasses the reader's own handling of MIFARE command codes (PN532
        InCommunicateThru instead of InDataExchange). Only an `idempotent` command (one the
        tag may run twice with the same effect) is sent again after a link error; for any
        other the transport raises OutcomeUnknown.
        """
        ...

    def reselect(self) -> None:
        """Select the same tag again (after a NAK it is back in IDLE)."""
        ...


class Tag(Protocol):
    uid: bytes


class Ntag21x:
    """An NTAG 213/215/216 in the field."""

    def __init__(self, link: Link, uid: bytes, layout: Ntag21xLayout) -> None:
        self._link = link
        self.uid = uid
        self.layout = layout

    def __repr__(self) -> str:
        return f"<{self.layout.name} {self.uid.hex().upper()}>"

    def _command(self, command: bytes, expected: int, *, raw: bool = False) -> bytes:
        # Every command used here is idempotent: READ, GET_VERSION and READ_SIG change
        # nothing, and a WRITE of the same 4 bytes to the same page leaves the same page
        # (lock and OTP bytes are ORed in, so a second write adds nothing; datasheet §10.4).
        try:
            answer = self._link.transceive(command, raw=raw, idempotent=True)
            return check_response(command, answer, expected)
        except TagCommandError:
            # NTAG datasheet §9.3: after a NAK the tag is in IDLE; select it again so that
            # the next command on this object works.
            self._link.reselect()
            raise

    def get_version(self) -> bytes:
        """The 8-byte GET_VERSION answer (datasheet §10.1)."""
        # Sent raw: a PN532 reads 60h in InDataExchange as MIFARE Classic authentication.
        return self._command(get_version_command(), 8, raw=True)

    def read_pages(self, start: int) -> bytes:
        """16 bytes: pages start .. start+3, rolling over at the end (datasheet §10.2)."""
        if not 0 <= start < self.layout.pages:
            last = self.layout.pages - 1
            raise FormatError(f"page {start} is outside {self.layout.name} (0-{last})")
        return self._command(read_command(start), 16)

    def read_signature(self) -> bytes:
        """The 32-byte NXP originality signature (datasheet §10.7)."""
        return self._command(read_sig_command(), 32, raw=True)

    def write_page(self, page: int, data: bytes) -> None:
        """Write one page; TagLocked if the tag refuses it (datasheet §10.4)."""
        # Pages 0-1 (UID) are read-only by design; the tag itself says so with a NAK.
        if not 0 <= page < self.layout.pages:
            raise FormatError(f"page {page} is outside {self.layout.name}")
        command = write_command(page, data)
        try:
            self._command(command, 0)
        except TagCommandError as exc:
            if not isinstance(exc, TagNak) and exc.status is None:
                raise
            # §9.3: NAK 0h to a WRITE of an existing page means the page is locked.
            raise TagLocked(
                f"{self.layout.name} {self.uid.hex().upper()} refused to write page {page}:"
                f" {nak_meaning(exc.status or 0)}; the page is locked"
            ) from None

    def read_ndef_image(self) -> bytes:
        """Page 3 (capability container) and the data area up to the end of the NDEF TLV."""
        first = self.read_pages(3)
        cc = parse_capability_container(first[:4])
        area = bytearray(first[4:])
        page = FIRST_USER_PAGE + 3
        limit = min(cc.data_area_size, self.layout.user_memory)
        while (needed := tlv_area_length(bytes(area))) is None and len(area) < limit:
            area += self.read_pages(page)
            page += 4
        if needed is None:
            needed = len(area)
        return first[:4] + bytes(area[:needed])

    def read_ndef_url(self) -> str:
        """The URI of the tag's NDEF message."""
        return decode_uri_record(parse_type2_image(self.read_ndef_image()))

    def write_ndef_image(self, pages: list[tuple[int, bytes]]) -> None:
        """Write (page, 4 bytes) pairs, e.g. from `ntag21x.image_pages`, in order."""
        for page, data in pages:
            if len(data) != PAGE_SIZE:
                raise FormatError(f"page {page}: {len(data)} bytes, a page is {PAGE_SIZE}")
            self.write_page(page, data)


# Short enough for one PN532 frame with ISO-DEP overhead (PN532 UM §6.2: 262-byte payload).
NTAG424_READ_CHUNK = 0x80


class Ntag424:
    """An NTAG 424 DNA (ISO 14443-4) in the field: APDUs in, responses out."""

    def __init__(self, link: Link, uid: bytes, ats: bytes) -> None:
        self._link = link
        self.uid = uid
        self.ats = ats

    def __repr__(self) -> str:
        return f"<NTAG 424 DNA {self.uid.hex().upper()}>"

    def exchange(self, apdu: bytes, *, idempotent: bool = False) -> bytes:
        """One C-APDU, its R-APDU (data || SW1 SW2); ISO-DEP framing is the reader's job.

        Not sent again after a link error unless `idempotent`: inside an EV2 session every
        command moves the command counter, and ChangeKey must never run twice.
        """
        return self._link.transceive(bytes(apdu), idempotent=idempotent)

    def read_ndef_url(self) -> str:
        """The URL in the NDEF file; a SUN tag mirrors fresh PICC data and MAC on each tap."""
        # NFC Forum Type 4 Tag §5.4 and NT4H2421Gx §8.2: select the NDEF application by its
        # name, then file E104, read NLEN, then the message, in plain ISO ReadBinary.
        self._iso("select the NDEF application", SELECT_NDEF_APPLICATION)
        self._iso("select the NDEF file", bytes.fromhex("00A4000C02E104"))
        length = int.from_bytes(self._iso("read NLEN", bytes.fromhex("00B0000002")), "big")
        message = b""
        while len(message) < length:
            offset = 2 + len(message)
            size = min(length - len(message), NTAG424_READ_CHUNK)
            apdu = bytes((0x00, 0xB0, offset >> 8, offset & 0xFF, size))
            message += self._iso("read the NDEF file", apdu)
        try:
            return decode_uri_record(message)
        except FormatError as exc:
            raise TagCommandError(f"the NDEF file holds no URI record: {exc}") from exc

    def read_signature(self) -> bytes:
        """NXP's originality signature: 56 bytes, ECDSA secp224r1 r || s over the UID."""
        # NT4H2421Gx Read_Sig: native command 3C with address 00; plain outside a session.
        response = self.exchange(native_apdu(CMD_READ_SIG, b"\x00"), idempotent=True)
        if response[-2:] != b"\x91\x00" or len(response) != 58:
            status = int.from_bytes(response[-2:], "big") if len(response) >= 2 else None
            raise TagCommandError(f"the tag refused Read_Sig ({response.hex().upper()})", status)
        return response[:-2]

    def _iso(self, what: str, apdu: bytes) -> bytes:
        # Plain ISO selects and reads outside a session: safe to send twice (a second
        # read of the SDM file in the same activation mirrors the same counter).
        response = self.exchange(apdu, idempotent=True)
        if len(response) < 2 or response[-2:] != b"\x90\x00":
            status = int.from_bytes(response[-2:], "big") if len(response) >= 2 else None
            raise TagCommandError(f"the tag refused to {what} ({response.hex().upper()})", status)
        return response[:-2]


def classify(link: Link, uid: bytes, atqa: bytes, sak: int, ats: bytes) -> Ntag21x | Ntag424:
    """The tag class for a selected target, from SAK, ATQA and (Type 2) GET_VERSION."""
    # ISO 14443-3 §6.5.3.4: SAK bit 6 (20h) = compliant with ISO 14443-4.
    if sak & 0x20:
        return Ntag424(link, uid, ats)
    # NTAG datasheet §8.4: ATQA 0044h, SAK 00h: a Type 2 tag; GET_VERSION names the chip.
    if sak == 0x00 and atqa == b"\x00\x44" and len(uid) == 7:
        try:
            # Only get_version is used on the probe, which needs no layout.
            version = Ntag21x(link, uid, NTAG213).get_version()
            layout = layout_for_version(version)
        except (TagCommandError, TagNotFound, FormatError) as exc:
            # A Type 2 tag without GET_VERSION (MIFARE Ultralight) NAKs or stays silent.
            raise TagCommandError(
                f"Type 2 tag {uid.hex().upper()} is not an NTAG 213/215/216: {exc}"
            ) from None
        return Ntag21x(link, uid, layout)
    raise TagCommandError(
        f"tag {uid.hex().upper()} (ATQA {atqa.hex()}, SAK {sak:02x}) is neither an NTAG 21x"
        " nor an NTAG 424 DNA"
    )


class Reader(Protocol):
    """An open NFC reader; use it as a context manager."""

    def wait_for_tag(self, timeout_s: float = 5.0) -> Ntag21x | Ntag424:
        """The next tag in the field; TagNotFound after `timeout_s`."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Reader: ...

    def __exit__(self, *exc: object) -> None: ...


def open_reader(connstring: str | None = None) -> Reader:
    """Open a reader through libnfc (`pn532_uart:/dev/ttyUSB0`, or None for the default).

    Raises ReaderNotFound with words when libnfc is missing or the device does not open.
    """
    from firmware_tools.nfc.libnfc import LibnfcReader

    return LibnfcReader(connstring)
