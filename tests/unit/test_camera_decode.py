"""Codes decoded from camera frames by real zxing-cpp, on QR codes that segno draws."""

from __future__ import annotations

import pytest

from reader_agent.sources import UnreadableTag

zxingcpp = pytest.importorskip("zxingcpp", reason="the 'camera' extra is not installed")
segno = pytest.importorskip("segno")
pytest.importorskip("PIL.Image")

from reader_agent.sources.camera import decode_frame  # noqa: E402
from tests.fakes.camera_frames import frame  # noqa: E402

URL = "https://id.example.com/01/09506000134352/21/SN-1?sig=AbC_-d"


def test_a_qr_code_in_a_frame_is_its_text() -> None:
    assert decode_frame(frame(URL)) == [URL]


def test_two_codes_in_one_frame_are_two_texts() -> None:
    assert sorted(decode_frame(frame(URL, "second"))) == sorted([URL, "second"])


def test_an_empty_frame_has_no_code() -> None:
    assert decode_frame(frame()) == []


def test_formats_not_asked_for_are_not_decoded() -> None:
    assert decode_frame(frame(URL), formats="DataMatrix") == []
    assert decode_frame(frame(URL), formats="QRCode,DataMatrix") == [URL]


def test_a_code_that_is_not_text_is_reported() -> None:
    with pytest.raises(UnreadableTag, match="not text: ff fe 00"):
        decode_frame(frame(b"\xff\xfe\x00binary"))
    assert decode_frame(frame("caf\u00e9 UTF-8".encode())) == ["caf\u00e9 UTF-8"]
