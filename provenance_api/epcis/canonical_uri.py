"""Constrained canonical GS1 Digital Link URIs, the identifier form of the event hash.

Pure: no I/O.

CBV 2.0 §8.9 (event hash ID): EPC URIs (`urn:epc:id:`), EPC class URIs (`urn:epc:class:`)
and EPC pattern URIs (`urn:epc:idpat:`) become canonical GS1 Digital Link URIs (Digital
Link URI Syntax 1.2 §4.11); a Digital Link URI gets the domain `https://id.gs1.org`, loses
its query string, and keeps only the most fine-grained key and qualifier: 00, 01, 01+21,
01+10, 01+235, 253, 255, 401, 402, 414, 414+254, 417, 8003, 8004, 8006, 8006+21, 8006+10,
8010, 8010+8011, 8017, 8018. The EPC URI schemes are those of the EPC Tag Data Standard 2.0
§6.3. Anything else is not a GS1 identifier here and `canonical_uri` returns None.

Values are percent-decoded and written again one way (see `_encode`), so that an SGTIN as
an EPC URI and as a Digital Link, however either escapes its serial, hash the same; this
reproduces every spelling in the reference vectors.
"""

from __future__ import annotations

import string
from urllib.parse import quote, unquote, urlsplit

from firmware_tools.formats.gs1 import compute_check_digit

CANONICAL_DOMAIN = "https://id.gs1.org"

# Digital Link 1.2 §4.4 Table 4: the short names of keys and qualifiers.
_SHORT_NAMES = {
    "gtin": "01",
    "itip": "8006",
    "cpid": "8010",
    "gln": "414",
    "party": "417",
    "gsrnp": "8017",
    "gsrn": "8018",
    "gcn": "255",
    "sscc": "00",
    "gdti": "253",
    "ginc": "401",
    "gsin": "402",
    "grai": "8003",
    "giai": "8004",
    "cpv": "22",
    "lot": "10",
    "ser": "21",
}
# Each primary key with its qualifiers, finest first; the first one present is kept.
_QUALIFIERS = {
    "00": (),
    "01": ("21", "235", "10"),
    "253": (),
    "255": (),
    "401": (),
    "402": (),
    "414": ("254",),
    "417": (),
    "8003": (),
    "8004": (),
    "8006": ("21", "10"),
    "8010": ("8011",),
    "8017": (),
    "8018": (),
}
# Qualifiers that may appear in the path but are not kept (consumer product variant).
_DROPPED = {"01": ("22",), "8006": ("22",)}
_FIXED_DIGITS = {"00": 18, "402": 17, "414": 13, "417": 13, "8017": 18, "8018": 18}

# One spelling per value in a path segment, whichever form it came in: the characters of GS1
# set 82 that the reference vectors write raw; everything else is percent-encoded (this
# covers the EPC URI escapes of TDS 2.0 Table A-1 and Digital Link 1.2's reserved characters).
_RAW = frozenset(string.ascii_letters + string.digits + "'-.;=_")


def _encode(text: str) -> str:
    """An EPC URI component or a Digital Link path segment in its one canonical spelling."""
    return "".join(char if char in _RAW else quote(char, safe="") for char in unquote(text))


def _prefix_ok(company_prefix: str, ref: str, total: int) -> bool:
    """Whether a company prefix (6..12 digits) and a digit reference make `total` digits."""
    return (
        company_prefix.isdigit()
        and 6 <= len(company_prefix) <= 12
        and (ref == "" or ref.isdigit())
        and len(company_prefix) + len(ref) == total
    )


def _gtin(company_prefix: str, item_ref: str) -> str | None:
    """The GTIN-14 of an SGTIN-style company prefix and indicator + item reference."""
    if not _prefix_ok(company_prefix, item_ref, 13):
        return None
    body = item_ref[0] + company_prefix + item_ref[1:]
    return body + compute_check_digit(body)


def _from_epc(scheme: str, parts: list[str], pattern: bool) -> str | None:
    """The key path (without domain) of EPC URI body `parts` of `scheme`, or None."""
    if pattern:
        if parts[-1] != "*":
            return None
        parts = parts[:-1]
    cp = parts[0]
    if scheme in ("sgtin", "upui", "lgtin") and len(parts) in (2, 3):
        gtin = _gtin(cp, parts[1])
        if gtin is None:
            return None
        if len(parts) == 2:
            return f"/01/{gtin}"
        ai = {"sgtin": "21", "upui": "235", "lgtin": "10"}[scheme]
        return f"/01/{gtin}/{ai}/{_encode(parts[2])}"
    if scheme == "itip" and len(parts) in (4, 5):
        gtin = _gtin(cp, parts[1])
        if gtin is None or not all(len(p) == 2 and p.isdigit() for p in parts[2:4]):
            return None
        key = f"/8006/{gtin}{parts[2]}{parts[3]}"
        return key if len(parts) == 4 else f"{key}/21/{_encode(parts[4])}"
    if scheme == "sscc" and len(parts) == 2 and _prefix_ok(cp, parts[1], 17):
        body = parts[1][0] + cp + parts[1][1:]
        return f"/00/{body}{compute_check_digit(body)}"
    if scheme == "sgln" and len(parts) == 3 and _prefix_ok(cp, parts[1], 12):
        gln = cp + parts[1] + compute_check_digit(cp + parts[1])
        return f"/414/{gln}" if parts[2] == "0" else f"/414/{gln}/254/{_encode(parts[2])}"
    if scheme == "pgln" and len(parts) == 2 and _prefix_ok(cp, parts[1], 12):
        return f"/417/{cp}{parts[1]}{compute_check_digit(cp + parts[1])}"
    if scheme in ("grai", "gdti", "sgcn") and len(parts) in (2, 3) and _prefix_ok(cp, parts[1], 12):
        body = ("0" if scheme == "grai" else "") + cp + parts[1]
        ai = {"grai": "8003", "gdti": "253", "sgcn": "255"}[scheme]
        serial = _encode(parts[2]) if len(parts) == 3 else ""
        return f"/{ai}/{body}{compute_check_digit(body)}{serial}"
    if scheme in ("gsrn", "gsrnp") and len(parts) == 2 and _prefix_ok(cp, parts[1], 17):
        ai = "8018" if scheme == "gsrn" else "8017"
        return f"/{ai}/{cp}{parts[1]}{compute_check_digit(cp + parts[1])}"
    if scheme == "gsin" and len(parts) == 2 and _prefix_ok(cp, parts[1], 16):
        return f"/402/{cp}{parts[1]}{compute_check_digit(cp + parts[1])}"
    if scheme in ("giai", "ginc") and len(parts) == 2 and _prefix_ok(cp, "", len(cp)):
        ai = "8004" if scheme == "giai" else "401"
        return f"/{ai}/{cp}{_encode(parts[1])}" if parts[1] else None
    if scheme == "cpi" and len(parts) in (2, 3) and _prefix_ok(cp, "", len(cp)):
        key = f"/8010/{_encode(cp + parts[1])}"
        return key if len(parts) == 2 else f"{key}/8011/{parts[2]}"
    return None


# How many dots separate the fields of each scheme's body (the last field may hold dots).
_EPC_FIELDS = {
    "sgtin": 3,
    "upui": 3,
    "lgtin": 3,
    "itip": 5,
    "sscc": 2,
    "sgln": 3,
    "pgln": 2,
    "grai": 3,
    "gdti": 3,
    "sgcn": 3,
    "gsrn": 2,
    "gsrnp": 2,
    "gsin": 2,
    "giai": 2,
    "ginc": 2,
    "cpi": 3,
}
_PATTERN_SCHEMES = {"sgtin", "upui", "itip", "grai", "gdti", "sgcn", "cpi"}


def epc_to_digital_link(uri: str) -> str | None:
    """The canonical Digital Link of an EPC URI, EPC class URI or EPC pattern URI, or None.

    >>> epc_to_digital_link("urn:epc:id:sgtin:4012345.011111.9876")
    'https://id.gs1.org/01/04012345111118/21/9876'
    >>> epc_to_digital_link("urn:epc:idpat:sgtin:4012345.044444.*")
    'https://id.gs1.org/01/04012345444445'
    """
    for kind, pattern in (
        ("urn:epc:id:", False),
        ("urn:epc:class:", False),
        ("urn:epc:idpat:", True),
    ):
        if not uri.startswith(kind):
            continue
        scheme, _, body = uri[len(kind) :].partition(":")
        if kind == "urn:epc:class:" and scheme != "lgtin":
            return None
        if kind != "urn:epc:class:" and scheme == "lgtin":
            return None
        if pattern and scheme not in _PATTERN_SCHEMES:
            return None
        fields = _EPC_FIELDS.get(scheme)
        if fields is None:
            return None
        parts = body.split(".", fields - 1)
        if len(parts) != fields:
            return None
        path = _from_epc(scheme, parts, pattern)
        return CANONICAL_DOMAIN + path if path else None
    return None


def _primary_ok(ai: str, value: str) -> bool:
    """Whether `value` has the shape of primary key `ai`."""
    if ai == "01":
        return value.isdigit() and len(value) in (8, 12, 13, 14)
    if ai in _FIXED_DIGITS:
        return value.isdigit() and len(value) == _FIXED_DIGITS[ai]
    return len(value) >= 4 and value[:4].isdigit()


def normalise_digital_link(uri: str) -> str | None:
    """The constrained canonical form of a GS1 Digital Link URI, or None if it is not one.

    >>> normalise_digital_link("https://example.com/gtin/9780345418913/10/L1/21/765tz?abc=1")
    'https://id.gs1.org/01/09780345418913/21/765tz'
    """
    if not uri.startswith(("https://", "http://")):
        return None
    path = urlsplit(uri).path
    segments = path.split("/")[1:]
    if segments and segments[-1] == "":
        segments.pop()
    segments = [_SHORT_NAMES.get(s, s) for s in segments]
    for start, segment in enumerate(segments):
        if segment not in _QUALIFIERS or start + 1 >= len(segments):
            continue
        rest = segments[start + 2 :]
        if len(rest) % 2:
            continue
        primary, value = segment, segments[start + 1]
        if not _primary_ok(primary, value):
            continue
        pairs = dict(zip(rest[::2], rest[1::2], strict=True))
        allowed = _QUALIFIERS[primary] + _DROPPED.get(primary, ())
        if any(ai not in allowed for ai in pairs):
            continue
        if primary == "01":
            value = value.rjust(14, "0")
        key = f"{CANONICAL_DOMAIN}/{primary}/{_encode(value)}"
        for ai in _QUALIFIERS[primary]:
            if ai in pairs:
                return f"{key}/{ai}/{_encode(pairs[ai])}"
        return key
    return None


def canonical_uri(value: str) -> str | None:
    """The constrained canonical Digital Link of any GS1 identifier URI, or None."""
    if value.startswith("urn:epc:"):
        return epc_to_digital_link(value)
    return normalise_digital_link(value)
