"""Tag verifications per second on one core: QR labels, NTAG 21x, NTAG 424 SUN.

Run: python bench/tags.py. Each figure is measured over at least one second of work and
printed as a `name: value` line; a part whose module does not exist yet prints `n/a`.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MIN_SECONDS = 1.0
HOST = "id.example.com"
GTIN = "09521234543213"


def rate(work: Callable[[], int]) -> float:
    """Calls of `work` until at least MIN_SECONDS passed; each call returns how many it did."""
    work()  # warm caches and imports outside the timed part
    done = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < MIN_SECONDS:
        done += work()
    return done / elapsed


def qr_rate() -> float:
    from contracts_abi.eip712 import address_of_private_key
    from firmware_tools.formats.qr import new_serial, sign_label_url, verify_label_url

    key = os.urandom(32)
    supplier = address_of_private_key(key)
    urls = [sign_label_url(key, HOST, GTIN, new_serial()) for _ in range(500)]

    def work() -> int:
        for url in urls:
            if not verify_label_url(url, supplier).ok:
                raise AssertionError(f"a valid label did not verify: {url}")
        return len(urls)

    return rate(work)


def ntag21x_rate() -> float | None:
    """Supplier signature bound to the UID + NXP originality signature, per read tag."""
    try:
        from firmware_tools.chips.ntag21x import sign_ntag21x_url, verify_ntag21x
    except ImportError:
        return None
    from contracts_abi.eip712 import address_of_private_key
    from firmware_tools.formats.qr import new_serial

    # A real NTAG 21x UID and its NXP originality signature (the originality.py doctest).
    uid = bytes.fromhex("04E10CDA993C80")
    originality = bytes.fromhex("8B76052EE42F5567BEB53238B3E3F9950707C0DCC956B5C5EFCFDB709B2D82B3")
    key = os.urandom(32)
    supplier = address_of_private_key(key)
    urls = [sign_ntag21x_url(key, HOST, GTIN, new_serial(), uid) for _ in range(200)]

    def work() -> int:
        for url in urls:
            if not verify_ntag21x(uid, url, originality, supplier).ok:
                raise AssertionError(f"a valid NTAG 21x read did not verify: {url}")
        return len(urls)

    return rate(work)


def _sun_urls(count: int) -> tuple[list[str], bytes, bytes]:
    """SUN URLs of `count` tags (distinct UIDs and counters) keyed from a master key."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    from firmware_tools.chips.ntag424.diversify import sun_file_read_key, sun_meta_read_key
    from firmware_tools.chips.ntag424.sun import sdm_mac

    master = os.urandom(16)
    meta = sun_meta_read_key(master)
    urls = []
    for i in range(count):
        uid = b"\x04" + os.urandom(6)
        counter = i + 1
        plain = b"\xc7" + uid + counter.to_bytes(3, "little") + os.urandom(5)
        encryptor = Cipher(algorithms.AES(meta), modes.CBC(bytes(16))).encryptor()
        picc = (encryptor.update(plain) + encryptor.finalize()).hex().upper()
        mac = sdm_mac(sun_file_read_key(master, uid), uid, counter, b"").hex().upper()
        urls.append(f"https://{HOST}/01/{GTIN}/21/S{i}?picc_data={picc}&cmac={mac}")
    return urls, master, meta


def sun_rate(diversified: bool = False) -> float | None:
    """NTAG 424 SUN URLs; with `diversified`, the file key is derived per tag (AN10922)."""
    try:
        from firmware_tools.chips.ntag424.sun import verify_sun_url
    except ImportError:
        return None
    from firmware_tools.chips.ntag424.diversify import sun_file_read_key

    if diversified:
        urls, master, meta = _sun_urls(200)

        def file_key(uid: bytes) -> bytes:
            return sun_file_read_key(master, uid)
    else:
        # NXP AN12196 §3.4.2 example message (zero keys): one static file key.
        urls = [
            f"https://{HOST}/01/{GTIN}/21/S1"
            "?picc_data=EF963FF7828658A599F3041510671E88&cmac=94EED9EE65337086"
        ] * 200
        meta = file_key = bytes(16)
    metas = [meta]

    def work() -> int:
        for url in urls:
            verify_sun_url(url, metas, file_key)
        return len(urls)

    return rate(work)


def main() -> None:
    for name, measure in (
        ("qr_verifications_per_s", qr_rate),
        ("ntag21x_verifications_per_s", ntag21x_rate),
        ("sun_verifications_per_s", sun_rate),
        ("sun_diversified_verifications_per_s", lambda: sun_rate(diversified=True)),
    ):
        value = measure()
        print(f"{name}: {'n/a' if value is None else round(value)}", flush=True)


if __name__ == "__main__":
    main()
