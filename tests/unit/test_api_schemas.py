"""The pure checks behind the API shapes: GTINs, https URLs, small JSON objects, free text."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from provenance_api.schemas import (
    ATTRIBUTES_MAX_BYTES,
    ProductCreate,
    ProductUpdate,
    gtin14,
    https_url,
    small_json_object,
    text_block,
)


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("96385074", "00000096385074"),  # GTIN-8
        ("036000291452", "00036000291452"),  # GTIN-12 (UPC-A)
        ("9506000134352", "09506000134352"),  # GTIN-13
        ("09506000134352", "09506000134352"),
    ],
)
def test_every_gtin_length_is_stored_as_gtin_14(given, stored):
    assert gtin14(given) == stored


@pytest.mark.parametrize(
    "bad", ["9506000134353", "950600013435", "", "095060001343520", "９５０６"]
)
def test_a_gtin_with_a_wrong_check_digit_length_or_digit_is_refused(bad):
    with pytest.raises(ValueError, match="GTIN"):
        gtin14(bad)


@pytest.mark.parametrize(
    "bad",
    [
        "http://example.com/a.png",
        "ftp://example.com/a.png",
        "https:///a.png",
        "https://exa mple.com/a.png",
        "https://example.com/a\n.png",
        "//example.com/a.png",
        "javascript:alert(1)",
    ],
)
def test_image_urls_are_absolute_https_without_spaces(bad):
    with pytest.raises(ValueError):
        https_url(bad)
    assert https_url("https://img.example.com/a.png?w=2") == "https://img.example.com/a.png?w=2"


def test_attributes_are_bounded_in_size_depth_and_key_length():
    assert small_json_object({"a": {"b": {"c": [1]}}}) == {"a": {"b": {"c": [1]}}}
    with pytest.raises(ValueError, match="nested"):
        small_json_object({"a": {"b": {"c": {"d": [1]}}}})
    with pytest.raises(ValueError, match="bytes"):
        small_json_object({"k": "é" * (ATTRIBUTES_MAX_BYTES // 2)})  # 2 bytes each in UTF-8
    with pytest.raises(ValueError, match="keys"):
        small_json_object({"": 1})
    with pytest.raises(ValueError, match="keys"):
        small_json_object({"k" * 65: 1})


def test_free_text_keeps_newlines_and_refuses_other_controls():
    assert text_block("  Line one\n\tLine two  ") == "Line one\n\tLine two"
    assert text_block("Cafe\u0301") == "Café"  # NFC
    with pytest.raises(ValueError, match="U\\+001B"):
        text_block("bold \x1b[1m")


def test_a_product_body_refuses_unknown_fields_and_a_patch_cannot_clear_the_name():
    with pytest.raises(ValidationError) as error:
        ProductCreate.model_validate({"gtin": "9506000134352", "name": "x", "owner_id": 2})
    assert error.value.errors()[0]["loc"] == ("owner_id",)
    assert ProductUpdate.model_validate({}).model_fields_set == set()
    assert ProductUpdate.model_validate({"description": None}).model_fields_set == {"description"}
    with pytest.raises(ValidationError):
        ProductUpdate.model_validate({"name": None})
