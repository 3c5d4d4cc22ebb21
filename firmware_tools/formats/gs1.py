"""GTINs and GS1 Digital Link URLs, built and parsed strictly.

Pure: no I/O; every error is a GS1Error whose message names the AI, the character or the
digit that is wrong.

Sources: GS1 General Specifications §7.9 (check digit), §7.11 (AI encodable character
set 82), §3.4.5 (AI 17 date, DD=00 allowed); GS1 Digital Link Standard: URI Syntax 1.2
§4.4 (for primary key 01 the key qualifiers 22, 10, 21 go in the path in that order; data
attributes such as 17 go in the query string; other query parameters are allowed when
their name is not all digits), §4.8 (AI values are percent-encoded in the URI); RFC 3986
§2.1-2.3 (percent-encoding, unreserved characters), §3.2 (authority: no user info here,
port); RFC 1035 §2.3.4 and RFC 5891 (host names: 63 per label, 253 in all; IDNA A-labels).

One spelling per value: a percent escape of an unreserved character (RFC 3986 §2.3) is
refused, and query values may not hold a raw "=" or "+", so that a signature or an AI
value has one text in a URL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote

import idna

from firmware_tools.errors import GS1Error

GTIN_LENGTHS = (8, 12, 13, 14)

# GS1 General Specifications Figure 7.11-1: AI encodable character set 82.
CSET82 = frozenset(
    "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
)
# RFC 3986 §2.3 and §3.3: unreserved characters and pchar (without "%", the escape).
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PCHAR = _UNRESERVED | frozenset("!$&'()*+,;=:@")
# What may appear raw in a path segment, and in a query value: there "&" and "=" separate
# pairs and "+" means a space to form decoders, so all three must arrive encoded.
_RAW_PATH_CHARS = _PCHAR
_RAW_QUERY_CHARS = (_PCHAR | frozenset("/?")) - frozenset("&=+")
_HEX = frozenset("0123456789abcdefABCDEF")
# Fast paths for the common case (a verifier parses thousands of URLs a second); the slow
# character loops run only to name the character that is wrong.
_RAW_PATH_RE = re.compile("[" + re.escape("".join(sorted(_RAW_PATH_CHARS))) + "]*")
_RAW_QUERY_RE = re.compile("[" + re.escape("".join(sorted(_RAW_QUERY_CHARS))) + "]*")
_CSET82_RE = re.compile("[" + re.escape("".join(sorted(CSET82))) + "]{1,20}")
_PARAM_NAME_RE = re.compile(r"[A-Za-z0-9_.\-]*[A-Za-z_.\-][A-Za-z0-9_.\-]*")
# Host names (RFC 1035 §2.3.4, RFC 5891): ASCII letters, digits, hyphens and dots, and
# non-ASCII letters that IDNA turns into A-labels.
_HOST_ASCII = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.")
MAX_HOST_LENGTH = 253
# Scheme, host, port and path prefix together: a QR code and an NTAG 216 must still hold the
# whole label URL after it.
MAX_BASE_LENGTH = 512

# Key qualifiers of AI 01 in their required path order (Digital Link 1.2 §4.4).
KEY_QUALIFIERS = {"22": "consumer product variant", "10": "lot", "21": "serial"}
_QUALIFIER_RANK = {ai: rank for rank, ai in enumerate(KEY_QUALIFIERS)}
_MAX_LENGTH = {"22": 20, "10": 20, "21": 20}
# Data attributes this tool understands in the query string.
DATA_ATTRIBUTES = {"17": "expiry date"}
_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def compute_check_digit(body: str) -> str:
    """The GS1 mod-10 check digit of the digits before it.

    >>> compute_check_digit("952123454321")
    '3'
    >>> compute_check_digit("0952123454321")
    '3'
    """
    if not body.isascii() or not body.isdigit():
        raise GS1Error(f"GTIN body {body!r} must be digits only")
    # Weights 3, 1, 3, ... from the rightmost digit of the body (GS1 GenSpecs §7.9.1).
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return str(-total % 10)


@lru_cache(maxsize=4096)
def normalize_gtin(gtin: str) -> str:
    """A GTIN-8/12/13/14 checked and left-padded with zeros to 14 digits.

    >>> normalize_gtin("9521234543213")
    '09521234543213'
    >>> normalize_gtin("9521234543214")
    Traceback (most recent call last):
    ...
    firmware_tools.errors.GS1Error: GTIN 9521234543214: wrong check digit 4, it should be 3
    >>> normalize_gtin("95212345432")
    Traceback (most recent call last):
    ...
    firmware_tools.errors.GS1Error: GTIN 95212345432 has 11 digits; a GTIN has 8, 12, 13 or 14
    """
    if not isinstance(gtin, str) or not gtin:
        raise GS1Error("GTIN is empty")
    for position, char in enumerate(gtin, start=1):
        if char not in "0123456789":
            raise GS1Error(
                f"GTIN {gtin!r}: character {char!r} at position {position} is not a digit"
            )
    if len(gtin) not in GTIN_LENGTHS:
        raise GS1Error(f"GTIN {gtin} has {len(gtin)} digits; a GTIN has 8, 12, 13 or 14")
    expected = compute_check_digit(gtin[:-1])
    if gtin[-1] != expected:
        raise GS1Error(f"GTIN {gtin}: wrong check digit {gtin[-1]}, it should be {expected}")
    return gtin.rjust(14, "0")


def is_valid_gtin(gtin: str) -> bool:
    """Whether `gtin` is a GTIN-8/12/13/14 with a correct check digit.

    >>> is_valid_gtin("96385074"), is_valid_gtin("96385075")
    (True, False)
    """
    try:
        normalize_gtin(gtin)
    except GS1Error:
        return False
    return True


def check_ai_value(ai: str, value: str) -> str:
    """`value` if it is valid for AI 10, 21, 22 (1..20 chars of CSET 82) or 17 (YYMMDD).

    >>> check_ai_value("21", "ABC-123")
    'ABC-123'
    >>> check_ai_value("21", "ABC 123")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    firmware_tools.errors.GS1Error: AI 21 (serial): character ' ' at position 4 is not in ...
    """
    if ai == "17":
        check_expiry(value)
        return value
    name = KEY_QUALIFIERS.get(ai)
    if name is None:
        raise GS1Error(f"AI {ai} is not supported here")
    if isinstance(value, str) and _CSET82_RE.fullmatch(value):
        return value
    if not isinstance(value, str) or not value:
        raise GS1Error(f"AI {ai} ({name}) is empty")
    if len(value) > _MAX_LENGTH[ai]:
        raise GS1Error(
            f"AI {ai} ({name}) has {len(value)} characters; at most {_MAX_LENGTH[ai]} allowed"
        )
    for position, char in enumerate(value, start=1):
        if char not in CSET82:
            raise GS1Error(
                f"AI {ai} ({name}): character {char!r} at position {position}"
                " is not in GS1 character set 82"
            )
    return value


def check_expiry(yymmdd: str) -> str:
    """`yymmdd` if it is a valid AI 17 date; DD=00 means the end of the month.

    >>> check_expiry("261231")
    '261231'
    >>> check_expiry("270229")
    Traceback (most recent call last):
    ...
    firmware_tools.errors.GS1Error: AI 17 (expiry date) 270229: day 29 does not exist in month 02
    """
    if not isinstance(yymmdd, str) or len(yymmdd) != 6 or not yymmdd.isascii():
        raise GS1Error(f"AI 17 (expiry date) {yymmdd!r} must be 6 digits YYMMDD")
    if not yymmdd.isdigit():
        raise GS1Error(f"AI 17 (expiry date) {yymmdd!r} must be 6 digits YYMMDD")
    year, month, day = int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:])
    if not 1 <= month <= 12:
        raise GS1Error(f"AI 17 (expiry date) {yymmdd}: month {yymmdd[2:4]} is not 01..12")
    # The century comes from GS1's sliding window (GenSpecs §7.12); within 1951..2050 a year
    # is a leap year exactly when YY is divisible by 4, so no clock is needed here.
    last = _DAYS_IN_MONTH[month - 1]
    if month == 2 and year % 4 != 0:
        last = 28
    if day > last:
        raise GS1Error(
            f"AI 17 (expiry date) {yymmdd}: day {yymmdd[4:]} does not exist in month {yymmdd[2:4]}"
        )
    return yymmdd


@dataclass(frozen=True)
class DigitalLink:
    """A parsed GS1 Digital Link for a serialized GTIN; `params` are the non-AI parameters."""

    base: str
    gtin: str
    serial: str
    lot: str | None = None
    expiry: str | None = None
    variant: str | None = None
    params: tuple[tuple[str, str], ...] = ()

    def param(self, name: str) -> str | None:
        """The value of non-AI query parameter `name`, or None."""
        for key, value in self.params:
            if key == name:
                return value
        return None

    @property
    def url(self) -> str:
        """The canonical URL of this link."""
        return build_digital_link(
            self.base,
            self.gtin,
            self.serial,
            lot=self.lot,
            expiry=self.expiry,
            variant=self.variant,
            params=self.params,
        )


def _shown(text: str) -> str:
    """`text` for an error message, cut short: a 5,000-character host is not repeated."""
    return repr(text) if len(text) <= 60 else f"{text[:40]!r}... ({len(text)} characters)"


def check_host(host: str) -> str:
    """`https://host` for a bare host, or the given http(s) base, normalized.

    The host is checked (no user info, port 1-65535, IDNA, length limits) and lower-cased;
    a trailing slash is dropped.

    >>> check_host("id.example.com"), check_host("http://LocalHost:5000/r/")
    ('https://id.example.com', 'http://localhost:5000/r')
    >>> check_host("Bücher.example")
    'https://xn--bcher-kva.example'
    >>> check_host("user@id.example.com")
    Traceback (most recent call last):
    ...
    firmware_tools.errors.GS1Error: host 'user@id.example.com': user info (user@) is not allowed
    """
    if not isinstance(host, str) or not host:
        raise GS1Error("host is empty")
    scheme, sep, rest = host.partition("://")
    if not sep:
        scheme, rest = "https", host
    elif scheme.lower() not in ("http", "https"):
        raise GS1Error(f"host {_shown(host)} must be a host name or start with https:// or http://")
    return _check_base(scheme.lower(), rest.rstrip("/"))


def _check_base(scheme: str, rest: str) -> str:
    """`scheme://authority[/prefix]` with the authority checked and normalized."""
    authority, slash, prefix = rest.partition("/")
    base = f"{scheme}://{_check_authority(authority)}"
    if len(rest) > MAX_BASE_LENGTH:
        raise GS1Error(
            f"host {_shown(rest)} is too long: at most {MAX_BASE_LENGTH} characters with its path"
        )
    if not slash:
        return base
    for segment in prefix.split("/"):
        if not segment:
            raise GS1Error(f"host {_shown(rest)}: the path has an empty segment")
        _percent_decode(segment, f"host {_shown(rest)}: path", _RAW_PATH_CHARS, _RAW_PATH_RE)
    return f"{base}/{prefix}"


def _is_port(text: str) -> bool:
    """1-65535 in plain digits; the length is checked first so that a 5,000-digit port never
    reaches int() (which refuses more than 4,300 digits with a ValueError)."""
    return (
        0 < len(text) <= 5
        and text.isascii()
        and text.isdigit()
        and text[0] != "0"
        and int(text) <= 65535
    )


@lru_cache(maxsize=1024)
def _check_authority(authority: str) -> str:
    """`host[:port]` checked: no user info, port 1-65535, host as lower-case IDNA A-labels."""
    if not authority:
        raise GS1Error("host is empty: the URL has no domain")
    shown = _shown(authority)
    if "@" in authority:
        raise GS1Error(f"host {shown}: user info (user@) is not allowed")
    if authority.startswith("["):
        raise GS1Error(f"host {shown}: IP literals in brackets are not supported; use a name")
    name, colon, port = authority.partition(":")
    if colon and not _is_port(port):
        raise GS1Error(f"host {shown}: port {_shown(port)} is not a number from 1 to 65535")
    if len(name) > MAX_HOST_LENGTH:
        raise GS1Error(
            f"host {shown}: the host name has {len(name)} characters;"
            f" at most {MAX_HOST_LENGTH} are allowed"
        )
    for char in name:
        if char.isascii() and char not in _HOST_ASCII:
            raise GS1Error(f"host {shown}: character {char!r} is not allowed in a host name")
    if "" in name.split("."):
        raise GS1Error(f"host {shown}: the host name has an empty label (two dots, or an end dot)")
    try:
        # UTS 46 mapping (case folding included), then IDNA 2008 A-labels (RFC 5891).
        ascii_name = idna.encode(name, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise GS1Error(f"host {shown} is not a valid host name: {exc}") from None
    if len(ascii_name) > MAX_HOST_LENGTH:
        raise GS1Error(f"host {shown} has more than {MAX_HOST_LENGTH} characters as IDNA")
    return ascii_name + colon + port


def _check_param_name(name: str) -> str:
    if _PARAM_NAME_RE.fullmatch(name):
        return name
    if not name or name.isdigit():
        raise GS1Error(f"query parameter name {name!r} must not be empty or all digits (an AI)")
    for char in name:
        if not (char.isascii() and (char.isalnum() or char in "_-.")):
            raise GS1Error(f"query parameter name {name!r}: character {char!r} is not allowed")
    return name


def build_digital_link(
    host: str,
    gtin: str,
    serial: str,
    *,
    lot: str | None = None,
    expiry: str | None = None,
    variant: str | None = None,
    params: tuple[tuple[str, str], ...] | list[tuple[str, str]] = (),
) -> str:
    """The canonical GS1 Digital Link URL `https://<host>/01/<GTIN-14>[/22/..][/10/..]/21/<serial>`.

    >>> build_digital_link("id.example.com", "9521234543213", "A/1", lot="L1", expiry="261231")
    'https://id.example.com/01/09521234543213/10/L1/21/A%2F1?17=261231'
    """
    base = check_host(host)
    path = [base, "01", normalize_gtin(gtin)]
    for ai, value in (("22", variant), ("10", lot), ("21", serial)):
        if value is None and ai != "21":
            continue
        path += [ai, quote(check_ai_value(ai, value), safe="")]
    query = []
    if expiry is not None:
        query.append("17=" + check_expiry(expiry))
    seen = set()
    for name, value in params:
        _check_param_name(name)
        if name in seen:
            raise GS1Error(f"query parameter {name!r} given twice")
        seen.add(name)
        query.append(f"{name}={quote(value, safe='')}")
    url = "/".join(path)
    return url + "?" + "&".join(query) if query else url


def _percent_decode(raw: str, what: str, raw_chars: frozenset[str], fast: re.Pattern) -> str:
    """Strict percent-decoding to UTF-8 text: raw characters from `raw_chars`, every "%"
    starts a valid escape, and no escape spells an unreserved character (one text per value).
    """
    if "%" not in raw and fast.fullmatch(raw):
        return raw
    out = bytearray()
    i = 0
    while i < len(raw):
        char = raw[i]
        if char == "%":
            escape = raw[i + 1 : i + 3]
            if len(escape) != 2 or not set(escape) <= _HEX:
                raise GS1Error(f"{what}: bad percent escape {raw[i : i + 3]!r}")
            byte = int(escape, 16)
            if chr(byte) in _UNRESERVED:
                raise GS1Error(
                    f"{what}: escape {raw[i : i + 3]!r} spells {chr(byte)!r}, which is written"
                    " as itself (RFC 3986 §2.3)"
                )
            out.append(byte)
            i += 3
        else:
            if char not in raw_chars:
                raise GS1Error(f"{what}: character {char!r} at position {i + 1} must be encoded")
            out.append(ord(char))
            i += 1
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        raise GS1Error(f"{what}: percent escapes do not decode to UTF-8 text") from None


def _split_query(query: str) -> list[tuple[str, str]]:
    """(name, raw value) pairs of a query string; each name once, each with a value."""
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    for pair in query.split("&"):
        name, eq, raw = pair.partition("=")
        if not eq:
            raise GS1Error(f"query parameter {_shown(name)} has no value")
        if name in seen:
            raise GS1Error(f"query parameter {_shown(name)} appears twice")
        seen.add(name)
        pairs.append((name, raw))
    return pairs


def parse_digital_link(url: str) -> DigitalLink:
    """Parse a GS1 Digital Link URL for a serialized GTIN, strictly.

    >>> link = parse_digital_link("https://id.example.com/01/09521234543213/21/A%2F1?sig=xyz")
    >>> link.gtin, link.serial, link.param("sig")
    ('09521234543213', 'A/1', 'xyz')
    >>> parse_digital_link("https://id.example.com/01/09521234543213/21/S1/10/L1")
    Traceback (most recent call last):
    ...
    firmware_tools.errors.GS1Error: AI 10 (lot) must come before AI 21 (serial) in the path
    """
    if not isinstance(url, str):
        raise GS1Error("URL must be a string")
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        raise GS1Error(f"URL {url[:40]!r} must start with https:// (or http://)")
    if "#" in rest:
        raise GS1Error("URL has a fragment (#...); a Digital Link has none")
    rest, _, query = rest.partition("?")
    segments = rest.split("/")
    if not segments[0]:
        raise GS1Error("URL has no domain")
    # The primary key starts at the first "01" segment that leaves (AI, value) pairs after it.
    start = next(
        (
            i
            for i in range(1, len(segments))
            if segments[i] == "01" and (len(segments) - i) % 2 == 0
        ),
        None,
    )
    if start is None:
        raise GS1Error("URL path has no primary key /01/<GTIN>, or an AI without a value")
    base = _check_base(scheme.lower(), "/".join(segments[:start]))
    gtin_text = segments[start + 1]
    if len(gtin_text) != 14:
        # Digital Link 1.2 §4.4: GTIN-8/12/13 are written padded to 14 digits.
        raise GS1Error(f"AI 01 (GTIN) {gtin_text!r} must be 14 digits in a Digital Link")
    gtin = normalize_gtin(gtin_text)
    values: dict[str, str] = {}
    last_rank = -1
    last_ai = ""
    for i in range(start + 2, len(segments), 2):
        ai, raw = segments[i], segments[i + 1]
        rank = _QUALIFIER_RANK.get(ai)
        if rank is None:
            if not ai:
                raise GS1Error("URL path has an empty segment where an AI was expected")
            raise GS1Error(
                f"AI {ai!r} is not a key qualifier of GTIN (01); the path allows 22, 10, 21"
                " in that order"
            )
        if rank == last_rank:
            raise GS1Error(f"AI {ai} ({KEY_QUALIFIERS[ai]}) appears twice in the path")
        if rank < last_rank:
            raise GS1Error(
                f"AI {ai} ({KEY_QUALIFIERS[ai]}) must come before AI {last_ai}"
                f" ({KEY_QUALIFIERS[last_ai]}) in the path"
            )
        last_rank, last_ai = rank, ai
        what = f"AI {ai} ({KEY_QUALIFIERS[ai]})"
        values[ai] = check_ai_value(ai, _percent_decode(raw, what, _RAW_PATH_CHARS, _RAW_PATH_RE))
    if "21" not in values:
        raise GS1Error("URL path has no serial (AI 21)")
    expiry = None
    params: list[tuple[str, str]] = []
    if query:
        for name, raw in _split_query(query):
            # The same character rules for every query value, AI or not.
            value = raw
            if "%" in raw or not _RAW_QUERY_RE.fullmatch(raw):  # the message only when needed
                what = f"AI {name}" if name.isdigit() else f"query parameter {_shown(name)}"
                value = _percent_decode(raw, what, _RAW_QUERY_CHARS, _RAW_QUERY_RE)
            if name.isdigit():
                if name in KEY_QUALIFIERS:
                    raise GS1Error(
                        f"AI {name} ({KEY_QUALIFIERS[name]}) is a key qualifier;"
                        " it belongs in the path, not the query string"
                    )
                if name == "01":
                    raise GS1Error("AI 01 (GTIN) is the primary key; it belongs in the path")
                if name not in DATA_ATTRIBUTES:
                    raise GS1Error(f"AI {name} in the query string is not supported")
                expiry = check_expiry(value)
            else:
                _check_param_name(name)
                params.append((name, value))
    return DigitalLink(
        base=base,
        gtin=gtin,
        serial=values["21"],
        lot=values.get("10"),
        expiry=expiry,
        variant=values.get("22"),
        params=tuple(params),
    )
