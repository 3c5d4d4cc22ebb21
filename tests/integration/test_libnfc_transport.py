"""The libnfc transport end to end: pynfc -> libnfc -> pn532_uart -> pty -> PN532 emulator."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from contracts_abi.eip712 import address_of_private_key
from firmware_tools.chips import ecc
from firmware_tools.chips.ntag21x import (
    NTAG215,
    image_pages,
    ndef_image,
    sign_ntag21x_url,
    verify_ntag21x,
)
from firmware_tools.errors import (
    FrameError,
    OutcomeUnknown,
    ReaderNotFound,
    ReaderTimeout,
    TagLocked,
    TagNotFound,
)
from firmware_tools.formats.ndef import parse_type2_image
from firmware_tools.nfc import Ntag21x, Ntag424, open_reader
from tests.conftest import unavailable
from tests.fakes.ntag21x import SimulatedNtag21x
from tests.fakes.pn532 import Pn532Emulator

pytestmark = pytest.mark.libnfc

UID = bytes.fromhex("04A1B2C3D4E5F6")
ORIGINALITY_KEY = 0x0123456789ABCDEF0FEDCBA987654321  # tests/vectors/ntag21x_originality.json
ORIGINALITY_PUBLIC = ecc.public_key_of(ecc.SECP128R1, ORIGINALITY_KEY)
SUPPLIER_KEY = bytes(range(1, 33))
SUPPLIER = address_of_private_key(SUPPLIER_KEY)
BOUND = 3.0  # seconds: every failure must surface well within this


@pytest.fixture(scope="module", autouse=True)
def _libnfc() -> None:
    from firmware_tools.nfc.libnfc import bindings

    try:
        bindings()
    except ReaderNotFound as exc:
        unavailable(str(exc))


@pytest.fixture
def ntag() -> SimulatedNtag21x:
    return SimulatedNtag21x(UID, signature=ecc.sign(ecc.SECP128R1, ORIGINALITY_KEY, UID))


@pytest.fixture
def emulator(ntag: SimulatedNtag21x) -> Iterator[Pn532Emulator]:
    with Pn532Emulator([ntag]) as emulator:
        yield emulator
    assert emulator.errors == []


@pytest.fixture
def reader(emulator: Pn532Emulator):
    with open_reader(emulator.connstring) as reader:
        yield reader


def _ntag(reader) -> Ntag21x:
    tag = reader.wait_for_tag(timeout_s=2)
    assert isinstance(tag, Ntag21x)
    return tag


def test_reads_uid_version_and_signature(reader, ntag):
    tag = _ntag(reader)
    assert tag.uid == UID
    assert tag.layout is NTAG215
    assert tag.get_version() == bytes.fromhex("0004040201001103")
    assert tag.read_signature() == ntag.signature
    assert tag.read_pages(0)[:9] == ntag.page(0) + ntag.page(1) + ntag.page(2)[:1]


def test_provisions_and_verifies_end_to_end(reader, ntag):
    tag = _ntag(reader)
    url = sign_ntag21x_url(SUPPLIER_KEY, "id.example.com", "9521234543213", "SN-42", tag.uid)
    tag.write_ndef_image(image_pages(url, NTAG215))
    image = ndef_image(url, NTAG215)
    assert b"".join(ntag.page(3 + i) for i in range(len(image) // 4)) == image

    tapped = reader.wait_for_tag(timeout_s=2)  # a second tap: new activation
    assert isinstance(tapped, Ntag21x)
    read_url = tapped.read_ndef_url()
    assert read_url == url
    assert parse_type2_image(tapped.read_ndef_image()) == parse_type2_image(image)
    check = verify_ntag21x(
        tapped.uid, read_url, tapped.read_signature(), SUPPLIER, nxp_public_key=ORIGINALITY_PUBLIC
    )
    assert check.ok, check.findings
    assert check.genuine_nxp_uid and check.supplier_signed and check.uid_bound
    # Against NXP's real key the simulated chip is (rightly) not genuine.
    assert not verify_ntag21x(tapped.uid, read_url, tapped.read_signature(), SUPPLIER).ok


def test_locked_page_gives_tag_locked_and_the_tag_stays_usable(reader, ntag):
    tag = _ntag(reader)
    tag.write_page(5, b"\x01\x02\x03\x04")
    ntag.lock_page(5)
    with pytest.raises(TagLocked, match="page 5"):
        tag.write_page(5, b"\x05\x06\x07\x08")
    assert ntag.page(5) == b"\x01\x02\x03\x04"
    # after the NAK the tag was selected again, so reading and writing elsewhere work
    assert tag.read_pages(4)[4:8] == b"\x01\x02\x03\x04"
    tag.write_page(16, b"\x0a\x0b\x0c\x0d")
    assert ntag.page(16) == b"\x0a\x0b\x0c\x0d"
    with pytest.raises(TagLocked, match="page 0"):
        tag.write_page(0, b"\x00\x00\x00\x00")


def test_garbled_frame_is_retried(reader, emulator, ntag):
    tag = _ntag(reader)
    before = len(emulator.chip.commands)
    emulator.garble_next()
    assert tag.read_pages(0)[:3] == UID[:3]
    # the READ went out twice: once answered with a bad checksum, once cleanly
    assert [c.hex() for c in emulator.chip.commands[before:]] == ["40013000", "40013000"]


def test_nack_is_retried(reader, emulator, ntag):
    tag = _ntag(reader)
    before = len(emulator.chip.commands)
    emulator.nack_next()
    tag.write_page(6, b"\x11\x22\x33\x44")
    assert ntag.page(6) == b"\x11\x22\x33\x44"
    assert [c.hex() for c in emulator.chip.commands[before:]] == ["4001a20611223344"] * 2


def test_link_that_stays_garbled_gives_frame_error(reader, emulator):
    tag = _ntag(reader)
    for _ in range(reader.retries + 1):
        emulator.garble_next()
    start = time.monotonic()
    with pytest.raises(FrameError, match="serial link 4 times"):
        tag.read_pages(0)
    assert time.monotonic() - start < BOUND


def test_silent_reader_gives_reader_timeout_without_hanging(reader, emulator):
    tag = _ntag(reader)
    emulator.fall_silent()
    start = time.monotonic()
    with pytest.raises(ReaderTimeout, match="stopped answering"):
        tag.read_pages(4)
    with pytest.raises(ReaderTimeout):
        reader.wait_for_tag(timeout_s=10)
    assert time.monotonic() - start < BOUND
    start = time.monotonic()
    reader.close()
    assert time.monotonic() - start < BOUND


def test_silent_reader_at_open_is_reported(emulator):
    emulator.fall_silent()
    start = time.monotonic()
    with pytest.raises(ReaderNotFound, match="could not open"):
        open_reader(emulator.connstring)
    assert time.monotonic() - start < BOUND


def test_no_tag_gives_tag_not_found_in_time(reader, emulator, ntag):
    emulator.remove(ntag)
    start = time.monotonic()
    with pytest.raises(TagNotFound, match=r"within 0.3 s"):
        reader.wait_for_tag(timeout_s=0.3)
    assert time.monotonic() - start < BOUND


def test_missing_device_is_reader_not_found_in_words():
    with pytest.raises(ReaderNotFound, match="no NFC reader at pn532_uart:/dev/pts/9999"):
        open_reader("pn532_uart:/dev/pts/9999")


def test_doctor_on_a_working_and_a_missing_reader(emulator):
    from firmware_tools.nfc.doctor import ERROR, OK, doctor

    findings = doctor(emulator.connstring)
    assert [f.level for f in findings if f.level == ERROR] == []
    assert any(f.level == OK and "opened" in f.message for f in findings)
    missing = doctor("pn532_uart:/dev/pts/9999")
    assert any(f.level == ERROR and "does not exist" in f.message for f in missing)


def test_ntag424_apdus_and_sun_counters_over_two_taps(emulator, ntag):
    ntag424 = pytest.importorskip("tests.fakes.ntag424")
    personalize = pytest.importorskip("firmware_tools.chips.ntag424.personalize")
    from firmware_tools.chips.ntag424.diversify import diversify_key
    from tests.integration.test_ntag424_personalize import verify_tap

    master, meta = bytes(range(16)), bytes(range(16, 32))
    uid = bytes.fromhex("04C1D2E3F40580")
    template = "https://id.example.com/01/{gtin}/21/{serial}?picc_data={picc_data}&cmac={cmac}"
    layout = personalize.sun_layout(template, {"gtin": "09506000134352", "serial": "SN-1"})
    keys = list(personalize.tag_keys(master, meta, uid))
    tag424 = ntag424.SimulatedNtag424.with_sun(
        uid, keys, layout.ndef_file, personalize.sdm_file_settings(layout)
    )
    emulator.remove(ntag)
    emulator.place(tag424)

    def tap(reader) -> str:
        tag = reader.wait_for_tag(timeout_s=2)
        assert isinstance(tag, Ntag424) and tag.uid == uid
        assert tag.exchange(bytes.fromhex("00A4040C07D276000085010100")) == b"\x90\x00"
        assert tag.exchange(bytes.fromhex("00A4000C02E104")) == b"\x90\x00"
        length = int.from_bytes(tag.exchange(bytes.fromhex("00B0000002"))[:-2], "big")
        message = tag.exchange(bytes((0x00, 0xB0, 0x00, 0x02, length)))
        assert message[-2:] == b"\x90\x00"
        from firmware_tools.formats.ndef import decode_uri_record

        return decode_uri_record(message[:-2])

    with open_reader(emulator.connstring) as reader:
        first, second = tap(reader), tap(reader)
    file_key = lambda u: diversify_key(master, u, 2)  # noqa: E731
    one = verify_tap(first, [meta], file_key)
    two = verify_tap(second, [meta], file_key, last_counter=one.counter)
    assert one.uid == two.uid == uid
    assert two.counter > one.counter


# --- What may be sent twice ------------------------------------------------------------------

SELECT_424_APP = bytes.fromhex("00A4040C07D276000085010100")


@pytest.fixture
def tag424(emulator, ntag):
    from tests.fakes.ntag424 import SimulatedNtag424

    chip = SimulatedNtag424(bytes.fromhex("04C1D2E3F40580"))
    emulator.remove(ntag)
    emulator.place(chip)
    return chip


def _exchanges(emulator, since: int) -> list[str]:
    return [c.hex().upper() for c in emulator.chip.commands[since:] if c[:1] == b"\x40"]


def test_lost_answer_to_a_tag_command_is_not_resent(reader, emulator, tag424):
    tag = reader.wait_for_tag(timeout_s=2)
    assert isinstance(tag, Ntag424)
    before = len(emulator.chip.commands)
    emulator.garble_answer_to(lambda apdu: apdu == SELECT_424_APP)
    start = time.monotonic()
    with pytest.raises(OutcomeUnknown, match="not sent again"):
        tag.exchange(SELECT_424_APP)
    assert time.monotonic() - start < BOUND
    # Sent once; the tag ran it once, and only its answer was lost.
    assert _exchanges(emulator, before) == ["4001" + SELECT_424_APP.hex().upper()]
    assert [c for c, _ in tag424.log] == [SELECT_424_APP]
    # The link is fine afterwards.
    assert tag.exchange(SELECT_424_APP) == b"\x90\x00"


def test_lost_answer_to_an_idempotent_read_is_sent_again(reader, emulator, tag424):
    tag = reader.wait_for_tag(timeout_s=2)
    assert isinstance(tag, Ntag424)
    before = len(emulator.chip.commands)
    emulator.garble_answer_to(lambda apdu: apdu == SELECT_424_APP)
    assert tag.exchange(SELECT_424_APP, idempotent=True) == b"\x90\x00"
    assert _exchanges(emulator, before) == ["4001" + SELECT_424_APP.hex().upper()] * 2


def test_tag_leaving_the_field_mid_command_is_tag_not_found(reader, emulator, tag424):
    tag = reader.wait_for_tag(timeout_s=2)
    assert isinstance(tag, Ntag424)
    emulator.leave_field_after(lambda apdu: apdu == SELECT_424_APP)
    start = time.monotonic()
    with pytest.raises(TagNotFound, match="left the field"):
        tag.exchange(SELECT_424_APP)
    # Not resent either: the tag ran it once before it went.
    assert [c for c, _ in tag424.log] == [SELECT_424_APP]
    with pytest.raises(TagNotFound):
        tag.exchange(SELECT_424_APP, idempotent=True)
    assert time.monotonic() - start < BOUND
    assert len(tag424.log) == 1
