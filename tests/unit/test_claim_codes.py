"""Claim codes: 80 random bits, typed back in any case, with or without dashes."""

from __future__ import annotations

import os

import pytest

from provenance_api import claim_codes


def test_a_code_spells_its_80_bits_in_four_groups_of_crockford_base32():
    assert claim_codes.new_code(bytes(10)) == "0000-0000-0000-0000"
    assert claim_codes.new_code(b"\xff" * 10) == "ZZZZ-ZZZZ-ZZZZ-ZZZZ"
    # 0x0123456789abcdef0123 in 5-bit groups, most significant first.
    number = 0x0123456789ABCDEF0123
    expected = "".join(claim_codes.ALPHABET[(number >> (5 * i)) & 31] for i in range(15, -1, -1))
    shown = claim_codes.new_code(number.to_bytes(10, "big"))
    assert shown.replace("-", "") == expected
    # Every bit matters: one bit flipped changes the code.
    assert claim_codes.new_code((number ^ 1).to_bytes(10, "big")) != shown


def test_random_codes_are_distinct_and_read_back_however_typed():
    codes = {claim_codes.new_code(os.urandom(10)) for _ in range(1000)}
    assert len(codes) == 1000
    for code in list(codes)[:50]:
        symbols = code.replace("-", "")
        for typed in (code, code.lower(), symbols, " ".join(code.split("-")), f"  {code}\t"):
            assert claim_codes.normalize(typed) == symbols


def test_lookalike_letters_read_as_the_digits_they_resemble():
    assert claim_codes.normalize("OOOO-IIII-LLLL-oil0") == "0000111111110110"
    assert claim_codes.digest(claim_codes.normalize("o000-0000-0000-0000")) == (
        claim_codes.digest("0000000000000000")
    )


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        ("", "16 letters"),
        ("7K3M-Q9XD-2F8H", "16 letters"),
        ("7K3M-Q9XD-2F8H-VN4P-A", "16 letters"),
        ("UUUU-0000-0000-0000", "no 'U'"),
        ("7K3M_Q9XD_2F8H_V", "no '_'"),
        ("7K3M-Q9XD-2F8H-VN4Ü", "no 'Ü'"),
    ],
)
def test_what_is_no_code_says_why(typed, reason):
    with pytest.raises(ValueError, match=reason):
        claim_codes.normalize(typed)


def test_only_the_code_digest_is_kept_and_it_is_sha256():
    digest = claim_codes.digest("7K3MQ9XD2F8HVN4P")
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert "7K3M" not in digest
    with pytest.raises(ValueError, match="10 random bytes"):
        claim_codes.new_code(bytes(8))
