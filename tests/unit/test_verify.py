"""The one tag check: each verdict, each attack as an attacker would try it."""

from __future__ import annotations

import hashlib
import random
import threading

import pytest

from contracts_abi.eip712 import address_of_private_key, sign_label
from firmware_tools.chips.ntag21x import sign_ntag21x_url
from firmware_tools.chips.ntag424.diversify import sun_file_read_key, sun_meta_read_key
from firmware_tools.formats.qr import encode_signature, sign_label_url
from firmware_tools.verify import (
    AUTHENTIC,
    COUNTERFEIT,
    NTAG21X,
    NTAG424,
    SIGNATURE_VALID,
    SUSPICIOUS,
    ChipRead,
    InMemoryCounterStore,
    KeyEpoch,
    ScannedUrl,
    Trust,
    check_tag,
)
from tests.fakes.ntag424 import fake_public_key
from tests.fakes.sun_tags import sun_tag, tap

MASTER = hashlib.sha256(b"verify test master").digest()[:16]
LABEL_KEY = hashlib.sha256(b"verify test supplier").digest()
SUPPLIER = address_of_private_key(LABEL_KEY)
OTHER = address_of_private_key(hashlib.sha256(b"verify other supplier").digest())
UID = bytes.fromhex("04A1B2C3D4E5F6")
OTHER_UID = bytes.fromhex("04A1B2C3D4E5F7")
GTIN = "04006381333931"
HOST = "id.example.com"
SUN_TRUST = Trust(supplier=SUPPLIER, key_epochs=(KeyEpoch.from_master(MASTER),))
# A real NTAG 21x UID and NXP's originality signature over it (tests/vectors).
NTAG21X_UID = bytes.fromhex("04E10CDA993C80")
NTAG21X_SIG = bytes.fromhex("8B76052EE42F5567BEB53238B3E3F9950707C0DCC956B5C5EFCFDB709B2D82B3")


def scan(url: str, trust: Trust = SUN_TRUST, counters=None):
    return check_tag(ScannedUrl(url), trust, counters)


def splice(url: str, host: str, gtin: str, serial: str) -> str:
    """A genuine tap's picc_data and cmac pasted under another host, GTIN and serial."""
    return f"https://{host}/01/{gtin}/21/{serial}?{url.partition('?')[2]}"


# --- NTAG 424 DNA SUN --------------------------------------------------------------------


def test_a_genuine_tap_is_authentic_with_its_item_uid_and_counter() -> None:
    check = scan(tap(sun_tag(MASTER, UID, serial="SN-7")), counters=InMemoryCounterStore())
    assert check.verdict == AUTHENTIC and check.reasons == ()
    assert (check.item.gtin, check.item.serial) == (GTIN, "SN-7")
    assert (check.uid, check.counter, check.key_epoch) == (UID, 1, 0)
    report = check.as_dict()
    assert (report["gtin"], report["serial"], report["uid"]) == (GTIN, "SN-7", UID.hex().upper())


def test_the_issue_attack_a_tap_spliced_under_another_item_is_counterfeit() -> None:
    genuine = tap(sun_tag(MASTER, UID, serial="CHEAP-1"))
    spliced = splice(genuine, "evil.example", GTIN, "LUXURY-999")
    check = scan(spliced)
    assert check.verdict == COUNTERFEIT and check.codes == ("bad_cmac",)
    assert check.item is None and check.as_dict()["serial"] is None
    assert check.unverified_item.serial == "LUXURY-999"
    # The same under another GTIN, and with the genuine GTIN but another serial.
    assert scan(splice(genuine, HOST, "09506000134352", "CHEAP-1")).verdict == COUNTERFEIT
    assert scan(splice(genuine, HOST, GTIN, "CHEAP-2")).verdict == COUNTERFEIT


def test_the_mac_starts_at_the_gs1_path_after_a_resolver_prefix() -> None:
    url = tap(sun_tag(MASTER, UID, host="id.example.com/gs1/dl", serial="SN-P"))
    check = scan(url)
    assert check.verdict == AUTHENTIC and check.item.serial == "SN-P"
    # Host and prefix are outside the MAC input: another resolver still names this
    # item, never another one.
    moved = url.replace("id.example.com/gs1/dl", "other.example")
    assert scan(moved).item == check.item
    # A second "/01/" in the prefix moves where the parser reads the item: no match.
    shifted = url.replace("/gs1/dl/", "/01/09506000134352/21/X/gs1/dl/")
    assert scan(shifted).verdict == COUNTERFEIT


def test_a_tap_whose_mac_covers_nothing_never_reports_an_authentic_item() -> None:
    # A tag personalized with SDMMACInputOffset = SDMMACOffset (the MAC input is empty):
    # its tap pasted under another item authenticates the chip, never the item.
    genuine = tap(sun_tag(MASTER, UID, serial="CHEAP-1", mac_over_path=False))
    check = scan(splice(genuine, "evil.example", GTIN, "LUXURY-999"))
    assert check.verdict == SUSPICIOUS and check.codes == ("item_not_authenticated",)
    assert check.item is None and check.unverified_item.serial == "LUXURY-999"
    assert check.uid == UID  # the chip itself is genuine
    assert scan(genuine).verdict == SUSPICIOUS  # even where it was written


def test_the_suppliers_uid_binding_authenticates_the_item_of_an_old_tap() -> None:
    genuine = tap(sun_tag(MASTER, UID, serial="OLD-1", mac_over_path=False))
    binding = encode_signature(sign_label(LABEL_KEY, GTIN, "OLD-1", uid=UID))
    bound = Trust(SUPPLIER, SUN_TRUST.key_epochs, uid_binding=binding)
    check = scan(genuine, bound)
    assert check.verdict == AUTHENTIC and check.item.serial == "OLD-1"
    # The binding names UID and item: under another item, or from another chip, it fails.
    check = scan(splice(genuine, HOST, GTIN, "LUXURY-999"), bound)
    assert check.verdict == COUNTERFEIT and check.codes == ("bad_uid_binding",)
    other_chip = tap(sun_tag(MASTER, OTHER_UID, serial="OLD-1", mac_over_path=False))
    assert scan(other_chip, bound).codes == ("bad_uid_binding",)
    # A binding that is not a signature at all is a failed binding, never an exception.
    for garbage in ("", "not base64!", binding[:-1], binding + "A"):
        damaged = Trust(SUPPLIER, SUN_TRUST.key_epochs, uid_binding=garbage)
        assert scan(genuine, damaged).codes == ("bad_uid_binding",)


def test_a_replayed_tap_is_suspicious_and_the_store_is_per_uid_and_epoch() -> None:
    chip = sun_tag(MASTER, UID)
    first, second = tap(chip), tap(chip)
    store = InMemoryCounterStore()
    assert scan(second, counters=store).verdict == AUTHENTIC
    replay = scan(first, counters=store)
    assert replay.verdict == SUSPICIOUS and replay.codes == ("replayed_counter",)
    assert replay.item is not None  # a replay is still this item's tag
    assert scan(second, counters=store).codes == ("replayed_counter",)
    assert store.last(UID, 0) == 2 and store.last(UID, 1) is None
    # Another chip's counters are its own.
    assert scan(tap(sun_tag(MASTER, OTHER_UID)), counters=store).verdict == AUTHENTIC


def test_a_forged_tap_does_not_advance_the_counter() -> None:
    store = InMemoryCounterStore()
    genuine = tap(sun_tag(MASTER, UID))
    forged = genuine[:-1] + ("0" if genuine[-1] != "0" else "1")
    assert scan(forged, counters=store).verdict == COUNTERFEIT
    assert store.last(UID, 0) is None
    assert scan(genuine, counters=store).verdict == AUTHENTIC


def test_the_in_memory_store_advances_atomically() -> None:
    store = InMemoryCounterStore()
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def advance() -> None:
        barrier.wait()
        results.append(store.advance(UID, 0, 5))

    threads = [threading.Thread(target=advance) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]
    assert not store.advance(UID, 0, 4) and store.advance(UID, 0, 6)
    assert InMemoryCounterStore(last_counter=9).advance(UID, 0, 9) is False


@pytest.mark.parametrize(
    ("damage", "code"),
    [
        (lambda url: url.replace("picc_data=", "picc_data=zz"), "bad_hex"),
        (lambda url: url.replace("picc_data=", "picc_data=0"), "bad_length"),
        (lambda url: url[:-1], "bad_length"),
        (lambda url: url.replace("&cmac=", "&cmax="), "missing_parameter"),
        (lambda url: url + "&cmac=0000000000000000", "duplicate_parameter"),
        (lambda url: url.replace("?picc_data=", "?picc_data&x="), "missing_parameter"),
    ],
)
def test_damaged_sun_parameters_are_a_counterfeit_tap(damage, code: str) -> None:
    check = scan(damage(tap(sun_tag(MASTER, UID))))
    assert check.verdict == COUNTERFEIT and check.codes == (code,)
    assert check.reasons[0].message.startswith("damaged SUN parameters: ")


def test_the_epoch_that_refuses_a_uid_fails_with_a_cause() -> None:
    url = tap(sun_tag(MASTER, UID))

    def issued_only(uid: bytes) -> bytes:
        if uid != OTHER_UID:
            raise LookupError(f"UID {uid.hex().upper()} was never issued")
        return sun_file_read_key(MASTER, uid)

    refusing = KeyEpoch(sun_meta_read_key(MASTER), issued_only, 2)
    check = scan(url, Trust(key_epochs=(refusing,)))
    assert check.verdict == COUNTERFEIT and check.codes == ("file_key_refused",)
    assert "epoch 2" in check.reasons[0].message and "never issued" in check.reasons[0].message
    # The next epoch still gets its turn.
    both = Trust(key_epochs=(refusing, KeyEpoch.from_master(MASTER, 3)))
    check = scan(url, both)
    assert check.verdict == AUTHENTIC and check.key_epoch == 3


def test_the_an12196_example_authenticates_its_chip_but_names_no_item() -> None:
    url = (
        "https://choose.url.com/ntag424"
        "?picc_data=EF963FF7828658A599F3041510671E88&cmac=94EED9EE65337086"
    )
    check = scan(url, Trust(key_epochs=(KeyEpoch(bytes(16), lambda uid: bytes(16)),)))
    assert (check.uid.hex().upper(), check.counter) == ("04DE5F1EACC040", 61)
    assert check.verdict == SUSPICIOUS and check.codes == ("item_not_authenticated",)


def test_a_sun_url_without_key_epochs_is_the_callers_error() -> None:
    with pytest.raises(ValueError, match="key epochs"):
        scan(tap(sun_tag(MASTER, UID)), Trust(supplier=SUPPLIER))


# --- Labels --------------------------------------------------------------------------------


def test_a_signed_label_is_authentic_and_an_altered_one_names_no_item() -> None:
    url = sign_label_url(LABEL_KEY, HOST, GTIN, "SN-9")
    check = scan(url, Trust(supplier=SUPPLIER))
    assert check.verdict == AUTHENTIC and check.item.serial == "SN-9"
    assert check.signer == SUPPLIER
    check = scan(url.replace("SN-9", "SN-8"), Trust(supplier=SUPPLIER))
    assert check.verdict == COUNTERFEIT and check.codes == ("bad_signature",)
    assert check.item is None and check.unverified_item.serial == "SN-8"
    assert scan(url, Trust(supplier=OTHER)).verdict == COUNTERFEIT
    assert scan("not a url", Trust(supplier=SUPPLIER)).codes == ("malformed_url",)
    with pytest.raises(ValueError, match="supplier"):
        scan(url, Trust())


def test_an_ntag21x_url_without_its_chip_is_signature_valid_not_authentic() -> None:
    url = sign_ntag21x_url(LABEL_KEY, HOST, GTIN, "SN-21", UID)
    check = scan(url, Trust(supplier=SUPPLIER))
    assert check.verdict == SIGNATURE_VALID and check.codes == ("chip_not_checked",)
    assert "can be copied" in check.reasons[0].message
    assert check.item.serial == "SN-21" and check.uid == UID
    assert scan(url, Trust(supplier=OTHER)).codes == ("bad_signature",)
    moved = url.replace(UID.hex().upper(), OTHER_UID.hex().upper())
    assert scan(moved, Trust(supplier=SUPPLIER)).verdict == COUNTERFEIT
    bad_uid = url.replace(UID.hex().upper(), "ZZ" + UID.hex().upper()[2:])
    assert scan(bad_uid, Trust(supplier=SUPPLIER)).codes == ("malformed_url",)


# --- Chips in the field ------------------------------------------------------------------


def test_an_ntag21x_in_the_field_is_authentic_only_with_all_three_checks() -> None:
    url = sign_ntag21x_url(LABEL_KEY, HOST, GTIN, "SN-21", NTAG21X_UID)
    read = ChipRead(NTAG21X, NTAG21X_UID, url, NTAG21X_SIG, "NTAG213")
    check = check_tag(read, Trust(supplier=SUPPLIER))
    assert check.verdict == AUTHENTIC and check.item.serial == "SN-21"
    assert check.as_dict()["chip"] == "NTAG213"
    clone = ChipRead(NTAG21X, NTAG21X_UID, url, bytes(32))
    check = check_tag(clone, Trust(supplier=SUPPLIER))
    assert check.verdict == COUNTERFEIT and check.codes == ("bad_originality_signature",)
    assert check.item is None
    # Without a supplier only the chip is checked.
    assert check_tag(read, Trust()).verdict is None
    assert check_tag(clone, Trust()).verdict == COUNTERFEIT


def ntag424_read(chip, uid: bytes | None = None) -> ChipRead:
    return ChipRead(NTAG424, uid or chip.uid, tap(chip), chip.signature)


def test_an_ntag424_in_the_field_checks_sun_uid_and_originality() -> None:
    test_key = Trust(SUPPLIER, SUN_TRUST.key_epochs, ntag424_public_key=fake_public_key())
    chip = sun_tag(MASTER, UID)
    check = check_tag(ntag424_read(chip), test_key)
    assert check.verdict == AUTHENTIC and check.item.gtin == GTIN
    assert check.findings[0].startswith("genuine NXP chip UID")
    # A SUN message relayed from another chip: its MAC is good, its UID is not this one.
    check = check_tag(ntag424_read(chip, uid=OTHER_UID), test_key)
    assert "uid_mismatch" in check.codes and check.verdict == COUNTERFEIT
    assert check.item is None
    # The simulated chip is signed by a test key, not NXP's.
    check = check_tag(ntag424_read(chip), SUN_TRUST)
    assert check.verdict == COUNTERFEIT and check.codes == ("bad_originality_signature",)
    only_read = check_tag(ntag424_read(chip), Trust(ntag424_public_key=fake_public_key()))
    assert only_read.verdict is None and only_read.uid == UID
    broken = bytearray(fake_public_key())
    broken[-1] ^= 1
    with pytest.raises(ValueError):
        check_tag(ntag424_read(chip), Trust(ntag424_public_key=bytes(broken)))


def test_no_mutation_of_a_tap_raises_or_authenticates_another_item() -> None:
    rng = random.Random(6)
    genuine = tap(sun_tag(MASTER, UID, serial="SN-1"))
    alphabet = "0123456789ABCDEFabcdef/?&=%#.-_zZ\u00e9 "
    for _ in range(600):
        chars = list(genuine)
        for _ in range(rng.randint(1, 3)):
            position = rng.randrange(len(chars))
            action = rng.choice(("replace", "insert", "delete"))
            if action == "delete":
                del chars[position]
            else:
                chars[position : position + (action == "replace")] = [rng.choice(alphabet)]
        check = scan("".join(chars))
        if check.verdict == AUTHENTIC:
            assert (check.item.gtin, check.item.serial, check.uid) == (GTIN, "SN-1", UID)
