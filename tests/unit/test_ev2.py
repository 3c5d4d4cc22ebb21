"""EV2 authentication and secure messaging against AN12196's worked examples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from firmware_tools.chips.ntag424 import ev2
from firmware_tools.chips.ntag424.personalize import authenticate_ev2_first
from firmware_tools.errors import TagCommandError

VECTORS = json.loads((Path(__file__).parent.parent / "vectors" / "an12196_ev2.json").read_text())
h = bytes.fromhex


def session_of(vector: dict, ctr: int | None = None) -> ev2.Ev2Session:
    return ev2.Ev2Session(
        key_no=vector.get("auth_key_no", 0),
        ti=h(vector["ti"]),
        enc_key=h(vector["ses_enc"]),
        mac_key=h(vector["ses_mac"]),
        cmd_ctr=vector["cmd_ctr"] if ctr is None else ctr,
    )


# --- AuthenticateEV2First ------------------------------------------------------------------


@pytest.mark.parametrize("vector", VECTORS["authenticate_ev2_first"], ids=lambda v: v["ti"])
def test_authentication_values(vector: dict) -> None:
    key, rnd_a = h(vector["key"]), h(vector["rnd_a"])
    enc_rnd_b = h(vector["r_apdu_1"])[:-2]
    part2, rnd_b = ev2.auth_part2(key, enc_rnd_b, rnd_a)
    assert rnd_b == h(vector["rnd_b"])
    assert part2 == h(vector["c_apdu_2"])[5:-1]
    session = ev2.finish_auth(key, vector["key_no"], rnd_a, rnd_b, h(vector["r_apdu_2"])[:-2])
    assert session.ti == h(vector["ti"])
    assert (session.enc_key, session.mac_key) == (h(vector["ses_enc"]), h(vector["ses_mac"]))
    assert session.cmd_ctr == 0
    assert "enc_key" not in repr(session)


def test_rotation_matches_table14() -> None:
    vector = VECTORS["authenticate_ev2_first"][0]
    assert ev2.rotate_left(h(vector["rnd_b"])) == h(vector["rnd_b_rotated"])
    assert ev2.rotate_right(h(vector["rnd_b_rotated"])) == h(vector["rnd_b"])


def test_session_vector_layout_changes_keys() -> None:
    # The SV layout is pinned by the published keys; swapping RndA and RndB must break it.
    vector = VECTORS["authenticate_ev2_first"][0]
    swapped = ev2.session_keys(h(vector["key"]), h(vector["rnd_b"]), h(vector["rnd_a"]))
    assert swapped[0] != h(vector["ses_enc"])


def test_wrong_echoed_challenge_is_refused() -> None:
    vector = VECTORS["authenticate_ev2_first"][0]
    wrong_rnd_a = bytearray(h(vector["rnd_a"]))
    wrong_rnd_a[0] ^= 1
    with pytest.raises(ev2.Ev2Error):
        ev2.finish_auth(
            h(vector["key"]), 0, bytes(wrong_rnd_a), h(vector["rnd_b"]), h(vector["r_apdu_2"])[:-2]
        )


@pytest.mark.parametrize("vector", VECTORS["authenticate_ev2_first"], ids=lambda v: v["ti"])
def test_authentication_transcript_replay(vector: dict) -> None:
    transcript = [
        (h(vector["c_apdu_1"]), h(vector["r_apdu_1"])),
        (h(vector["c_apdu_2"]), h(vector["r_apdu_2"])),
    ]

    def transceive(apdu: bytes) -> bytes:
        expected, response = transcript.pop(0)
        assert apdu == expected, "unexpected command"
        return response

    session = authenticate_ev2_first(
        transceive, vector["key_no"], h(vector["key"]), lambda n: h(vector["rnd_a"])
    )
    assert not transcript
    assert session.key_no == vector["key_no"]
    assert session.mac_key == h(vector["ses_mac"])


def test_authentication_error_status_raises() -> None:
    with pytest.raises(TagCommandError) as caught:
        authenticate_ev2_first(lambda apdu: b"\x91\xae", 0, bytes(16))
    assert caught.value.status == 0x91AE


# --- CommMode.Full commands and answers ------------------------------------------------------


@pytest.mark.parametrize("vector", VECTORS["commands_full"], ids=lambda v: v["name"])
def test_command_full_pcd_side(vector: dict) -> None:
    session = session_of(vector)
    cmd, header, data = int(vector["cmd"], 16), h(vector["header"]), h(vector["data"])
    if vector["iv"] is not None:
        assert session.command_iv() == h(vector["iv"])
    field = ev2.wrap_command_full(session, cmd, header, data)
    assert field == header + h(vector["encrypted"]) + h(vector["mact"])
    status = int(vector["response_status"], 16)
    answer = ev2.unwrap_response_full(session, status, h(vector["response_field"]))
    assert answer == h(vector["response_data"])
    if "response_iv" in vector:
        assert session.response_iv() == h(vector["response_iv"])


@pytest.mark.parametrize("vector", VECTORS["commands_full"], ids=lambda v: v["name"])
def test_command_full_picc_side(vector: dict) -> None:
    session = session_of(vector)
    cmd, header = int(vector["cmd"], 16), h(vector["header"])
    field = header + h(vector["encrypted"]) + h(vector["mact"])
    assert ev2.open_command_full(session, cmd, len(header), field) == (header, h(vector["data"]))
    status = int(vector["response_status"], 16)
    sealed = ev2.seal_response_full(session, status, h(vector["response_data"]))
    assert sealed == h(vector["response_field"])


def test_mac_input_layout_of_table18() -> None:
    vector = VECTORS["commands_full"][1]
    session = session_of(vector)
    expected = ev2.aes_cmac(h(vector["ses_mac"]), h(vector["mac_input"]))[1::2]
    assert session.command_mact(0x5F, h(vector["header"]), h(vector["encrypted"])) == expected


@pytest.mark.parametrize("vector", VECTORS["commands_full"][:2], ids=lambda v: v["name"])
def test_tampered_or_miscounted_response_is_refused(vector: dict) -> None:
    session = session_of(vector)
    field = bytearray(h(vector["response_field"]))
    field[3] ^= 1
    with pytest.raises(ev2.Ev2Error):
        ev2.unwrap_response_full(session, 0, bytes(field))
    with pytest.raises(ev2.Ev2Error):
        ev2.unwrap_response_full(session.advanced(), 0, h(vector["response_field"]))
    with pytest.raises(ev2.Ev2Error):
        ev2.unwrap_response_full(session, 1, h(vector["response_field"]))


def test_tampered_command_is_refused_by_the_chip_side() -> None:
    vector = VECTORS["commands_full"][1]
    session = session_of(vector)
    field = bytearray(h(vector["header"]) + h(vector["encrypted"]) + h(vector["mact"]))
    field[5] ^= 1
    with pytest.raises(ev2.Ev2Error):
        ev2.open_command_full(session, 0x5F, 1, bytes(field))


# --- ChangeKey -------------------------------------------------------------------------------


@pytest.mark.parametrize("vector", VECTORS["change_key"], ids=lambda v: v["name"])
def test_change_key(vector: dict) -> None:
    session = session_of(vector)
    data = ev2.change_key_data(
        vector["key_no"],
        vector["auth_key_no"],
        h(vector["old_key"]),
        h(vector["new_key"]),
        vector["key_version"],
    )
    assert data == h(vector["key_data"])
    assert session.command_iv() == h(vector["iv"])
    header = bytes([vector["key_no"]])
    field = ev2.wrap_command_full(session, ev2.CMD_CHANGE_KEY, header, data)
    assert field == header + h(vector["encrypted"]) + h(vector["mact"])
    expected_mact = ev2.aes_cmac(h(vector["ses_mac"]), h(vector["mac_input"]))[1::2]
    assert expected_mact == h(vector["mact"])
    if vector["response_field"]:
        assert ev2.unwrap_response_mac(session, 0, h(vector["response_field"])) == b""
        assert ev2.seal_response_mac(session, 0, b"") == h(vector["response_field"])


def test_crc32_of_table25() -> None:
    vector = VECTORS["change_key"][0]
    assert ev2.crc32_nk(h(vector["new_key"])) == h(vector["crc32"])


def test_change_key_xors_a_non_zero_old_key() -> None:
    # No published vector has a non-zero old key. Expected value computed by hand:
    # 0102..10 XOR F3847D627727ED3BC9C4CC050489B966; the CRC stays over the new key.
    new_key = h("F3847D627727ED3BC9C4CC050489B966")
    data = ev2.change_key_data(1, 0, h("0102030405060708090A0B0C0D0E0F10"), new_key, 1)
    assert data == h("F2867E667221EA33C0CEC7090987B676") + b"\x01" + h("789DFADC")


def test_change_key_argument_checks() -> None:
    with pytest.raises(ValueError):
        ev2.change_key_data(1, 0, bytes(16), bytes(15), 1)
    with pytest.raises(ValueError):
        ev2.change_key_data(1, 0, bytes(16), bytes(16), 256)


# --- Padding and counters --------------------------------------------------------------------


@pytest.mark.parametrize("length", [0, 1, 15, 16, 17, 31, 32])
def test_padding_round_trip(length: int) -> None:
    data = bytes(range(length))
    padded = ev2.pad(data)
    assert len(padded) % 16 == 0 and len(padded) > length
    assert ev2.unpad(padded) == data


@pytest.mark.parametrize("bad", [bytes(16), b"\x01" * 16, b"\x80" + bytes(31)])
def test_bad_padding_is_refused(bad: bytes) -> None:
    with pytest.raises(ev2.Ev2Error):
        ev2.unpad(bad)


def test_command_counter_is_little_endian_and_bounded() -> None:
    session = ev2.Ev2Session(0, bytes(4), bytes(16), bytes(16), cmd_ctr=1)
    assert (
        session.command_iv() != ev2.Ev2Session(0, bytes(4), bytes(16), bytes(16), 256).command_iv()
    )
    assert session.advanced().cmd_ctr == 2
    with pytest.raises(ev2.Ev2Error):
        ev2.Ev2Session(0, bytes(4), bytes(16), bytes(16), cmd_ctr=0xFFFF).advanced()


@pytest.mark.parametrize("vector", VECTORS["authenticate_ev2_non_first"], ids=lambda v: v["rnd_a"])
def test_non_first_randoms_give_the_published_session_keys(vector: dict) -> None:
    key, rnd_a = h(vector["key"]), h(vector["rnd_a"])
    part2, rnd_b = ev2.auth_part2(key, h(vector["enc_rnd_b"]), rnd_a)
    assert (part2, rnd_b) == (h(vector["part2"]), h(vector["rnd_b"]))
    assert ev2.session_keys(key, rnd_a, rnd_b) == (h(vector["ses_enc"]), h(vector["ses_mac"]))
    # SV1 pins the byte layout on its own: its CMAC under the key is SesAuthENCKey.
    assert ev2.aes_cmac(key, h(vector["sv1"])) == h(vector["ses_enc"])
