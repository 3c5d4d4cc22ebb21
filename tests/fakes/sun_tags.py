"""Simulated NTAG 424 DNA tags keyed from a supplier master key, and a phone's tap.

The tags are set up the way personalization leaves them (keys from `tag_keys`, the SDM
settings of `sdm_file_settings`), with SDMMACInputOffset either at the "/" that starts the
GS1 path (the MAC covers the item) or equal to SDMMACOffset (the older empty MAC input).
"""

from __future__ import annotations

import dataclasses

from firmware_tools.chips.ntag424.diversify import sun_meta_read_key
from firmware_tools.chips.ntag424.personalize import sdm_file_settings, sun_layout, tag_keys
from tests.fakes.ntag424 import SimulatedNtag424

TEMPLATE = "https://{host}/01/{gtin}/21/{serial}?picc_data={picc_data}&cmac={cmac}"


def sun_tag(
    master: bytes,
    uid: bytes,
    *,
    host: str = "id.example.com",
    gtin: str = "04006381333931",
    serial: str = "SN1",
    mac_over_path: bool = True,
) -> SimulatedNtag424:
    """A personalized tag whose SUN MAC covers the GS1 path (or, if not, an empty input)."""
    layout = sun_layout(TEMPLATE, {"host": host, "gtin": gtin, "serial": serial})
    if not mac_over_path:
        # The older layout: SDMMACInputOffset = SDMMACOffset, an empty MAC input.
        layout = dataclasses.replace(layout, mac_input_offset=layout.mac_offset)
    keys = tag_keys(master, sun_meta_read_key(master), uid)
    return SimulatedNtag424.with_sun(uid, list(keys), layout.ndef_file, sdm_file_settings(layout))


def tap(tag: SimulatedNtag424) -> str:
    """What a phone does: a new activation, select the NDEF application and file, read it."""

    def ok(apdu: str) -> bytes:
        response = tag.exchange(bytes.fromhex(apdu))
        assert response[-2:] == b"\x90\x00", response.hex()
        return response[:-2]

    tag.activate()
    ok("00A4040007D276000085010100")
    ok("00A4000C02E103")  # the capability container, as NFC Forum Type 4 readers do
    ok("00B000000F")
    ok("00A4000C02E104")
    length = int.from_bytes(ok("00B0000002"), "big")
    message = ok(f"00B00002{length:02X}")
    # One short URI record with the "https://" prefix code (NFC Forum RTD URI 0x04).
    assert message[:4] == bytes([0xD1, 0x01, length - 4, 0x55]) and message[4] == 0x04
    return "https://" + message[5:].decode("ascii")


def sun_url(
    master: bytes,
    uid: bytes,
    counter: int,
    *,
    gtin: str = "04006381333931",
    serial: str = "SN1",
    host: str = "id.example.com",
) -> str:
    """The URL a tag keyed from `master` yields at read counter `counter`, MAC over the path.

    The same bytes as `tap` on a tag from `sun_tag`, without running the chip: fast enough
    for batches of thousands of distinct tags.
    """
    import os

    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    from firmware_tools.chips.ntag424.diversify import sun_file_read_key
    from firmware_tools.chips.ntag424.sun import sdm_mac

    encrypt = Cipher(algorithms.AES(sun_meta_read_key(master)), modes.ECB()).encryptor()
    # AN12196 §3.4.2.2: PICCDataTag C7h (UID and counter mirrored), UID, counter LSB first.
    plain = b"\xc7" + uid + counter.to_bytes(3, "little") + os.urandom(5)
    picc = encrypt.update(plain).hex().upper()
    path = f"/01/{gtin}/21/{serial}?picc_data={picc}&cmac="
    mac = sdm_mac(sun_file_read_key(master, uid), uid, counter, path.encode())
    return f"https://{host}{path}{mac.hex().upper()}"
