"""NDEF URI records and the NFC Forum Type 2 tag memory that holds them.

Pure: no I/O; bytes in, bytes out.

Sources: NFC Forum NDEF 1.0 §3.2 (record layout: MB ME CF SR IL TNF), URI RTD 1.0 §3.2.2
(identifier codes, Table 3), Type 2 Tag Operation 1.1 §2.1 and §2.3 (capability container,
TLV blocks: NULL 00, Lock Control 01, Memory Control 02, NDEF 03, Proprietary FD,
Terminator FE; a length of FF means a 3-byte length follows).
"""

from __future__ import annotations

from dataclasses import dataclass

from firmware_tools.errors import NdefError

# URI RTD §3.2.2 Table 3: the abbreviation codes, in code order.
URI_PREFIXES: tuple[str, ...] = (
    "",
    "http://www.",
    "https://www.",
    "http://",
    "https://",
    "tel:",
    "mailto:",
    "ftp://anonymous:anonymous@",
    "ftp://ftp.",
    "ftps://",
    "sftp://",
    "smb://",
    "nfs://",
    "ftp://",
    "dav://",
    "news:",
    "telnet://",
    "imap:",
    "rtsp://",
    "urn:",
    "pop:",
    "sip:",
    "sips:",
    "tftp:",
    "btspp://",
    "btl2cap://",
    "btgoep://",
    "tcpobex://",
    "irdaobex://",
    "file://",
    "urn:epc:id:",
    "urn:epc:tag:",
    "urn:epc:pat:",
    "urn:epc:raw:",
    "urn:epc:",
    "urn:nfc:",
)

TNF_WELL_KNOWN = 0x01
_MB, _ME, _CF, _SR, _IL = 0x80, 0x40, 0x20, 0x10, 0x08

TLV_NULL = 0x00
TLV_LOCK_CONTROL = 0x01
TLV_MEMORY_CONTROL = 0x02
TLV_NDEF = 0x03
TLV_PROPRIETARY = 0xFD
TLV_TERMINATOR = 0xFE

CC_MAGIC = 0xE1
CC_VERSION_1_0 = 0x10


def encode_uri_record(uri: str) -> bytes:
    """One NDEF message holding one URI record, with the longest matching abbreviation.

    >>> encode_uri_record("https://example.com/a").hex()
    'd1010e55046578616d706c652e636f6d2f61'
    """
    code = max(
        (i for i, prefix in enumerate(URI_PREFIXES) if prefix and uri.startswith(prefix)),
        key=lambda i: len(URI_PREFIXES[i]),
        default=0,
    )
    payload = bytes((code,)) + uri[len(URI_PREFIXES[code]) :].encode("utf-8")
    return encode_record(TNF_WELL_KNOWN, b"U", payload)


def encode_record(tnf: int, record_type: bytes, payload: bytes) -> bytes:
    """A single-record NDEF message (MB and ME set), short form when the payload allows."""
    if len(record_type) > 255:
        raise NdefError(f"record type is {len(record_type)} bytes; the limit is 255")
    if len(payload) < 256:
        header = bytes((_MB | _ME | _SR | tnf, len(record_type), len(payload)))
    else:
        header = bytes((_MB | _ME | tnf, len(record_type))) + len(payload).to_bytes(4, "big")
    return header + record_type + payload


@dataclass(frozen=True)
class Record:
    """One NDEF record: type name format, type, id and payload."""

    tnf: int
    type: bytes
    id: bytes
    payload: bytes


def decode_message(message: bytes) -> list[Record]:
    """The records of an NDEF message; raises NdefError naming the byte that is wrong.

    >>> decode_message(bytes.fromhex("d10102550461"))
    [Record(tnf=1, type=b'U', id=b'', payload=b'\\x04a')]
    """
    records: list[Record] = []
    offset = 0
    while offset < len(message):
        start = offset
        header = message[offset]
        if not records and not header & _MB:
            raise NdefError("first NDEF record does not have the MB (message begin) flag")
        if header & _CF:
            raise NdefError(f"chunked NDEF record at byte {start} is not supported")
        try:
            type_length = message[offset + 1]
            offset += 2
            if header & _SR:
                payload_length = message[offset]
                offset += 1
            else:
                if offset + 4 > len(message):
                    raise IndexError
                payload_length = int.from_bytes(message[offset : offset + 4], "big")
                offset += 4
            id_length = 0
            if header & _IL:
                id_length = message[offset]
                offset += 1
        except IndexError:
            raise NdefError(f"NDEF record header at byte {start} is cut short") from None
        end = offset + type_length + id_length + payload_length
        if end > len(message):
            raise NdefError(
                f"NDEF record at byte {start} claims {end - start} bytes,"
                f" only {len(message) - start} are there"
            )
        record_type = message[offset : offset + type_length]
        offset += type_length
        record_id = message[offset : offset + id_length]
        offset += id_length
        payload = message[offset:end]
        offset = end
        records.append(Record(header & 0x07, record_type, record_id, payload))
        if header & _ME:
            if offset != len(message):
                raise NdefError(f"{len(message) - offset} bytes after the ME (message end) record")
            return records
    raise NdefError("NDEF message has no record with the ME (message end) flag")


def decode_uri_record(message: bytes) -> str:
    """The URI of the first URI record in an NDEF message.

    >>> decode_uri_record(encode_uri_record("https://example.com/a"))
    'https://example.com/a'
    """
    for record in decode_message(message):
        if record.tnf == TNF_WELL_KNOWN and record.type == b"U":
            if not record.payload:
                raise NdefError("URI record has an empty payload")
            code = record.payload[0]
            if code >= len(URI_PREFIXES):
                raise NdefError(f"URI identifier code 0x{code:02X} is reserved")
            try:
                rest = record.payload[1:].decode("utf-8")
            except UnicodeDecodeError as exc:
                raise NdefError(f"URI record is not UTF-8: {exc}") from None
            return URI_PREFIXES[code] + rest
    raise NdefError("NDEF message has no URI record")


@dataclass(frozen=True)
class CapabilityContainer:
    """The 4 bytes of Type 2 tag page 3."""

    version: int
    data_area_size: int
    read_access: int
    write_access: int

    @property
    def writable(self) -> bool:
        return self.write_access == 0x0


def capability_container(data_area_size: int) -> bytes:
    """Page 3 of a Type 2 tag: E1 10 <size/8> 00 (read and write access granted).

    >>> capability_container(496).hex()
    'e1103e00'
    """
    if data_area_size % 8 or not 0 < data_area_size <= 255 * 8:
        raise NdefError(f"data area size {data_area_size} is not a multiple of 8 up to 2040")
    return bytes((CC_MAGIC, CC_VERSION_1_0, data_area_size // 8, 0x00))


def parse_capability_container(cc: bytes) -> CapabilityContainer:
    """Decode page 3; raises NdefError if the tag is not NDEF formatted."""
    if len(cc) != 4:
        raise NdefError(f"capability container is 4 bytes, got {len(cc)}")
    if cc[0] != CC_MAGIC:
        raise NdefError(f"capability container magic is 0x{cc[0]:02X}, not 0xE1: no NDEF")
    if cc[1] >> 4 != 1:
        raise NdefError(f"NDEF mapping version {cc[1] >> 4}.{cc[1] & 0xF} is not supported")
    return CapabilityContainer(cc[1], cc[2] * 8, cc[3] >> 4, cc[3] & 0x0F)


def ndef_tlvs(message: bytes, data_area_size: int) -> bytes:
    """The data area content: NDEF TLV and, when there is room, the terminator TLV.

    >>> ndef_tlvs(bytes(3), 144).hex()
    '0303000000fe'
    """
    if len(message) > 0xFFFE:
        raise NdefError(f"NDEF message of {len(message)} bytes is too long for a TLV")
    if len(message) < 0xFF:
        tlv = bytes((TLV_NDEF, len(message))) + message
    else:
        tlv = bytes((TLV_NDEF, 0xFF)) + len(message).to_bytes(2, "big") + message
    if len(tlv) > data_area_size:
        raise NdefError(
            f"NDEF message needs {len(tlv)} bytes with its TLV header;"
            f" the tag's data area holds {data_area_size}"
        )
    if len(tlv) < data_area_size:
        tlv += bytes((TLV_TERMINATOR,))
    return tlv


def build_type2_image(message: bytes, data_area_size: int) -> bytes:
    """Page 3 (capability container) followed by the data area content from page 4."""
    return capability_container(data_area_size) + ndef_tlvs(message, data_area_size)


class _CutShort(NdefError):
    """The data area ends inside a TLV or before the NDEF TLV: a reader may fetch more."""


def _ndef_tlv_value(data_area: bytes) -> tuple[int, int]:
    """(start, end) of the first NDEF TLV's value in a Type 2 data area (from page 4).

    Raises _CutShort if the data area ends first, NdefError if the TLVs are malformed.
    """
    offset = 0
    while offset < len(data_area):
        tag = data_area[offset]
        if tag == TLV_NULL:
            offset += 1
            continue
        if tag == TLV_TERMINATOR:
            raise NdefError("the data area has no NDEF TLV")
        if tag not in (TLV_NDEF, TLV_LOCK_CONTROL, TLV_MEMORY_CONTROL, TLV_PROPRIETARY):
            raise NdefError(f"unknown TLV 0x{tag:02X} at byte {offset}")
        if offset + 1 >= len(data_area):
            raise _CutShort(f"TLV 0x{tag:02X} at byte {offset} has no length")
        length = data_area[offset + 1]
        value_at = offset + 2
        if length == 0xFF:
            if offset + 4 > len(data_area):
                raise _CutShort(f"TLV 0x{tag:02X} at byte {offset} has a cut 3-byte length")
            length = int.from_bytes(data_area[offset + 2 : offset + 4], "big")
            value_at = offset + 4
        if value_at + length > len(data_area):
            raise _CutShort(
                f"TLV 0x{tag:02X} at byte {offset} claims {length} bytes,"
                f" only {len(data_area) - value_at} are there"
            )
        if tag == TLV_NDEF:
            return value_at, value_at + length
        offset = value_at + length
    raise _CutShort("the data area has no NDEF TLV")


def parse_tlvs(data_area: bytes) -> bytes:
    """The NDEF message of the first NDEF TLV in a Type 2 data area (from page 4)."""
    start, end = _ndef_tlv_value(data_area)
    return data_area[start:end]


def tlv_area_length(data_area: bytes) -> int | None:
    """Bytes of the data area up to the end of the NDEF TLV, or None if more are needed.

    For a reader that fetches the data area 16 bytes at a time and stops when it has the
    message. Raises NdefError if the TLVs are malformed or hold no NDEF TLV.

    >>> tlv_area_length(bytes.fromhex("0305d1010155")) is None
    True
    >>> tlv_area_length(bytes.fromhex("0003")), tlv_area_length(bytes.fromhex("0300fe"))
    (None, 2)
    """
    try:
        return _ndef_tlv_value(data_area)[1]
    except _CutShort:
        return None


def parse_type2_image(image: bytes) -> bytes:
    """The NDEF message in page 3 (capability container) + data area, as built above."""
    cc = parse_capability_container(image[:4])
    return parse_tlvs(image[4 : 4 + cc.data_area_size])
