"""The PN532 emulator: libnfc's own trace replayed byte for byte, faults, and nfc-list."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import unavailable
from tests.fakes.ntag21x import SimulatedNtag21x
from tests.fakes.pn532 import ACK_FRAME, NACK_FRAME, SYNTAX_ERROR_FRAME, Pn532, Pn532Emulator

# What libnfc 1.8.0 sends to open a pn532_uart device and run nfc-list (LIBNFC_LOG_LEVEL=3).
TRACE = Path(__file__).parent.parent / "vectors" / "libnfc_1.8.0_pn532_uart_trace.txt"
TRACE_UID = bytes.fromhex("04E10CDA993C80")


def host_frame(command: bytes) -> bytes:
    """A host-to-chip normal information frame (UM0701 §6.2.1.1)."""
    body = b"\xd4" + command
    return bytes((0, 0, 0xFF, len(body), -len(body) & 0xFF)) + body + bytes((-sum(body) & 0xFF, 0))


def trace_exchanges() -> list[tuple[bytes, bytes]]:
    exchanges: list[tuple[bytes, bytes]] = []
    for line in TRACE.read_text().splitlines():
        if "\tTX: " in line:
            exchanges.append((bytes.fromhex(line.split("TX: ")[1]), b""))
        elif "\tRX: " in line:
            tx, rx = exchanges[-1]
            exchanges[-1] = (tx, rx + bytes.fromhex(line.split("RX: ")[1]))
    return exchanges


def test_replays_libnfc_trace_byte_for_byte():
    chip = Pn532([SimulatedNtag21x(TRACE_UID)])
    exchanges = trace_exchanges()
    assert len(exchanges) > 60
    for number, (sent, expected) in enumerate(exchanges):
        assert chip.feed(sent).hex(" ") == expected.hex(" "), f"exchange {number}: {sent.hex(' ')}"
    assert chip.errors == []


def test_unexpected_command_fails_loudly():
    chip = Pn532()
    # TgInitAsTarget (8Ch) is never sent by the transport: record it, answer syntax error.
    assert chip.feed(host_frame(b"\x8c\x00")) == ACK_FRAME + SYNTAX_ERROR_FRAME
    assert chip.errors == ["unexpected command 8c00"]


def test_bad_checksum_from_host_is_recorded():
    frame = bytearray(host_frame(b"\x02"))
    frame[-2] ^= 0xFF
    chip = Pn532()
    assert chip.feed(bytes(frame)) == b""
    assert chip.errors and "bad data checksum" in chip.errors[0]


def test_frames_split_across_reads_and_after_the_wakeup_preamble():
    chip = Pn532()
    data = bytes.fromhex("5555000000") + host_frame(b"\x02")
    out = b"".join(chip.feed(data[i : i + 3]) for i in range(0, len(data), 3))
    assert out == ACK_FRAME + bytes.fromhex("0000FF06FAD50332010607E800")
    assert chip.errors == []


def test_extended_frame_is_understood():
    body = b"\xd4\x00\x00" + bytes(300)  # Diagnose echo with 300 bytes
    head = bytes((0, 0, 0xFF, 0xFF, 0xFF, len(body) >> 8, len(body) & 0xFF))
    head += bytes((-(len(body) >> 8) - (len(body) & 0xFF) & 0xFF,))
    chip = Pn532()
    out = chip.feed(head + body + bytes((-sum(body) & 0xFF, 0)))
    assert out.startswith(ACK_FRAME + bytes.fromhex("0000FFFFFF"))
    assert out[len(ACK_FRAME) + 8 : -2] == b"\xd5\x01\x00" + bytes(300)
    assert chip.errors == []


def test_faults_garble_nack_and_silence():
    chip = Pn532()
    good = chip.feed(host_frame(b"\x02"))
    chip.garble_next()
    garbled = chip.feed(host_frame(b"\x02"))
    assert garbled[:-2] == good[:-2] and garbled[-2] != good[-2]
    chip.nack_next()
    assert chip.feed(host_frame(b"\x02")) == NACK_FRAME
    chip.fall_silent()
    assert chip.feed(host_frame(b"\x02")) == b""
    chip.resume()
    assert chip.feed(host_frame(b"\x02")) == good
    # a host NACK asks for the last answer again
    assert chip.feed(NACK_FRAME) == good[len(ACK_FRAME) :]
    assert chip.errors == []


def test_halted_tag_is_found_again_after_a_field_reset():
    chip = Pn532([SimulatedNtag21x(TRACE_UID)])
    listed = chip.feed(host_frame(bytes.fromhex("4a0100")))
    assert TRACE_UID in listed
    chip.feed(host_frame(bytes.fromhex("4400")))
    assert TRACE_UID not in chip.feed(host_frame(bytes.fromhex("4a0100")))
    chip.feed(host_frame(bytes.fromhex("320100")))  # field off
    assert TRACE_UID in chip.feed(host_frame(bytes.fromhex("4a0100")))


def test_iso_dep_tag_is_listed_with_its_ats():
    ntag424 = pytest.importorskip("tests.fakes.ntag424")
    tag = ntag424.SimulatedNtag424(bytes.fromhex("04C1D2E3F40580"))
    chip = Pn532([tag])
    answer = chip.feed(host_frame(bytes.fromhex("4a0100")))
    payload = answer[len(ACK_FRAME) + 5 : -2]
    assert payload == bytes.fromhex("d54b0101034420" + "07" + "04C1D2E3F40580") + tag.ats
    # InDataExchange carries the APDU as is: ISO SELECT of the NDEF application
    reply = chip.feed(host_frame(bytes.fromhex("4001" + "00A4040C07D276000085010100")))
    assert reply[len(ACK_FRAME) + 5 : -2] == bytes.fromhex("d541009000")


@pytest.mark.libnfc
def test_nfc_list_lists_the_simulated_ntag215():
    nfc_list = shutil.which("nfc-list")
    if nfc_list is None:
        unavailable("nfc-list not installed (Debian libnfc-bin)")
    uid = bytes.fromhex("04A1B2C3D4E5F6")
    with Pn532Emulator([SimulatedNtag21x(uid)]) as emulator:
        env = dict(
            os.environ,
            LIBNFC_DEVICE=emulator.connstring,
            LIBNFC_AUTO_SCAN="false",
            LIBNFC_LOG_LEVEL="1",
        )
        done = subprocess.run(
            [nfc_list], env=env, capture_output=True, text=True, timeout=30, check=False
        )
        errors = list(emulator.errors)
    assert done.returncode == 0, done.stderr
    assert "1 ISO14443A passive target(s) found" in done.stdout
    assert "UID (NFCID1): 04  a1  b2  c3  d4  e5  f6" in done.stdout
    assert "ATQA (SENS_RES): 00  44" in done.stdout
    assert errors == []


def _listed_424(uid: str = "04C1D2E3F40580"):
    from tests.fakes.ntag424 import SimulatedNtag424

    tag = SimulatedNtag424(bytes.fromhex(uid))
    chip = Pn532([tag])
    chip.feed(host_frame(bytes.fromhex("4a0100")))
    return chip, tag


SELECT_NDEF_APP = "00A4040C07D276000085010100"
# D5 41 01: InDataExchange status 01h, "time out, the target has not answered" (§7.1).
TIMED_OUT = ACK_FRAME + bytes.fromhex("0000FF03FDD54101E900")


def test_a_tag_leaving_mid_command_ran_it_and_the_chip_reports_a_time_out():
    chip, tag = _listed_424()
    chip.leave_field_after(lambda apdu: apdu.hex().upper() == SELECT_NDEF_APP)
    # The tag receives and executes the command, then is gone before its answer.
    assert chip.feed(host_frame(bytes.fromhex("4001" + SELECT_NDEF_APP))) == TIMED_OUT
    assert [(c.hex().upper(), r.hex()) for c, r in tag.log] == [(SELECT_NDEF_APP, "9000")]
    assert tag not in chip.tags
    # The chip still holds the target: every exchange times out, none reaches the tag.
    assert chip.feed(host_frame(bytes.fromhex("4001" + SELECT_NDEF_APP))) == TIMED_OUT
    assert len(tag.log) == 1
    # Put back and listed again, it answers (a new activation).
    chip.place(tag)
    assert tag.uid in chip.feed(host_frame(bytes.fromhex("4a0100")))
    reply = chip.feed(host_frame(bytes.fromhex("4001" + SELECT_NDEF_APP)))
    assert reply == ACK_FRAME + bytes.fromhex("0000FF05FBD5410090005A00")
    assert chip.errors == []


def test_a_tag_removed_while_selected_times_out_until_released():
    chip, tag = _listed_424()
    chip.remove(tag)
    assert chip.feed(host_frame(bytes.fromhex("4001" + SELECT_NDEF_APP))) == TIMED_OUT
    chip.feed(host_frame(bytes.fromhex("5200")))  # InRelease: the chip forgets the target
    not_acceptable = ACK_FRAME + bytes.fromhex("0000FF03FDD54127C300")
    assert chip.feed(host_frame(bytes.fromhex("4001" + SELECT_NDEF_APP))) == not_acceptable
    assert tag.log == [] and chip.errors == []


def test_garbled_answer_to_one_tag_command_after_the_tag_ran_it():
    chip, tag = _listed_424()
    chip.garble_answer_to(lambda apdu: apdu.hex().upper() == SELECT_NDEF_APP)
    good = ACK_FRAME + bytes.fromhex("0000FF05FBD5410090005A00")
    garbled = chip.feed(host_frame(bytes.fromhex("4001" + SELECT_NDEF_APP)))
    assert garbled == good[:-2] + bytes.fromhex("5B00")  # data checksum off by one
    assert len(tag.log) == 1
    # One-shot: the next identical command is answered cleanly; a host NACK would have
    # fetched the clean answer without running the command again.
    assert chip.feed(NACK_FRAME) == good[len(ACK_FRAME) :]
    assert len(tag.log) == 1
    assert chip.feed(host_frame(bytes.fromhex("4001" + SELECT_NDEF_APP))) == good
    assert len(tag.log) == 2 and chip.errors == []
