"""SGTIN EPC URIs (`urn:epc:id:sgtin:...`), built and parsed strictly, and their Digital Links.

Pure: no I/O; every error is a GS1Error that names what is wrong.

Source: GS1 EPC Tag Data Standard (TDS) 2.0 §6.3.1 (SGTIN pure identity URI
`urn:epc:id:sgtin:CompanyPrefix.IndicatorItemRef.Serial`: the indicator digit moves in front
of the item reference, the check digit is dropped), §5 and Table A-1 (a serial is 1..20
characters of GS1 AI encodable character set 82; in the URI `"` `%` `&` `/` `<` `>` `?`
are written %22 %25 %26 %2F %3C %3E %3F, every other character of set 82 as itself).

The GS1 Company Prefix length (6..12 digits) is not derivable from a GTIN: the caller passes
it. Looking it up in GS1's company prefix length table is out of scope here.
"""

from __future__ import annotations

import re

from firmware_tools.errors import GS1Error
from firmware_tools.formats.gs1 import (
    build_digital_link,
    check_ai_value,
    compute_check_digit,
    normalize_gtin,
    parse_digital_link,
)

SGTIN_PREFIX = "urn:epc:id:sgtin:"
COMPANY_PREFIX_LENGTHS = range(6, 13)
CANONICAL_HOST = "id.gs1.org"

# TDS 2.0 Table A-1: the characters of set 82 that an EPC URI must %-escape.
_ESCAPES = {'"': "%22", "%": "%25", "&": "%26", "/": "%2F", "<": "%3C", ">": "%3E", "?": "%3F"}
_UNESCAPES = {code: char for char, code in _ESCAPES.items()}
_ESCAPE_RE = re.compile(r"%[0-9A-Fa-f]{2}")


def escape_serial(serial: str) -> str:
    """A serial (AI 21, set 82) as the EPC URI writes it.

    >>> escape_serial('A/1?"x"')
    'A%2F1%3F%22x%22'
    """
    return "".join(_ESCAPES.get(char, char) for char in check_ai_value("21", serial))


def unescape_serial(text: str) -> str:
    """The serial of an EPC URI serial component, checked against AI 21's rules.

    >>> unescape_serial("A%2F1!")
    'A/1!'
    """
    for char in _ESCAPES:
        if char != "%" and char in text:
            raise GS1Error(
                f"EPC URI serial {text!r}: character {char!r} must be written {_ESCAPES[char]}"
            )

    def unescape(match: re.Match[str]) -> str:
        code = match.group(0).upper()
        if code not in _UNESCAPES:
            raise GS1Error(
                f"EPC URI serial {text!r}: escape {match.group(0)} is not one of"
                " %22 %25 %26 %2F %3C %3E %3F (TDS Table A-1)"
            )
        return _UNESCAPES[code]

    if "%" in _ESCAPE_RE.sub("", text):
        raise GS1Error(f"EPC URI serial {text!r}: '%' must start an escape %XX")
    return check_ai_value("21", _ESCAPE_RE.sub(unescape, text))


def _check_company_prefix_length(length: int) -> int:
    if (
        isinstance(length, bool)
        or not isinstance(length, int)
        or length not in COMPANY_PREFIX_LENGTHS
    ):
        raise GS1Error(f"GS1 Company Prefix length {length!r} must be 6..12 digits")
    return length


def sgtin_uri(gtin: str, serial: str, company_prefix_length: int) -> str:
    """The SGTIN EPC URI of a GTIN (8/12/13/14 digits, checked) and a serial.

    >>> sgtin_uri("04012345111118", "9876", 7)
    'urn:epc:id:sgtin:4012345.011111.9876'
    >>> sgtin_uri("80614141123458", "6789/&", 7)
    'urn:epc:id:sgtin:0614141.812345.6789%2F%26'
    """
    gtin14 = normalize_gtin(gtin)
    length = _check_company_prefix_length(company_prefix_length)
    company_prefix = gtin14[1 : 1 + length]
    item_ref = gtin14[0] + gtin14[1 + length : 13]
    return f"{SGTIN_PREFIX}{company_prefix}.{item_ref}.{escape_serial(serial)}"


def parse_sgtin_uri(uri: str) -> tuple[str, str]:
    """The GTIN-14 (check digit recomputed) and the serial of an SGTIN EPC URI.

    >>> parse_sgtin_uri("urn:epc:id:sgtin:0614141.812345.6789%2F%26")
    ('80614141123458', '6789/&')
    """
    if not isinstance(uri, str) or not uri.startswith(SGTIN_PREFIX):
        raise GS1Error(f"{str(uri)[:40]!r} is not an SGTIN EPC URI ({SGTIN_PREFIX}...)")
    parts = uri[len(SGTIN_PREFIX) :].split(".", 2)
    if len(parts) != 3:
        raise GS1Error(f"SGTIN URI {uri!r} must have CompanyPrefix.IndicatorItemRef.Serial")
    company_prefix, item_ref, serial = parts
    for name, digits in (
        ("company prefix", company_prefix),
        ("indicator and item reference", item_ref),
    ):
        if not digits.isascii() or not digits.isdigit():
            raise GS1Error(f"SGTIN URI {uri!r}: {name} {digits!r} must be digits")
    _check_company_prefix_length(len(company_prefix))
    if len(company_prefix) + len(item_ref) != 13:
        raise GS1Error(
            f"SGTIN URI {uri!r}: company prefix and indicator + item reference have"
            f" {len(company_prefix) + len(item_ref)} digits; they must have 13"
        )
    body = item_ref[0] + company_prefix + item_ref[1:]
    return body + compute_check_digit(body), unescape_serial(serial)


def sgtin_uri_to_digital_link(uri: str, host: str = CANONICAL_HOST) -> str:
    """The GS1 Digital Link `https://<host>/01/<GTIN>/21/<serial>` of an SGTIN EPC URI.

    >>> sgtin_uri_to_digital_link("urn:epc:id:sgtin:0614141.812345.6789%2F%26")
    'https://id.gs1.org/01/80614141123458/21/6789%2F%26'
    """
    gtin, serial = parse_sgtin_uri(uri)
    return build_digital_link(host, gtin, serial)


def digital_link_to_sgtin_uri(url: str, company_prefix_length: int) -> str:
    """The SGTIN EPC URI of a serialized GS1 Digital Link (lot and query are not part of it).

    >>> digital_link_to_sgtin_uri("https://id.gs1.org/01/04012345111118/21/9876", 7)
    'urn:epc:id:sgtin:4012345.011111.9876'
    """
    link = parse_digital_link(url)
    return sgtin_uri(link.gtin, link.serial, company_prefix_length)
