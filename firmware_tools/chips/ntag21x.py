"""NTAG 213/215/216: memory layouts, Type 2 commands, and the signed URL bound to the chip UID.

Pure: no I/O; keys are arguments.

Sources: NXP NTAG213/215/216 datasheet Rev. 3.2: §8.5 (memory organisation, Table 4-6),
§8.5.1 (UID and check bytes BCC0 = 88h ^ UID0 ^ UID1 ^ UID2, BCC1 = UID3 ^ ... ^ UID6),
§8.5.2 (static lock bytes), §8.5.6 (capability container: E1 10 12/3E/6D 00), §9.3 (ACK Ah,
NAK 0h/1h/4h/5h), §10.1 GET_VERSION, §10.2 READ, §10.4 WRITE, §10.7 READ_SIG; AN11350.

The label URL is the supplier's signed label (`firmware_tools.formats.qr`) with the chip UID
in the query parameter `uid` (14 hex digits) and under the signature, so that a label copied
onto another chip names the wrong UID.
"""

from __future__ import annotations

from dataclasses import dataclass

from firmware_tools.chips.originality import NXP_NTAG21X_PUBLIC_KEY, verify_originality
from firmware_tools.errors import BadOriginality, FormatError, GS1Error, NdefError, TagCommandError
from firmware_tools.formats.gs1 import parse_digital_link
from firmware_tools.formats.ndef import build_type2_image, encode_uri_record
from firmware_tools.formats.qr import SIG_PARAM as SIG_PARAM  # re-exported, with UID_PARAM
from firmware_tools.formats.qr import UID_PARAM, address_bytes, check_label, sign_label_url

PAGE_SIZE = 4
FIRST_USER_PAGE = 4

# Commands, datasheet §10.
CMD_GET_VERSION = 0x60
CMD_READ = 0x30
CMD_WRITE = 0xA2
CMD_READ_SIG = 0x3C

# §9.3: a 4-bit ACK or NAK.
ACK = 0x0A
NAK_MEANINGS = {
    0x0: "invalid argument (page out of range or locked)",
    0x1: "parity or CRC error",
    0x4: "authentication counter overflow",
    0x5: "EEPROM write error",
}


@dataclass(frozen=True)
class Ntag21xLayout:
    """Where things are in one NTAG 21x variant (datasheet §8.5, Tables 4-6)."""

    name: str
    storage_size: int  # GET_VERSION byte 6
    pages: int
    user_memory: int  # bytes from page 4 up to the dynamic lock bytes
    data_area_size: int  # what the capability container announces (size byte * 8)

    @property
    def last_user_page(self) -> int:
        return FIRST_USER_PAGE + self.user_memory // PAGE_SIZE - 1

    @property
    def dynamic_lock_page(self) -> int:
        return self.last_user_page + 1

    @property
    def version(self) -> bytes:
        """The 8-byte GET_VERSION answer (§10.1 Table 28)."""
        return bytes((0x00, 0x04, 0x04, 0x02, 0x01, 0x00, self.storage_size, 0x03))


NTAG213 = Ntag21xLayout("NTAG213", 0x0F, 45, 144, 144)
NTAG215 = Ntag21xLayout("NTAG215", 0x11, 135, 504, 496)
NTAG216 = Ntag21xLayout("NTAG216", 0x13, 231, 888, 872)
LAYOUTS = {layout.storage_size: layout for layout in (NTAG213, NTAG215, NTAG216)}


def layout_for_version(version: bytes) -> Ntag21xLayout:
    """The layout named by a GET_VERSION answer; raises FormatError for other chips.

    >>> layout_for_version(bytes.fromhex("0004040201001103")).name
    'NTAG215'
    """
    if len(version) != 8:
        raise FormatError(f"GET_VERSION answer is 8 bytes, got {len(version)}")
    if version[1] != 0x04 or version[2] != 0x04:
        raise FormatError(
            f"GET_VERSION vendor 0x{version[1]:02X} type 0x{version[2]:02X} is not an NXP NTAG"
        )
    layout = LAYOUTS.get(version[6])
    if layout is None:
        raise FormatError(f"NTAG storage size byte 0x{version[6]:02X} is not NTAG 213/215/216")
    return layout


# -- commands (§10) ----------------------------------------------------------------------


def get_version_command() -> bytes:
    """GET_VERSION (§10.1)."""
    return bytes((CMD_GET_VERSION,))


def read_command(page: int) -> bytes:
    """READ of four pages from `page` (§10.2)."""
    _check_page(page)
    return bytes((CMD_READ, page))


def write_command(page: int, data: bytes) -> bytes:
    """WRITE of one 4-byte page (§10.4)."""
    _check_page(page)
    if len(data) != PAGE_SIZE:
        raise FormatError(f"a page is {PAGE_SIZE} bytes, got {len(data)}")
    return bytes((CMD_WRITE, page)) + bytes(data)


def read_sig_command() -> bytes:
    """READ_SIG (§10.7); the address byte is RFU and 00h."""
    return bytes((CMD_READ_SIG, 0x00))


def _check_page(page: int) -> None:
    if not 0 <= page <= 0xFF:
        raise FormatError(f"page address {page} is not a byte")


def nak_meaning(code: int) -> str:
    """Words for a 4-bit NAK code."""
    return NAK_MEANINGS.get(code, f"NAK 0x{code:X}")


def check_response(command: bytes, response: bytes, expected_length: int) -> bytes:
    """The response if it has the expected length; TagCommandError with the NAK's meaning."""
    if len(response) == expected_length:
        return response
    if expected_length == 0 and response == bytes((ACK,)):
        return b""  # a reader that hands the 4-bit ACK of a WRITE up as a byte
    if len(response) == 1 and response[0] != ACK and response[0] <= 0x0F:
        raise TagCommandError(
            f"tag refused command {command.hex()}: {nak_meaning(response[0])}", response[0]
        )
    raise TagCommandError(
        f"command {command.hex()} answered {len(response)} bytes, expected {expected_length}"
    )


# -- UID (§8.5.1) ------------------------------------------------------------------------


def uid_pages(uid: bytes) -> bytes:
    """Pages 0-1 and the first two bytes of page 2: UID with its check bytes."""
    if len(uid) != 7:
        raise FormatError(f"NTAG 21x UID is 7 bytes, got {len(uid)}")
    bcc0 = 0x88 ^ uid[0] ^ uid[1] ^ uid[2]
    bcc1 = uid[3] ^ uid[4] ^ uid[5] ^ uid[6]
    return uid[:3] + bytes((bcc0,)) + uid[3:] + bytes((bcc1,))


def uid_from_pages(pages: bytes) -> bytes:
    """The UID in the first 9 bytes of page 0-2; raises FormatError on a wrong check byte."""
    uid = pages[:3] + pages[4:8]
    if uid_pages(uid) != pages[:9]:
        raise FormatError("UID check bytes BCC0/BCC1 do not match")
    return uid


# -- the signed URL ----------------------------------------------------------------------


def sign_ntag21x_url(
    private_key: bytes,
    host: str,
    gtin: str,
    serial: str,
    uid: bytes,
    *,
    lot: str | None = None,
    expiry: str | None = None,
    variant: str | None = None,
) -> str:
    """The label URL for one chip: the signed label with `uid`, the signature binding all."""
    return sign_label_url(
        private_key, host, gtin, serial, lot=lot, expiry=expiry, variant=variant, uid=uid
    )


def ndef_image(url: str, layout: Ntag21xLayout) -> bytes:
    """Page 3 onwards for this URL on this chip; raises NdefError naming the chip if too long.

    >>> len(ndef_image("https://id.example.com/01/09521234543213/21/1", NTAG213)) % 4
    0
    """
    try:
        image = build_type2_image(encode_uri_record(url), layout.data_area_size)
    except NdefError as exc:
        raise NdefError(f"{layout.name}: {exc} (URL of {len(url)} characters)") from None
    return image + bytes(-len(image) % PAGE_SIZE)


def image_pages(url: str, layout: Ntag21xLayout) -> list[tuple[int, bytes]]:
    """(page, 4 bytes) WRITEs that put this URL on a blank chip, capability container first."""
    image = ndef_image(url, layout)
    return [(3 + i, image[i * PAGE_SIZE : (i + 1) * PAGE_SIZE]) for i in range(len(image) // 4)]


@dataclass(frozen=True)
class Ntag21xCheck:
    """What a read NTAG 21x proves, check by check, in words (`findings`) and codes."""

    ok: bool
    genuine_nxp_uid: bool
    supplier_signed: bool
    uid_bound: bool
    findings: tuple[str, ...]
    codes: tuple[str, ...]
    gtin: str | None = None
    serial: str | None = None
    signer: str | None = None


GENUINE_NXP_UID = (
    "genuine NXP chip UID (NXP issued this UID; a copied UID on a clone chip would also pass:"
    " scan history has to catch that)"
)


def verify_ntag21x(
    uid: bytes,
    ndef_url: str,
    originality_signature: bytes,
    supplier_address: str,
    nxp_public_key: bytes = NXP_NTAG21X_PUBLIC_KEY,
) -> Ntag21xCheck:
    """Check the three claims of a read NTAG 21x; never raises for a bad tag.

    A malformed `supplier_address` is the caller's error and raises FormatError.
    """
    address_bytes(supplier_address)
    findings: list[str] = []
    codes: list[str] = []
    try:
        verify_originality(uid, originality_signature, nxp_public_key)
        genuine = True
        findings.append(GENUINE_NXP_UID)
    except BadOriginality as exc:
        genuine = False
        findings.append(f"not a genuine NXP chip UID: {exc}")
        codes.append(BadOriginality.reason)

    try:
        link = parse_digital_link(ndef_url)
    except GS1Error as exc:
        findings.append(f"the tag's URL is not a label URL: {exc}")
        codes.append("malformed_url")
        return Ntag21xCheck(False, genuine, False, False, tuple(findings), tuple(codes))

    # The supplier signed the UID the URL names (one label check for QR and NTAG 21x);
    # whether that is the chip in the field is checked here.
    label = check_label(link, supplier_address)
    bound = label.uid == uid
    if link.param(UID_PARAM) is None:
        findings.append("the URL names no chip UID (uid parameter missing)")
        codes.append("missing_uid")
    elif bound:
        findings.append(f"label bound to this chip (URL uid = chip UID {uid.hex().upper()})")
    elif label.uid is not None:
        findings.append(
            f"label bound to another chip: URL uid {label.uid.hex().upper()},"
            f" chip UID {uid.hex().upper()}"
        )
        codes.append("uid_mismatch")
    if label.ok:
        findings.append(
            f"supplier signature over (GTIN, serial, lot, expiry, variant, UID) by {label.signer}"
        )
    else:
        findings.extend(label.reasons)
        codes.extend(label.codes)
    ok = genuine and label.ok and bound
    return Ntag21xCheck(
        ok,
        genuine,
        label.ok,
        bound,
        tuple(findings),
        tuple(codes),
        link.gtin,
        link.serial,
        label.signer,
    )
