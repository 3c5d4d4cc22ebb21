"""GTINs and GS1 Digital Link URLs: round trips and errors that name the problem."""

from __future__ import annotations

import re

import pytest

from firmware_tools.errors import GS1Error
from firmware_tools.formats.gs1 import (
    CSET82,
    build_digital_link,
    check_expiry,
    compute_check_digit,
    is_valid_gtin,
    normalize_gtin,
    parse_digital_link,
)

# Valid GTINs of each length (check digits computed by hand with weights 3,1,3,...).
GTINS = {
    "96385074": "00000096385074",
    "036000291452": "00036000291452",
    "4006381333931": "04006381333931",
    "10614141000415": "10614141000415",
}


@pytest.mark.parametrize(("gtin", "gtin14"), GTINS.items())
def test_valid_gtins_normalise_to_14_digits(gtin: str, gtin14: str) -> None:
    assert normalize_gtin(gtin) == gtin14
    assert is_valid_gtin(gtin)
    assert compute_check_digit(gtin[:-1]) == gtin[-1]


@pytest.mark.parametrize("gtin", GTINS)
def test_every_wrong_check_digit_is_named_with_the_right_one(gtin: str) -> None:
    for digit in "0123456789":
        if digit == gtin[-1]:
            continue
        with pytest.raises(GS1Error, match=f"wrong check digit {digit}, it should be {gtin[-1]}"):
            normalize_gtin(gtin[:-1] + digit)


def test_a_single_digit_error_in_the_body_is_caught() -> None:
    gtin = "4006381333931"
    for position in range(len(gtin) - 1):
        for digit in "0123456789":
            if digit != gtin[position]:
                assert not is_valid_gtin(gtin[:position] + digit + gtin[position + 1 :])


@pytest.mark.parametrize(
    ("gtin", "message"),
    [
        ("", "empty"),
        ("123456789", "9 digits"),
        ("400638133393a", "'a' at position 13 is not a digit"),
        ("4006381 33931", "' ' at position 8"),
        ("４００６３８１３３３９３１", "is not a digit"),
    ],
)
def test_malformed_gtins_say_what_is_wrong(gtin: str, message: str) -> None:
    with pytest.raises(GS1Error, match=message):
        normalize_gtin(gtin)


@pytest.mark.parametrize(
    ("kwargs", "url"),
    [
        ({}, "https://id.example.com/01/04006381333931/21/SN1"),
        ({"lot": "L-7"}, "https://id.example.com/01/04006381333931/10/L-7/21/SN1"),
        ({"expiry": "271231"}, "https://id.example.com/01/04006381333931/21/SN1?17=271231"),
        (
            {"lot": "B", "expiry": "280200", "variant": "V1", "params": (("sig", "x_y-z"),)},
            "https://id.example.com/01/04006381333931/22/V1/10/B/21/SN1?17=280200&sig=x_y-z",
        ),
    ],
)
def test_links_build_canonically_and_parse_back(kwargs: dict, url: str) -> None:
    assert build_digital_link("id.example.com", "4006381333931", "SN1", **kwargs) == url
    link = parse_digital_link(url)
    assert (link.gtin, link.serial, link.lot, link.expiry, link.variant) == (
        "04006381333931",
        "SN1",
        kwargs.get("lot"),
        kwargs.get("expiry"),
        kwargs.get("variant"),
    )
    assert link.params == kwargs.get("params", ())
    assert link.url == url


def test_every_cset82_character_round_trips_in_a_serial() -> None:
    chars = "".join(sorted(CSET82))
    for start in range(0, len(chars), 20):
        serial = chars[start : start + 20]
        url = build_digital_link("id.example.com", "96385074", serial, lot=serial[::-1])
        link = parse_digital_link(url)
        assert (link.serial, link.lot) == (serial, serial[::-1])
        assert "?" not in url and "#" not in url and url.count("/") == 8


def test_a_host_with_scheme_port_and_path_prefix_is_kept() -> None:
    url = build_digital_link("http://localhost:5000/r", "96385074", "01")
    assert url == "http://localhost:5000/r/01/00000096385074/21/01"
    link = parse_digital_link(url)
    assert (link.base, link.serial) == ("http://localhost:5000/r", "01")
    assert build_digital_link("HTTPS://ID.example.com/", "96385074", "S") == (
        "https://id.example.com/01/00000096385074/21/S"
    )
    assert parse_digital_link("HTTPS://ID.Example.COM:8443/01/00000096385074/21/S").base == (
        "https://id.example.com:8443"
    )


def test_an_internationalized_host_becomes_lower_case_a_labels() -> None:
    url = build_digital_link("Bücher.Example", "96385074", "S")
    assert url == "https://xn--bcher-kva.example/01/00000096385074/21/S"
    assert parse_digital_link(url).base == "https://xn--bcher-kva.example"
    assert parse_digital_link(url.replace("xn--bcher-kva", "bücher")).base == (
        "https://xn--bcher-kva.example"
    )


BAD_HOSTS = [
    ("user@id.example.com", "user info"),
    ("user:pw@id.example.com", "user info"),
    ("id.example.com:0", "port '0' is not a number from 1 to 65535"),
    ("id.example.com:65536", "port '65536'"),
    ("id.example.com:080", "port '080'"),
    ("id.example.com:", "port ''"),
    ("id.example.com:http", "port 'http'"),
    ("id.example.com:443:1", "port '443:1'"),
    pytest.param("id.example.com:" + "9" * 5000, "port '99999", id="5000-digit-port"),
    pytest.param("a" * 5000, "the host name has 5000 characters; at most 253", id="5000-chars"),
    pytest.param("a" * 64 + ".example", "Label too long", id="64-char-label"),
    ("id..example.com", "empty label"),
    ("id.example.com.", "empty label"),
    ("id_1.example.com", "character '_'"),
    ("[::1]:5000", "IP literals"),
    ("💩.example", "not a valid host name"),
    ("id.example.com/a//b", "empty segment"),
    ("id.example.com/a b", "character ' '"),
    pytest.param("id.example.com/" + "p" * 600, "too long: at most 512", id="600-char-path"),
]


@pytest.mark.parametrize(("host", "message"), BAD_HOSTS)
def test_a_bad_host_is_refused_when_building(host: str, message: str) -> None:
    with pytest.raises(GS1Error, match=re.escape(message)) as info:
        build_digital_link(host, "96385074", "S")
    assert len(str(info.value)) < 200  # a 5,000-character host is not repeated back


@pytest.mark.parametrize(("host", "message"), BAD_HOSTS)
def test_a_bad_host_is_refused_when_parsing(host: str, message: str) -> None:
    with pytest.raises(GS1Error, match=re.escape(message)):
        parse_digital_link(f"https://{host}/01/00000096385074/21/S")


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("sig=abc=", "character '=' at position 4 must be encoded"),
        ("sig=a+b", "character '+' at position 2 must be encoded"),
        ("sig=a b", "character ' ' at position 2 must be encoded"),
        ("sig=ab%41", "escape '%41' spells 'A', which is written as itself"),
        ("sig=ab%2", "bad percent escape '%2'"),
        ("sig=%FF", "do not decode to UTF-8"),
        ("uid=04%7E", "escape '%7E' spells '~'"),
        ("17=2612%331", "AI 17: escape '%33' spells '3'"),
        ("17=261231=", "AI 17: character '='"),
        ("note=%22x%22&17=26+231", "AI 17: character '+'"),
    ],
)
def test_every_query_value_follows_the_same_character_rules(query: str, message: str) -> None:
    with pytest.raises(GS1Error, match=re.escape(message)):
        parse_digital_link("https://x.example/01/04006381333931/21/S?" + query)


def test_query_values_decode_percent_escapes_to_utf8() -> None:
    link = parse_digital_link("https://x.example/01/04006381333931/21/S?note=caf%C3%A9%20%2B1")
    assert link.param("note") == "café +1"
    assert link.url == "https://x.example/01/04006381333931/21/S?note=caf%C3%A9%20%2B1"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://x.example/01/04006381333931/21/S/10/L", "AI 10 \\(lot\\) must come before AI 21"),
        ("https://x.example/01/04006381333931/21/S/22/V", "AI 22 .* must come before AI 21"),
        ("https://x.example/01/04006381333931/10/L/22/V/21/S", "AI 22 .* before AI 10"),
        ("https://x.example/01/04006381333931/21/S/21/T", "AI 21 \\(serial\\) appears twice"),
        ("https://x.example/01/04006381333931/17/261231/21/S", "AI '17' is not a key qualifier"),
        ("https://x.example/01/04006381333932/21/S", "wrong check digit 2, it should be 1"),
        ("https://x.example/01/4006381333931/21/S", "must be 14 digits"),
        ("https://x.example/01/04006381333931", "no serial"),
        ("https://x.example/01/04006381333931/10/L", "no serial"),
        ("https://x.example/01/04006381333931/21", "no primary key"),
        ("https://x.example/21/S", "no primary key"),
        ("ftp://x.example/01/04006381333931/21/S", "must start with https://"),
        ("https:///01/04006381333931/21/S", "no domain"),
        ("https://x.example/01/04006381333931/21/S#frag", "fragment"),
        ("https://x.example/01/04006381333931/21/A B", "character ' ' at position 2"),
        ("https://x.example/01/04006381333931/21/A%2", "bad percent escape '%2'"),
        ("https://x.example/01/04006381333931/21/A%7E", "'%7E' spells '~'"),
        ("https://x.example/01/04006381333931/21/A~", "'~' at position 2 is not in GS1"),
        ("https://x.example/01/04006381333931/21/A%C3%A9", "'é' at position 2 is not in GS1"),
        ("https://x.example//01/04006381333931/21/S", "empty segment"),
        ("https://x.example/01/04006381333931/21/" + "A" * 21, "21 characters; at most 20"),
        ("https://x.example/01/04006381333931/21/S?21=T", "AI 21 .* belongs in the path"),
        ("https://x.example/01/04006381333931/21/S?10=L", "AI 10 .* belongs in the path"),
        ("https://x.example/01/04006381333931/21/S?99=1", "AI 99 in the query string"),
        ("https://x.example/01/04006381333931/21/S?17=261232", "day 32 does not exist"),
        ("https://x.example/01/04006381333931/21/S?17=2612", "6 digits YYMMDD"),
        ("https://x.example/01/04006381333931/21/S?sig", "'sig' has no value"),
        ("https://x.example/01/04006381333931/21/S?sig=a&sig=b", "'sig' appears twice"),
    ],
)
def test_malformed_links_are_errors_that_name_the_problem(url: str, message: str) -> None:
    with pytest.raises(GS1Error, match=message):
        parse_digital_link(url)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"serial": ""}, "AI 21 \\(serial\\) is empty"),
        ({"serial": "a~b"}, "'~' at position 2"),
        ({"lot": "é"}, "AI 10 \\(lot\\): character 'é'"),
        ({"expiry": "250229"}, "day 29 does not exist in month 02"),
        ({"expiry": "25-229"}, "6 digits"),
        ({"params": (("17", "x"),)}, "all digits"),
        ({"params": (("a", "1"), ("a", "2"))}, "given twice"),
        ({"host": "bad host"}, "character ' '"),
        ({"host": ""}, "empty"),
    ],
)
def test_building_refuses_bad_fields(kwargs: dict, message: str) -> None:
    args = {"host": "id.example.com", "gtin": "96385074", "serial": "S"} | kwargs
    with pytest.raises(GS1Error, match=message):
        build_digital_link(**args)


def test_expiry_dates_follow_the_calendar() -> None:
    assert check_expiry("240229") == "240229"  # 2024 is a leap year
    assert check_expiry("000229") == "000229"  # and so was 2000
    assert check_expiry("261100") == "261100"  # DD=00: the end of the month
    for bad in ("261131", "260431", "261300", "260015"):
        with pytest.raises(GS1Error, match="AI 17"):
            check_expiry(bad)
