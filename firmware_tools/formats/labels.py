"""Printable QR labels: CSV of items in; SVG, PNG, an A4 PDF sheet and a manifest out.

`parse_items_csv`, `qr_code`, `label_svg` and `label_png` take values and return values;
`issue_labels` is the file edge. segno, Pillow and fpdf2 are imported where they are used,
so that the verifying parts of the package stay light.
"""

from __future__ import annotations

import csv
import importlib
import io
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape

from firmware_tools.errors import FormatError, GS1Error
from firmware_tools.formats.gs1 import check_ai_value, check_expiry, check_host, normalize_gtin
from firmware_tools.formats.qr import new_serial, sign_label_url

COLUMNS = ("gtin", "serial", "lot", "expiry", "variant")
RENDERERS = ("segno", "PIL", "fpdf")  # the 'tools' extra installs them
MANIFEST = "labels.csv"
SHEET = "labels.pdf"
QR_SCALE = 4  # pixels per module in the PNG: 4 is enough for 300 dpi label printers
QR_BORDER = 4  # the quiet zone that ISO/IEC 18004 requires, in modules
CAPTION_SIZE = 14  # px
# A4 sheet grid (mm): 3 x 4 labels of 60 mm wide images with room for cutting.
PAGE_W, PAGE_H = 210.0, 297.0
COLS, ROWS = 3, 4
CELL_W, CELL_H = 64.0, 70.0
IMAGE_W = 56.0


@dataclass(frozen=True)
class Item:
    """One good CSV row; `serial` is None when the tool must generate one."""

    line: int
    gtin: str
    serial: str | None
    lot: str | None
    expiry: str | None
    variant: str | None = None


@dataclass(frozen=True)
class RowError:
    """A CSV row that was not issued, by its line number in the file."""

    line: int
    reason: str


@dataclass(frozen=True)
class IssuedLabel:
    """A label that was written."""

    line: int
    gtin: str
    serial: str
    url: str
    svg: Path
    png: Path


@dataclass(frozen=True)
class IssueResult:
    """What `issue_labels` wrote and which rows it refused."""

    labels: tuple[IssuedLabel, ...]
    errors: tuple[RowError, ...]
    manifest: Path
    sheet: Path | None
    pages: int


def parse_items_csv(text: str) -> tuple[list[Item], list[RowError]]:
    """Good items and the bad rows of a CSV with a header row (gtin, serial, lot, expiry, variant).

    Expiry is YYMMDD (GS1 AI 17).

    Raises FormatError when the header itself is wrong: then no row can be trusted.

    >>> items, errors = parse_items_csv("gtin,serial\\n96385074,A1\\n96385075,A2\\n")
    >>> [(i.line, i.gtin, i.serial) for i in items]
    [(2, '00000096385074', 'A1')]
    >>> errors
    [RowError(line=3, reason='GTIN 96385075: wrong check digit 5, it should be 4')]
    """
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))  # a spreadsheet may add a BOM
    try:
        header = next(reader)
    except StopIteration:
        raise FormatError(f"the CSV is empty; it needs a header row: {','.join(COLUMNS)}") from None
    except csv.Error as exc:
        raise FormatError(f"CSV line 1: {exc}") from None
    names = [name.strip().lower() for name in header]
    if "gtin" not in names:
        raise FormatError(
            f"CSV header {header!r} has no gtin column (columns: {','.join(COLUMNS)})"
        )
    unknown = [name for name in names if name not in COLUMNS]
    if unknown:
        raise FormatError(
            f"CSV header has unknown column(s) {unknown}; allowed: {', '.join(COLUMNS)}"
        )
    duplicated = {name for name in names if names.count(name) > 1}
    if duplicated:
        raise FormatError(f"CSV header names column(s) {sorted(duplicated)} twice")
    items: list[Item] = []
    errors: list[RowError] = []
    seen: dict[tuple[str, str], int] = {}
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            errors.append(RowError(start, f"unreadable CSV: {exc}"))
            continue
        if not any(cell.strip() for cell in row):
            continue  # blank lines are layout, not items
        if len(row) != len(names):
            errors.append(RowError(start, f"{len(row)} fields, the header has {len(names)}"))
            continue
        values = {name: cell.strip() or None for name, cell in zip(names, row, strict=True)}
        try:
            if values.get("gtin") is None:
                raise GS1Error("gtin is empty")
            gtin = normalize_gtin(values["gtin"])
            serial = values.get("serial")
            if serial is not None:
                check_ai_value("21", serial)
            lot = values.get("lot")
            if lot is not None:
                check_ai_value("10", lot)
            expiry = values.get("expiry")
            if expiry is not None:
                check_expiry(expiry)
            variant = values.get("variant")
            if variant is not None:
                check_ai_value("22", variant)
        except GS1Error as exc:
            errors.append(RowError(start, str(exc)))
            continue
        if serial is not None:
            first = seen.setdefault((gtin, serial), start)
            if first != start:
                errors.append(RowError(start, f"GTIN {gtin} serial {serial} repeats line {first}"))
                continue
        items.append(Item(start, gtin, serial, lot, expiry, variant))
    return items, errors


def check_renderers() -> None:
    """Import segno, Pillow and fpdf2 (the 'tools' extra) now: a missing one is reported
    before any file is written. Raises ModuleNotFoundError naming the module."""
    for module in RENDERERS:
        importlib.import_module(module)


def read_items_csv(csv_path: str | os.PathLike) -> tuple[list[Item], list[RowError]]:
    """`parse_items_csv` of a UTF-8 file; raises FormatError if it cannot be read at all."""
    csv_path = Path(csv_path)
    try:
        text = csv_path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise FormatError(f"{csv_path} is not UTF-8 text") from None
    except OSError as exc:
        raise FormatError(f"cannot read {csv_path}: {exc.strerror}") from None
    return parse_items_csv(text)


def caption_lines(gtin: str, serial: str) -> tuple[str, str]:
    """The human-readable text printed under a code."""
    return f"(01) {gtin}", f"(21) {serial}"


def qr_code(url: str) -> Any:
    """The QR code (segno, error correction M) of `url`, made once for every output format."""
    import segno

    return segno.make(url, error="m")


def label_svg(code: Any, caption: Sequence[str]) -> str:
    """An SVG label: the QR `code` with `caption` as <text> lines under it."""
    buffer = io.BytesIO()
    code.save(
        buffer, kind="svg", xmldecl=False, svgns=False, nl=False, scale=QR_SCALE, border=QR_BORDER
    )
    size = code.symbol_size(scale=QR_SCALE, border=QR_BORDER)[0]
    line_height = CAPTION_SIZE + 4
    height = size + line_height * len(caption) + 4
    texts = "".join(
        f'<text x="{size / 2:g}" y="{size + line_height * (i + 1) - 4}" text-anchor="middle"'
        f' font-family="monospace" font-size="{CAPTION_SIZE}">{escape(line)}</text>'
        for i, line in enumerate(caption)
    )
    # The code is a nested <svg> so that segno's own coordinates stay untouched.
    return (
        f'<?xml version="1.0" encoding="utf-8"?>\n<svg xmlns="http://www.w3.org/2000/svg"'
        f' width="{size}" height="{height}" viewBox="0 0 {size} {height}">'
        f'<rect width="{size}" height="{height}" fill="#fff"/>'
        f"{buffer.getvalue().decode('utf-8')}{texts}</svg>\n"
    )


def label_png(code: Any, caption: Sequence[str]) -> bytes:
    """A PNG label: the QR `code` with `caption` drawn under it (Pillow's default font)."""
    from PIL import Image, ImageDraw, ImageFont

    buffer = io.BytesIO()
    code.save(buffer, kind="png", scale=QR_SCALE, border=QR_BORDER)
    qr_image = Image.open(io.BytesIO(buffer.getvalue())).convert("L")
    font = ImageFont.load_default(size=CAPTION_SIZE)
    measure = ImageDraw.Draw(qr_image)
    widths = [measure.textlength(line, font=font) for line in caption]
    line_height = CAPTION_SIZE + 4
    width = max(qr_image.width, int(max(widths, default=0)) + 2 * QR_BORDER * QR_SCALE)
    height = qr_image.height + line_height * len(caption) + QR_BORDER * QR_SCALE // 2
    label = Image.new("L", (width, height), 255)
    label.paste(qr_image, ((width - qr_image.width) // 2, 0))
    draw = ImageDraw.Draw(label)
    for i, (line, line_width) in enumerate(zip(caption, widths, strict=True)):
        draw.text(
            ((width - line_width) / 2, qr_image.height + i * line_height), line, font=font, fill=0
        )
    out = io.BytesIO()
    label.save(out, format="PNG")
    return out.getvalue()


def labels_pdf(pngs: Sequence[bytes], path: Path) -> int:
    """Write an A4 sheet of the PNG labels (3 x 4 per page) to `path`; the page count."""
    from fpdf import FPDF

    pdf = FPDF(orientation="portrait", unit="mm", format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_creator("firmware-tools qr issue")
    per_page = COLS * ROWS
    margin_x = (PAGE_W - COLS * CELL_W) / 2
    margin_y = (PAGE_H - ROWS * CELL_H) / 2
    for index, png in enumerate(pngs):
        if index % per_page == 0:
            pdf.add_page()
        slot = index % per_page
        col, row = slot % COLS, slot // COLS
        x = margin_x + col * CELL_W + (CELL_W - IMAGE_W) / 2
        y = margin_y + row * CELL_H + 2
        pdf.image(io.BytesIO(png), x=x, y=y, w=IMAGE_W)
    pdf.output(str(path))
    return pdf.pages_count


def _file_stem(gtin: str, serial: str) -> str:
    # Percent-encoding keeps "/" and other awkward characters out of file names and is
    # injective, so two different serials never share a file.
    return f"{gtin}_{quote(serial, safe='')}"


def issue_labels(
    csv_path: str | os.PathLike,
    signing_key: bytes,
    host: str,
    out_dir: str | os.PathLike,
    *,
    on_label: Callable[[], None] | None = None,
) -> IssueResult:
    """Sign and render a label per good CSV row into `out_dir`; bad rows are reported, not fatal.

    Raises FormatError if the CSV cannot be read at all (header, encoding).
    """
    out_dir = Path(out_dir)
    items, errors = read_items_csv(csv_path)
    check_host(host)  # before anything is written
    check_renderers()
    out_dir.mkdir(parents=True, exist_ok=True)
    labels: list[IssuedLabel] = []
    pngs: list[bytes] = []
    for item in items:
        serial = item.serial or new_serial()
        url = sign_label_url(
            signing_key,
            host,
            item.gtin,
            serial,
            lot=item.lot,
            expiry=item.expiry,
            variant=item.variant,
        )
        caption = caption_lines(item.gtin, serial)
        stem = _file_stem(item.gtin, serial)
        svg_path, png_path = out_dir / f"{stem}.svg", out_dir / f"{stem}.png"
        code = qr_code(url)
        svg_path.write_text(label_svg(code, caption), encoding="utf-8")
        png = label_png(code, caption)
        png_path.write_bytes(png)
        pngs.append(png)
        labels.append(IssuedLabel(item.line, item.gtin, serial, url, svg_path, png_path))
        if on_label is not None:
            on_label()
    manifest = out_dir / MANIFEST
    with manifest.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("gtin", "serial", "url"))
        writer.writerows((label.gtin, label.serial, label.url) for label in labels)
    sheet, pages = None, 0
    if pngs:
        sheet = out_dir / SHEET
        pages = labels_pdf(pngs, sheet)
    return IssueResult(tuple(labels), tuple(errors), manifest, sheet, pages)
