"""Tag verifications per second on one core, each of 10,000 distinct tags checked once.

Run: python bench/tags.py [--count N]. Every tag has its own UID or serial (no cache can
hit twice), SUN tags their own AN10922-diversified file key derived at verification, and
each check goes through `firmware_tools.verify.check_tag`, the one entry point the CLI,
API and agent call. Building the tags is not timed. Prints `name: value` lines.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HOST = "id.example.com"
GTIN = "09521234543213"
COUNT = 10_000


def pin_to_one_core() -> None:
    """Run on one CPU, as the targets are per core."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def per_second(items: Sequence, check: Callable[[object], None]) -> float:
    """Each item checked once; the rate over the whole pass, in this process's CPU time.

    CPU time, not wall time: on a shared machine other processes take turns on the same
    core, and the figure is what one core does when it is ours.
    """
    start = time.process_time()
    for item in items:
        check(item)
    return len(items) / (time.process_time() - start)


def distinct_uids(count: int) -> list[bytes]:
    """`count` distinct 7-byte NXP-style UIDs (manufacturer code 04h)."""
    uids: set[bytes] = set()
    while len(uids) < count:
        uids.add(b"\x04" + os.urandom(6))
    return list(uids)


def sun_rate(count: int) -> float:
    """NTAG 424 SUN taps of distinct tags, MAC over the GS1 path, replay store included."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    from firmware_tools.chips.ntag424.diversify import sun_file_read_key, sun_meta_read_key
    from firmware_tools.chips.ntag424.sun import sdm_mac
    from firmware_tools.verify import (
        AUTHENTIC,
        InMemoryCounterStore,
        KeyEpoch,
        ScannedUrl,
        Trust,
        check_tag,
    )

    master = os.urandom(16)
    encrypt = Cipher(algorithms.AES(sun_meta_read_key(master)), modes.ECB()).encryptor()
    urls = []
    for i, uid in enumerate(distinct_uids(count)):
        counter = 1 + i % 1000
        plain = b"\xc7" + uid + counter.to_bytes(3, "little") + os.urandom(5)
        picc = encrypt.update(plain).hex().upper()
        path = f"/01/{GTIN}/21/S{i}?picc_data={picc}&cmac="
        mac = sdm_mac(sun_file_read_key(master, uid), uid, counter, path.encode())
        urls.append(ScannedUrl(f"https://{HOST}{path}{mac.hex().upper()}"))
    trust = Trust(key_epochs=(KeyEpoch.from_master(master),))
    store = InMemoryCounterStore()

    def check(url) -> None:
        if check_tag(url, trust, store).verdict != AUTHENTIC:
            raise AssertionError(f"a genuine tap did not verify: {url}")

    return per_second(urls, check)


def qr_rate(count: int) -> float:
    from contracts_abi.eip712 import address_of_private_key
    from firmware_tools.formats.qr import new_serial, sign_label_url
    from firmware_tools.verify import AUTHENTIC, ScannedUrl, Trust, check_tag

    key = os.urandom(32)
    trust = Trust(supplier=address_of_private_key(key))
    serials = {new_serial() for _ in range(count)}
    urls = [ScannedUrl(sign_label_url(key, HOST, GTIN, serial)) for serial in serials]

    def check(url) -> None:
        if check_tag(url, trust).verdict != AUTHENTIC:
            raise AssertionError(f"a valid label did not verify: {url}")

    return per_second(urls, check)


def ntag21x_rate(count: int) -> float:
    """Read NTAG 21x chips: supplier signature bound to the UID + originality signature."""
    from contracts_abi.eip712 import address_of_private_key
    from firmware_tools.chips import ecc
    from firmware_tools.chips.ntag21x import sign_ntag21x_url
    from firmware_tools.verify import AUTHENTIC, NTAG21X, ChipRead, Trust, check_tag

    # NXP's key is NXP's secret: the chips here are signed by the test key of the vectors.
    vectors = json.loads((ROOT / "tests/vectors/ntag21x_originality.json").read_text())
    private = int(vectors["test_key"]["private_key"], 16)
    key = os.urandom(32)
    trust = Trust(
        supplier=address_of_private_key(key),
        ntag21x_public_key=bytes.fromhex(vectors["test_key"]["public_key"]),
    )
    reads = [
        ChipRead(
            NTAG21X,
            uid,
            sign_ntag21x_url(key, HOST, GTIN, f"T{i}", uid),
            ecc.sign(ecc.SECP128R1, private, uid),
        )
        for i, uid in enumerate(distinct_uids(count))
    ]

    def check(read) -> None:
        if check_tag(read, trust).verdict != AUTHENTIC:
            raise AssertionError(f"a genuine NTAG 21x did not verify: {read}")

    return per_second(reads, check)


def ntag424_originality_rates(count: int) -> tuple[float, float]:
    """(OpenSSL through `cryptography`, the hand-written curve code) over distinct UIDs."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, utils

    from firmware_tools.chips import ecc
    from firmware_tools.chips.originality import verify_originality_424

    private = ec.generate_private_key(ec.SECP224R1())
    public = private.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    prehashed = ec.ECDSA(utils.Prehashed(hashes.SHA224()))
    samples = []
    for uid in distinct_uids(count):
        r, s = utils.decode_dss_signature(private.sign(bytes(21) + uid, prehashed))
        samples.append((uid, r.to_bytes(28, "big") + s.to_bytes(28, "big")))

    def fast(sample) -> None:
        if not verify_originality_424(sample[0], sample[1], public):
            raise AssertionError("a valid originality signature did not verify")

    def hand_written(sample) -> None:
        if not ecc.verify(ecc.SECP224R1, public, sample[0], sample[1]):
            raise AssertionError("a valid originality signature did not verify")

    return per_second(samples, fast), per_second(samples, hand_written)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=COUNT, help="distinct tags per figure")
    count = parser.parse_args(argv).count
    pin_to_one_core()
    print(f"tags_per_figure: {count}", flush=True)
    print(f"sun_verifications_per_s: {round(sun_rate(count))}", flush=True)
    print(f"qr_verifications_per_s: {round(qr_rate(count))}", flush=True)
    openssl, hand_written = ntag424_originality_rates(count)
    print(f"ntag424_originality_per_s: {round(openssl)}", flush=True)
    print(f"ntag424_originality_hand_written_per_s: {round(hand_written)}", flush=True)
    print(f"ntag21x_verifications_per_s: {round(ntag21x_rate(count))}", flush=True)


if __name__ == "__main__":
    main()
