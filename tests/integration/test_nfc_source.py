"""The NFC source end to end: pynfc -> libnfc -> pn532_uart -> pty -> PN532 emulator.

What a read carries is checked the way the API checks it: `firmware_tools.verify.check_tag`
on the same evidence the event will carry, and the API's TagEvidence schema.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from contracts_abi.eip712 import address_of_private_key
from firmware_tools.chips import ecc
from firmware_tools.chips.ntag21x import NTAG215, ndef_image, sign_ntag21x_url
from firmware_tools.chips.ntag424.sun import KeyEpoch
from firmware_tools.errors import ReaderNotFound
from firmware_tools.verify import AUTHENTIC, NTAG21X, ChipRead, ScannedUrl, Trust, check_tag
from reader_agent.reads import Read
from reader_agent.sources import SourceGone, UnreadableTag
from reader_agent.sources.nfc import NfcSource
from reader_agent.sources.supervisor import Supervisor
from reader_agent.sources.window import RepeatWindow
from tests.conftest import unavailable
from tests.fakes.ntag21x import SimulatedNtag21x
from tests.fakes.pn532 import Pn532Emulator
from tests.fakes.sun_tags import sun_tag

pytestmark = pytest.mark.libnfc

UID = bytes.fromhex("04A1B2C3D4E5F6")
UID_424 = bytes.fromhex("04C1D2E3F40580")
ORIGINALITY_KEY = 0x0123456789ABCDEF0FEDCBA987654321  # tests/vectors/ntag21x_originality.json
ORIGINALITY_PUBLIC = ecc.public_key_of(ecc.SECP128R1, ORIGINALITY_KEY)
SUPPLIER_KEY = bytes(range(1, 33))
SUPPLIER = address_of_private_key(SUPPLIER_KEY)
MASTER = bytes(range(16))
BOUND = 3.0  # seconds: every failure must surface well within this


@pytest.fixture(scope="module", autouse=True)
def _libnfc() -> None:
    from firmware_tools.nfc.libnfc import bindings

    try:
        bindings()
    except ReaderNotFound as exc:
        unavailable(str(exc))


def signed_ntag(uid: bytes = UID, serial: str = "SN-42") -> tuple[SimulatedNtag21x, str]:
    """An NTAG 215 as a supplier provisions it: a signed URL bound to the chip's UID."""
    tag = SimulatedNtag21x(uid, signature=ecc.sign(ecc.SECP128R1, ORIGINALITY_KEY, uid))
    url = sign_ntag21x_url(SUPPLIER_KEY, "id.example.com", "9521234543213", serial, uid)
    image = ndef_image(url, NTAG215)
    tag.memory[12 : 12 + len(image)] = image  # page 3 on: capability container, NDEF TLV
    return tag, url


@pytest.fixture
def ntag() -> tuple[SimulatedNtag21x, str]:
    return signed_ntag()


@pytest.fixture
def emulator(ntag) -> Iterator[Pn532Emulator]:
    with Pn532Emulator([ntag[0]]) as emulator:
        yield emulator
    assert emulator.errors == []


@pytest.fixture
def source(emulator) -> Iterator[NfcSource]:
    source = NfcSource(emulator.connstring, timeout_ms=200, hold=2.0)
    source.open()
    yield source
    source.close()


def read_until(source: NfcSource | Supervisor, *, within: float = BOUND) -> Read:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        read = source.read(0.3)
        if read is not None:
            return read
    raise AssertionError(f"no read within {within} s")


def test_an_ntag21x_read_carries_url_uid_and_originality_signature(source, emulator, ntag):
    tag, url = ntag
    read = read_until(source)
    assert (read.url, read.uid, read.originality_signature) == (url, UID, tag.signature)
    assert read.source == f"nfc:{emulator.connstring}" and read.field_uid == b""
    assert abs(read.read_at - time.time()) < BOUND
    # The evidence verifies as the API verifies it (with the test originality key).
    evidence = ChipRead(NTAG21X, read.uid, read.url, read.originality_signature)
    check = check_tag(evidence, Trust(SUPPLIER, ntag21x_public_key=ORIGINALITY_PUBLIC))
    assert check.verdict == AUTHENTIC, check.reasons
    assert (check.item.gtin, check.item.serial) == ("09521234543213", "SN-42")  # type: ignore[union-attr]


def test_the_api_accepts_the_evidence_of_both_chips(source, emulator, ntag):
    schemas = pytest.importorskip("provenance_api.schemas")
    read = read_until(source)
    evidence = schemas.TagEvidence(
        url=read.url, uid=read.uid.hex(), originality_signature=read.originality_signature.hex()
    )
    assert evidence.uid == UID.hex().upper()
    emulator.remove(ntag[0])
    emulator.place(sun_tag(MASTER, UID_424))
    sun = read_until(source)
    assert schemas.TagEvidence(url=sun.url).url == sun.url


def test_a_tag_resting_on_the_reader_is_read_once(source, emulator, ntag):
    first = read_until(source)
    start = time.monotonic()
    while time.monotonic() - start < 1.0:
        assert source.read(0.3) is None  # still in the field: not read again
    emulator.remove(ntag[0])
    assert source.read(0.3) is None  # the field is empty
    emulator.place(ntag[0])
    again = read_until(source)  # a new tap
    assert again.url == first.url


def test_an_ntag424_read_is_its_sun_url_and_each_tap_is_fresh(source, emulator, ntag):
    emulator.remove(ntag[0])
    chip = sun_tag(MASTER, UID_424, gtin="04006381333931", serial="SN1")
    emulator.place(chip)
    first = read_until(source)
    # No chip evidence: the SUN message names the UID, the MAC proves the tap.
    assert first.uid == b"" and first.originality_signature == b""
    assert first.field_uid == UID_424 and first.tag_key == UID_424.hex()
    assert "picc_data=" in first.url and "cmac=" in first.url
    emulator.remove(chip)
    assert source.read(0.3) is None
    emulator.place(chip)
    second = read_until(source)
    assert second.url != first.url and second.tag_key == first.tag_key
    # The repeat window counts the two taps, 0.3 s apart, once.
    window = RepeatWindow(2.0)
    assert window.admit(first, 0.0) and not window.admit(second, 0.3)

    trust = Trust(key_epochs=(KeyEpoch.from_master(MASTER),))
    one = check_tag(ScannedUrl(first.url), trust)
    two = check_tag(ScannedUrl(second.url), trust)
    assert one.verdict == two.verdict == AUTHENTIC, (one.reasons, two.reasons)
    assert one.uid == two.uid == UID_424
    assert two.counter > one.counter  # type: ignore[operator]
    assert (one.item.gtin, one.item.serial) == ("04006381333931", "SN1")  # type: ignore[union-attr]


def test_a_tag_that_is_no_ntag_is_reported_once_while_it_rests(source, emulator, ntag):
    emulator.remove(ntag[0])
    classic = SimulatedNtag21x(bytes.fromhex("04112233445566"), sens_res=b"\x00\x04")
    emulator.place(classic)
    with pytest.raises(UnreadableTag, match="neither an NTAG 21x nor an NTAG 424 DNA"):
        read_until(source)
    assert source.read(0.6) is None  # still there: not reported again
    emulator.remove(classic)
    emulator.place(ntag[0])
    assert read_until(source).uid == UID


def test_a_blank_tag_is_unreadable_and_the_reader_stays_usable(source, emulator, ntag):
    emulator.remove(ntag[0])
    blank = SimulatedNtag21x(bytes.fromhex("04AABBCCDDEEFF"))
    emulator.place(blank)
    with pytest.raises(UnreadableTag, match="04AABBCCDDEEFF could not be read"):
        read_until(source)
    emulator.remove(blank)
    emulator.place(ntag[0])
    assert read_until(source).uid == UID


def test_a_reader_that_stops_answering_is_reopened_when_it_answers_again(emulator, ntag, caplog):
    caplog.set_level(logging.INFO, logger="reader_agent.sources")
    supervisor = Supervisor(NfcSource(emulator.connstring, timeout_ms=200), maximum=0.4)
    assert read_until(supervisor).uid == UID
    emulator.fall_silent()
    start = time.monotonic()
    while supervisor.state().connected:
        assert supervisor.read(0.3) is None
        assert time.monotonic() - start < BOUND, "the silence was not noticed"
    assert "stopped answering" in (supervisor.state().last_error or "")
    for _ in range(3):  # reopening fails while it stays silent
        assert supervisor.read(0.3) is None
    assert not supervisor.state().connected
    emulator.resume()
    emulator.remove(ntag[0])
    emulator.place(ntag[0])
    assert read_until(supervisor, within=2 * BOUND).uid == UID
    state = supervisor.state()
    assert state.connected and state.reconnecting_since is None
    assert any("open again after" in r.getMessage() for r in caplog.records)
    supervisor.close()


def test_a_reader_unplugged_and_plugged_back_in_is_found_again(tmp_path: Path, ntag):
    link = tmp_path / "ttyPN532"  # as /dev/serial/by-id/ names a USB serial adapter
    first = Pn532Emulator([ntag[0]]).start()
    link.symlink_to(first.path)
    supervisor = Supervisor(NfcSource(f"pn532_uart:{link}", timeout_ms=200), maximum=0.4)
    try:
        assert read_until(supervisor).uid == UID
        first.stop()  # unplugged: the pty is gone
        link.unlink()
        start = time.monotonic()
        while supervisor.state().connected:
            assert supervisor.read(0.3) is None
            assert time.monotonic() - start < BOUND, "the unplug was not noticed"
        assert "failed on the serial link" in (supervisor.state().last_error or "")
        while "no NFC reader at" not in (supervisor.state().last_error or ""):
            assert supervisor.read(0.3) is None  # reopening fails while it is unplugged
            assert time.monotonic() - start < BOUND

        other, url = signed_ntag(bytes.fromhex("04010203040506"), serial="SN-43")
        second = Pn532Emulator([other]).start()  # plugged back in: a new tty
        try:
            link.symlink_to(second.path)
            read = read_until(supervisor, within=2 * BOUND)
            assert (read.url, read.uid) == (url, other.uid)
            assert supervisor.state().connected
        finally:
            supervisor.close()
            second.stop()
        assert second.errors == []
    finally:
        supervisor.close()
        first.stop()


def test_a_missing_reader_is_source_gone_in_words():
    with pytest.raises(SourceGone, match="no NFC reader at pn532_uart:/dev/pts/9999"):
        NfcSource("pn532_uart:/dev/pts/9999").open()
