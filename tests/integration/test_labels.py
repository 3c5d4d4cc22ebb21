"""QR labels written to files: they decode to the signed URL, and bad rows are reported."""

from __future__ import annotations

import csv
import hashlib
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image

from contracts_abi.eip712 import address_of_private_key
from firmware_tools.errors import FormatError
from firmware_tools.formats.labels import COLS, ROWS, issue_labels, parse_items_csv
from firmware_tools.formats.qr import verify_label_url

KEY = hashlib.sha256(b"label test supplier").digest()
SUPPLIER = address_of_private_key(KEY)
HOST = "id.example.com"
SVG = "{http://www.w3.org/2000/svg}"


def write_csv(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def pdf_pages(path: Path) -> int:
    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", path.read_bytes()))


def decoded(png: Path) -> list[str]:
    return [result.text for result in zxingcpp.read_barcodes(Image.open(png))]


def test_every_label_decodes_to_its_signed_url(tmp_path: Path) -> None:
    source = write_csv(
        tmp_path / "items.csv",
        [
            "gtin,serial,lot,expiry",
            "4006381333931,SN-1,L7,271231",
            "96385074,,,",
            "036000291452,A/B&<c>.x,,",
        ],
    )
    result = issue_labels(source, KEY, HOST, tmp_path / "out")
    assert result.errors == ()
    assert len(result.labels) == 3
    with result.manifest.open(encoding="utf-8", newline="") as handle:
        manifest = list(csv.DictReader(handle))
    assert [row["url"] for row in manifest] == [label.url for label in result.labels]
    for label, row in zip(result.labels, manifest, strict=True):
        assert (row["gtin"], row["serial"]) == (label.gtin, label.serial)
        assert decoded(label.png) == [label.url]
        check = verify_label_url(label.url, SUPPLIER)
        assert check.ok and (check.gtin, check.serial) == (label.gtin, label.serial)
        texts = [el.text for el in ET.parse(label.svg).getroot().iter(f"{SVG}text")]
        assert texts == [f"(01) {label.gtin}", f"(21) {label.serial}"]
    first = verify_label_url(result.labels[0].url, SUPPLIER)
    assert (first.lot, first.expiry) == ("L7", "271231")
    generated = result.labels[1].serial
    assert len(generated) == 16 and generated.isalnum()
    assert result.pages == 1 and pdf_pages(result.sheet) == 1


def test_the_pdf_sheet_has_a_page_per_twelve_labels(tmp_path: Path) -> None:
    count = COLS * ROWS + 1
    source = write_csv(tmp_path / "items.csv", ["gtin"] + ["96385074"] * count)
    result = issue_labels(source, KEY, HOST, tmp_path / "out")
    assert len(result.labels) == count
    assert len({label.serial for label in result.labels}) == count
    assert result.pages == 2 and pdf_pages(result.sheet) == 2
    assert result.sheet.read_bytes().startswith(b"%PDF-")


def test_bad_rows_are_reported_by_line_and_good_rows_still_issued(tmp_path: Path) -> None:
    source = write_csv(
        tmp_path / "items.csv",
        [
            "gtin,serial,lot,expiry",
            "4006381333931,OK-1,,",
            "4006381333932,X,,",  # line 3: check digit
            "",
            "4006381333931,bad serial,,",  # line 5: space
            "4006381333931,OK-2,,261301",  # line 6: month 13
            "4006381333931,OK-1,,",  # line 7: repeats line 2
            "4006381333931,OK-3",  # line 8: too few fields
            ",OK-4,,",  # line 9: no GTIN
            "4006381333931,OK-5,,",
        ],
    )
    result = issue_labels(source, KEY, HOST, tmp_path / "out")
    assert [label.serial for label in result.labels] == ["OK-1", "OK-5"]
    reasons = {error.line: error.reason for error in result.errors}
    assert sorted(reasons) == [3, 5, 6, 7, 8, 9]
    assert "wrong check digit 2, it should be 1" in reasons[3]
    assert "character ' ' at position 4" in reasons[5]
    assert "month 13" in reasons[6]
    assert "repeats line 2" in reasons[7]
    assert "2 fields, the header has 4" in reasons[8]
    assert "gtin is empty" in reasons[9]
    for label in result.labels:
        assert decoded(label.png) == [label.url]


@pytest.mark.parametrize(
    ("header", "message"),
    [("", "empty"), ("serial,lot", "no gtin column"), ("gtin,seriel", "unknown column")],
)
def test_a_bad_header_refuses_the_whole_file(tmp_path: Path, header: str, message: str) -> None:
    source = write_csv(tmp_path / "items.csv", [header] if header else [])
    if not header:
        source.write_text("", encoding="utf-8")
    with pytest.raises(FormatError, match=message):
        issue_labels(source, KEY, HOST, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_spreadsheet_bom_and_column_order_do_not_matter() -> None:
    items, errors = parse_items_csv("\ufeffSerial,GTIN\nS1,96385074\n")
    assert errors == [] and [(i.gtin, i.serial) for i in items] == [("00000096385074", "S1")]


def test_lot_expiry_and_variant_from_the_csv_are_signed(tmp_path: Path) -> None:
    source = write_csv(
        tmp_path / "items.csv",
        ["gtin,serial,lot,expiry,variant", "4006381333931,SN-1,L7,271231,V2"],
    )
    (label,) = issue_labels(source, KEY, HOST, tmp_path / "out").labels
    assert "/22/V2/10/L7/21/SN-1?17=271231&sig=" in label.url
    check = verify_label_url(label.url, SUPPLIER)
    assert check.ok and (check.lot, check.expiry, check.variant) == ("L7", "271231", "V2")
    # The recalled lot L7 relabelled as L8, with the label's own signature: caught.
    relabelled = verify_label_url(label.url.replace("/10/L7/", "/10/L8/"), SUPPLIER)
    assert not relabelled.ok and relabelled.codes == ("bad_signature",)
