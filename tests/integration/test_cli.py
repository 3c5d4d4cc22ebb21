"""The firmware-tools CLI: exit codes 0/1/2, JSON output, key files on disk, a real subprocess."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from contracts_abi.eip712 import address_of_private_key
from firmware_tools.chips.ntag424.diversify import sun_file_read_key, sun_meta_read_key
from firmware_tools.chips.ntag424.sun import sdm_mac
from firmware_tools.cli import main
from firmware_tools.formats.qr import sign_label_url
from firmware_tools.keys import load_key_file
from tests.fakes.sun_tags import tap
from tests.integration.conftest import PASSPHRASE

ROOT = Path(__file__).resolve().parents[2]
LABEL_KEY = hashlib.sha256(b"cli test supplier").digest()
SUPPLIER = address_of_private_key(LABEL_KEY)
OTHER = address_of_private_key(hashlib.sha256(b"cli other supplier").digest())
HOST = "id.example.com"
# NXP AN12196 §3.4.2 example: SUN message of UID 04DE5F1EACC040, counter 61, zero keys.
SUN_URL = (
    "https://id.example.com/01/04006381333931/21/SN1"
    "?picc_data=EF963FF7828658A599F3041510671E88&cmac=94EED9EE65337086"
)
ZERO_KEY = "00" * 16
ZERO_MASTER = bytes(16)
TAP_UID = bytes.fromhex("04A1B2C3D4E5F6")


def verify(runner: CliRunner, *args: str) -> tuple[int, dict]:
    result = runner.invoke(main, ["tag", "verify", *args])
    return result.exit_code, json.loads(result.stdout) if result.stdout.strip() else {}


def test_keys_new_writes_a_0600_file_and_prints_the_address(
    tmp_path: Path, runner: CliRunner, passfile: Path
) -> None:
    path = tmp_path / "k.key"
    args = ["keys", "new", str(path), "--passphrase-file", str(passfile), "--json"]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(os.listdir(tmp_path)) == ["k.key", "pass.txt"]  # no temporary file left
    keys = load_key_file(path, PASSPHRASE)
    assert out == {"path": str(path), "address": keys.address, "kind": "supplier"}
    assert len(keys.sun_master_key) == 16
    before = path.read_bytes()
    again = runner.invoke(main, args)
    assert again.exit_code == 1
    assert "refusing to overwrite" in again.stderr
    assert path.read_bytes() == before


def test_keys_new_prompts_twice_when_no_passphrase_is_given(tmp_path: Path, runner: CliRunner):
    path = tmp_path / "k.key"
    result = runner.invoke(main, ["keys", "new", str(path)], input="pp\npp\n")
    assert result.exit_code == 0, result.output
    assert load_key_file(path, "pp").address in result.stdout


def test_the_passphrase_may_come_from_the_environment(
    key_file: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIRMWARE_TOOLS_PASSPHRASE", PASSPHRASE)
    result = runner.invoke(main, ["keys", "show", str(key_file), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["address"] == load_key_file(key_file, PASSPHRASE).address


def test_a_wrong_passphrase_is_one_line_on_stderr(key_file: Path, runner: CliRunner) -> None:
    result = runner.invoke(main, ["keys", "show", str(key_file)], input="nope\n")
    assert result.exit_code == 1
    assert "wrong passphrase" in result.stderr
    assert "Traceback" not in result.output


def test_qr_issue_reports_bad_rows_and_exits_1(
    tmp_path: Path, runner: CliRunner, key_file: Path, passfile: Path
) -> None:
    items = tmp_path / "items.csv"
    items.write_text("gtin,serial\n4006381333931,A1\n4006381333932,A2\n96385074,\n")
    out = tmp_path / "out"
    args = ["qr", "issue", str(items), "--key-file", str(key_file), "--host", HOST]
    result = runner.invoke(
        main, [*args, "--out", str(out), "--passphrase-file", str(passfile), "--json"]
    )
    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout)
    assert summary["issued"] == 2 and summary["pages"] == 1
    assert summary["errors"] == [
        {"line": 3, "reason": "GTIN 4006381333932: wrong check digit 2, it should be 1"}
    ]
    assert "line 3: GTIN 4006381333932" in result.stderr
    urls = [line.split(",")[2] for line in (out / "labels.csv").read_text().splitlines()[1:]]
    signer = load_key_file(key_file, PASSPHRASE).address
    for url in urls:
        code, report = verify(runner, url, "--supplier", signer)
        assert code == 0 and report["verdict"] == "authentic"


def test_qr_issue_of_good_rows_exits_0(
    tmp_path: Path, runner: CliRunner, key_file: Path, passfile: Path
) -> None:
    items = tmp_path / "items.csv"
    items.write_text("gtin\n96385074\n96385074\n")
    args = ["qr", "issue", str(items), "--key-file", str(key_file), "--host", HOST]
    result = runner.invoke(
        main, [*args, "--out", str(tmp_path / "o"), "--passphrase-file", str(passfile)]
    )
    assert result.exit_code == 0, result.output
    assert "issued 2 label(s)" in result.stdout
    assert len(list((tmp_path / "o").glob("*.png"))) == 2


def test_qr_issue_with_a_bad_host_is_a_usage_error(
    tmp_path: Path, runner: CliRunner, key_file: Path, passfile: Path
) -> None:
    items = tmp_path / "items.csv"
    items.write_text("gtin\n96385074\n")
    args = ["qr", "issue", str(items), "--key-file", str(key_file), "--host", "a b", "--out", "o"]
    result = runner.invoke(main, [*args, "--passphrase-file", str(passfile)])
    assert result.exit_code == 2
    assert "--host" in result.stderr


def test_tag_verify_a_signed_label(runner: CliRunner) -> None:
    url = sign_label_url(LABEL_KEY, HOST, "4006381333931", "SN-9")
    code, report = verify(runner, url, "--supplier", SUPPLIER)
    assert code == 0
    assert report["verdict"] == "authentic" and report["kind"] == "qr_label"
    assert (report["reasons"], report["codes"]) == ([], [])
    assert (report["gtin"], report["serial"], report["signer"]) == (
        "04006381333931",
        "SN-9",
        SUPPLIER,
    )
    code, report = verify(runner, url, "--supplier", OTHER)
    assert code == 1 and report["verdict"] == "counterfeit"
    assert report["codes"] == ["bad_signature"] and OTHER in report["reasons"][0]
    # An altered label names its item only as unverified.
    code, report = verify(runner, url.replace("SN-9", "SN-8"), "--supplier", SUPPLIER)
    assert code == 1 and report["serial"] is None and report["unverified"]["serial"] == "SN-8"
    code, report = verify(runner, url[:-10], "--supplier", SUPPLIER)
    assert code == 1 and "65" in report["reasons"][0]


def test_tag_verify_an_ntag21x_url_says_signature_valid_not_authentic(runner: CliRunner) -> None:
    from firmware_tools.chips.ntag21x import sign_ntag21x_url

    uid = bytes.fromhex("04A1B2C3D4E5F6")
    url = sign_ntag21x_url(LABEL_KEY, HOST, "4006381333931", "SN-21", uid)
    code, report = verify(runner, url, "--supplier", SUPPLIER)
    # The signature is good, but a URL can be copied: only the chip proves the original.
    assert code == 0 and report["verdict"] == "signature_valid"
    assert report["codes"] == ["chip_not_checked"] and "copied" in report["reasons"][0]
    assert report["uid"] == "04A1B2C3D4E5F6" and report["signer"] == SUPPLIER
    code, report = verify(runner, url, "--supplier", OTHER)
    assert code == 1 and report["codes"] == ["bad_signature"]
    # A malformed sig is a bad signature, not a malformed uid.
    code, report = verify(runner, url.split("sig=")[0] + "sig=abcde", "--supplier", SUPPLIER)
    assert code == 1 and report["codes"] == ["bad_signature"]
    code, report = verify(runner, url.replace("uid=04A1", "uid=ZZA1"), "--supplier", SUPPLIER)
    assert code == 1 and report["codes"] == ["malformed_url"]


@pytest.mark.parametrize(
    "args",
    [
        ["https://id.example.com/01/04006381333931/21/S?sig=x"],  # no --supplier
        ["https://id.example.com/01/04006381333931/21/S?sig=x", "--supplier", "0x12"],
        [SUN_URL],  # no SUN keys
        [SUN_URL, "--sun-meta-key", "00", "--sun-file-key", ZERO_KEY],
        [SUN_URL, "--sun-meta-key", "zz" * 16, "--sun-file-key", ZERO_KEY],
        ["--no-such-option", SUN_URL],
    ],
)
def test_tag_verify_usage_errors_exit_2(runner: CliRunner, args: list[str]) -> None:
    result = runner.invoke(main, ["tag", "verify", *args])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert "Error" in result.stderr


def _sun_url_for(
    master: bytes, uid: bytes, counter: int, serial: str = "SN1", mac_over_path: bool = True
) -> str:
    """What a tag personalized from `master` would send (AN12196 §3.4.2, §3.4.4).

    The MAC covers the URL from "/01/" up to and including "cmac=", or nothing (the older
    layout) without `mac_over_path`.
    """
    plain = bytes([0xC7]) + uid + counter.to_bytes(3, "little") + bytes(5)
    meta = sun_meta_read_key(master)
    enc = Cipher(algorithms.AES(meta), modes.CBC(bytes(16))).encryptor()
    picc = (enc.update(plain) + enc.finalize()).hex().upper()
    path = f"/01/04006381333931/21/{serial}?picc_data={picc}&cmac="
    mac_input = path.encode() if mac_over_path else b""
    mac = sdm_mac(sun_file_read_key(master, uid), uid, counter, mac_input).hex().upper()
    return f"https://{HOST}{path}{mac}"


def test_tag_verify_a_sun_url_with_explicit_keys(runner: CliRunner) -> None:
    url = _sun_url_for(ZERO_MASTER, TAP_UID, 61)
    keys = ["--sun-meta-key", sun_meta_read_key(ZERO_MASTER).hex(), "--sun-file-key",
            sun_file_read_key(ZERO_MASTER, TAP_UID).hex()]  # fmt: skip
    code, report = verify(runner, url, *keys)
    assert code == 0, report
    assert report["verdict"] == "authentic" and report["reasons"] == []
    assert (report["uid"], report["counter"]) == (TAP_UID.hex().upper(), 61)
    assert (report["gtin"], report["serial"]) == ("04006381333931", "SN1")
    code, report = verify(runner, url, *keys, "--last-counter", "61")
    assert code == 1 and report["verdict"] == "suspicious"
    assert report["codes"] == ["replayed_counter"]
    code, report = verify(runner, url, "--sun-meta-key", keys[1], "--sun-file-key", "01" * 16)
    assert code == 1 and report["codes"] == ["bad_cmac"] and report["uid"] is None
    code, report = verify(runner, url[:-1] + ("0" if url[-1] != "0" else "1"), *keys)
    assert code == 1 and report["verdict"] == "counterfeit"


def test_tag_verify_the_an12196_tap_under_a_gs1_path_names_no_authentic_item(
    runner: CliRunner,
) -> None:
    # AN12196's genuine tap MACs an empty input: pasted under a GS1 path, the chip is
    # authenticated, the GTIN and serial are not.
    code, report = verify(runner, SUN_URL, "--sun-meta-key", ZERO_KEY, "--sun-file-key", ZERO_KEY)
    assert code == 1 and report["verdict"] == "suspicious"
    assert report["codes"] == ["item_not_authenticated"]
    assert (report["uid"], report["counter"]) == ("04DE5F1EACC040", 61)
    assert report["gtin"] is None and report["unverified"]["serial"] == "SN1"


def test_tag_verify_a_sun_url_with_keys_from_the_key_file(
    runner: CliRunner, key_file: Path, passfile: Path
) -> None:
    master = load_key_file(key_file, PASSPHRASE).sun_master_key
    url = _sun_url_for(master, TAP_UID, 7)
    keys = ["--key-file", str(key_file), "--passphrase-file", str(passfile)]
    code, report = verify(runner, url, *keys)
    assert code == 0, report
    assert (report["uid"], report["counter"]) == (TAP_UID.hex().upper(), 7)
    # A tag keyed from another master key does not verify under this key file.
    code, report = verify(runner, _sun_url_for(bytes(16), TAP_UID, 8), *keys)
    assert code == 1 and report["verdict"] == "counterfeit"


@pytest.mark.parametrize("mac_over_path", [True, False])
def test_tag_verify_a_genuine_tap_spliced_under_another_item_exits_1(
    runner: CliRunner, key_file: Path, passfile: Path, mac_over_path: bool
) -> None:
    # The attack of issue 6, as typed: a real tap's picc_data and cmac pasted under
    # another host, GTIN and serial.
    master = load_key_file(key_file, PASSPHRASE).sun_master_key
    genuine = _sun_url_for(master, TAP_UID, 9, serial="CHEAP-1", mac_over_path=mac_over_path)
    spliced = "https://evil.example/01/04006381333931/21/LUXURY-999?" + genuine.partition("?")[2]
    keys = ["--key-file", str(key_file), "--passphrase-file", str(passfile)]
    code, report = verify(runner, spliced, *keys)
    assert code == 1
    assert report["verdict"] == ("counterfeit" if mac_over_path else "suspicious")
    assert report["gtin"] is None and report["serial"] is None
    assert report["unverified"]["serial"] == "LUXURY-999"


@pytest.mark.parametrize(
    ("damage", "code"),
    [
        (lambda url: url.replace("picc_data=", "picc_data=zz"), "bad_hex"),
        (lambda url: url.replace("picc_data=", "picc_data=0"), "bad_length"),
        (lambda url: url.partition("&cmac=")[0], "missing_parameter"),
        (lambda url: url.replace("?picc_data=", "?picc_data&x="), "missing_parameter"),
    ],
)
def test_tag_verify_damaged_sun_parameters_are_counterfeit_not_a_usage_error(
    runner: CliRunner, damage, code: str
) -> None:
    url = damage(_sun_url_for(ZERO_MASTER, TAP_UID, 3))
    keys = ["--sun-meta-key", ZERO_KEY, "--sun-file-key", ZERO_KEY]
    exit_code, report = verify(runner, url, *keys)
    assert exit_code == 1 and report["verdict"] == "counterfeit"
    assert report["codes"] == [code]


def test_device_provision_writes_a_config_and_a_device_key(
    tmp_path: Path, runner: CliRunner, passfile: Path
) -> None:
    config, key = tmp_path / "agent.json", tmp_path / "device.key"
    args = [
        "device", "provision", "--config", str(config), "--key-file", str(key),
        "--api-url", "http://127.0.0.1:5000/", "--device", "pn532_uart:/dev/ttyUSB0",
        "--outbox", str(tmp_path / "outbox.db"), "--passphrase-file", str(passfile), "--json",
    ]  # fmt: skip
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    device = load_key_file(key, PASSPHRASE)
    assert device.kind == "device" and device.sun_master_key is None
    assert json.loads(result.stdout)["address"] == device.address
    assert json.loads(config.read_text()) == {
        "api_url": "http://127.0.0.1:5000",
        "device_key_file": str(key.resolve()),
        "reader": "pn532_uart:/dev/ttyUSB0",
        "outbox": str((tmp_path / "outbox.db").resolve()),
        "device_address": device.address,
    }
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    again = runner.invoke(main, args)
    assert again.exit_code == 1 and "already exists" in again.stderr


def _provision_args(tmp_path: Path, passfile: Path, **change: str) -> list[str]:
    options = {
        "--config": str(tmp_path / "agent.json"),
        "--key-file": str(tmp_path / "device.key"),
        "--api-url": "https://api.example.com",
        "--outbox": str(tmp_path / "outbox.db"),
        "--passphrase-file": str(passfile),
    } | {f"--{name.replace('_', '-')}": value for name, value in change.items()}
    return ["device", "provision", *(part for pair in options.items() for part in pair)]


def test_device_provision_leaves_no_key_behind_when_the_config_cannot_be_written(
    tmp_path: Path, runner: CliRunner, passfile: Path
) -> None:
    # The config's directory does not exist: writing it fails after the key was made.
    args = _provision_args(tmp_path, passfile, config=str(tmp_path / "no-such-dir" / "a.json"))
    failed = runner.invoke(main, args)
    assert failed.exit_code == 1
    assert "cannot create" in failed.stderr and "Traceback" not in failed.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pass.txt"]  # nothing half-made
    # So the fixed command simply works, instead of failing with "already exists".
    (tmp_path / "no-such-dir").mkdir()
    retried = runner.invoke(main, args)
    assert retried.exit_code == 0, retried.output
    assert load_key_file(tmp_path / "device.key", PASSPHRASE).kind == "device"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"api_url": "http://"}, "the URL has no domain"),
        ({"api_url": "https://"}, "the URL has no domain"),
        ({"api_url": "api.example.com"}, "must start with https:// or http://"),
        ({"api_url": "https://user:pw@api.example.com"}, "user info"),
        ({"api_url": "https://api.example.com:99999"}, "port '99999'"),
        ({"outbox": ""}, "'--outbox': is empty"),
        ({"outbox": "   "}, "'--outbox': is empty"),
        ({"config": ""}, "'--config': is empty"),
        ({"key_file": ""}, "'--key-file': is empty"),
        ({"outbox": "spool/"}, "ends with a slash"),
    ],
)
def test_device_provision_refuses_options_it_cannot_use(
    tmp_path: Path, runner: CliRunner, passfile: Path, change: dict, message: str
) -> None:
    result = runner.invoke(main, _provision_args(tmp_path, passfile, **change))
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pass.txt"]


def test_device_provision_refuses_one_file_for_both_config_and_key(
    tmp_path: Path, runner: CliRunner, passfile: Path
) -> None:
    same = str(tmp_path / "device.json")
    result = runner.invoke(main, _provision_args(tmp_path, passfile, config=same, key_file=same))
    assert result.exit_code == 2 and "the same file" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pass.txt"]


@pytest.mark.parametrize(("path", "message"), [("", "is empty"), ("keys/", "ends with a slash")])
def test_keys_new_with_no_file_name_says_so(
    tmp_path: Path,
    runner: CliRunner,
    passfile: Path,
    path: str,
    message: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    result = runner.invoke(main, ["keys", "new", path, "--passphrase-file", str(passfile)])
    assert os.listdir() == []
    assert result.exit_code == 2
    assert message in result.stderr and "already exists" not in result.stderr


def test_keys_new_into_a_missing_directory_is_one_line(
    tmp_path: Path, runner: CliRunner, passfile: Path
) -> None:
    path = tmp_path / "nowhere" / "s.key"
    result = runner.invoke(main, ["keys", "new", str(path), "--passphrase-file", str(passfile)])
    assert result.exit_code == 1
    assert f"cannot create {path}: No such file or directory" in result.stderr
    assert not (tmp_path / "nowhere").exists()


def test_qr_issue_help_says_the_expiry_is_yymmdd(runner: CliRunner) -> None:
    result = runner.invoke(main, ["qr", "issue", "--help"])
    assert result.exit_code == 0
    assert "expiry   AI 17, YYMMDD" in result.stdout


def _qr_issue(runner: CliRunner, tmp_path: Path, key: Path, passfile: Path, host: str = HOST):
    items = tmp_path / "items.csv"
    items.write_text("gtin,lot,expiry\n96385074,L1,271231\n")
    return runner.invoke(
        main,
        ["qr", "issue", str(items), "--key-file", str(key), "--host", host,
         "--out", str(tmp_path / "out"), "--passphrase-file", str(passfile)],
    )  # fmt: skip


def test_qr_issue_with_a_5000_character_host_is_a_usage_error(
    tmp_path: Path, runner: CliRunner, key_file: Path, passfile: Path
) -> None:
    result = _qr_issue(runner, tmp_path, key_file, passfile, host="a" * 5000 + ".example")
    assert result.exit_code == 2
    assert "--host" in result.stderr and "5008 characters; at most 253" in result.stderr
    assert "Traceback" not in result.output and len(result.stderr) < 500
    assert not (tmp_path / "out").exists()


def test_qr_issue_refuses_a_device_key(tmp_path: Path, runner: CliRunner, passfile: Path) -> None:
    provisioned = runner.invoke(main, _provision_args(tmp_path, passfile))
    assert provisioned.exit_code == 0, provisioned.output
    result = _qr_issue(runner, tmp_path, tmp_path / "device.key", passfile)
    assert result.exit_code == 1
    assert "is a device key file; labels are signed with the supplier's key file" in (result.stderr)
    assert not (tmp_path / "out").exists()


def test_ntag21x_write_refuses_a_device_key_before_the_reader(
    tmp_path: Path, runner: CliRunner, passfile: Path
) -> None:
    assert runner.invoke(main, _provision_args(tmp_path, passfile)).exit_code == 0
    result = runner.invoke(
        main,
        ["ntag21x", "write", "--device", "pn532_uart:/dev/nonexistent-reader",
         "--key-file", str(tmp_path / "device.key"), "--host", HOST, "--gtin", "96385074",
         "--passphrase-file", str(passfile)],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "is a device key file; labels are signed with the supplier's key file" in (result.stderr)


@pytest.mark.parametrize("module", ["segno", "PIL", "fpdf"])
def test_qr_issue_without_the_tools_extra_names_it(
    tmp_path: Path,
    runner: CliRunner,
    key_file: Path,
    passfile: Path,
    monkeypatch: pytest.MonkeyPatch,
    module: str,
) -> None:
    # What `pip install '.[agent]'` leaves out: the module cannot be imported.
    monkeypatch.setitem(sys.modules, module, None)
    result = _qr_issue(runner, tmp_path, key_file, passfile)
    assert result.exit_code == 1
    assert f"this command needs {module}, which comes with the 'tools' extra" in result.stderr
    assert "pip install 'provenance[tools]'" in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_qr_issue_signs_lot_and_expiry(
    tmp_path: Path, runner: CliRunner, key_file: Path, passfile: Path
) -> None:
    result = _qr_issue(runner, tmp_path, key_file, passfile)
    assert result.exit_code == 0, result.output
    url = (tmp_path / "out" / "labels.csv").read_text().splitlines()[1].split(",")[2]
    signer = load_key_file(key_file, PASSPHRASE).address
    assert verify(runner, url, "--supplier", signer)[0] == 0
    code, report = verify(runner, url.replace("/10/L1/", "/10/L2/"), "--supplier", signer)
    assert code == 1 and report["codes"] == ["bad_signature"]


def test_a_supplier_address_with_a_wrong_checksum_is_a_usage_error(runner: CliRunner) -> None:
    url = sign_label_url(LABEL_KEY, HOST, "96385074", "P-1")
    position = next(i for i, char in enumerate(SUPPLIER) if i > 1 and char.isalpha())
    mistyped = SUPPLIER[:position] + SUPPLIER[position].swapcase() + SUPPLIER[position + 1 :]
    result = runner.invoke(main, ["tag", "verify", url, "--supplier", mistyped])
    assert result.exit_code == 2 and "wrong EIP-55 checksum" in result.stderr
    for accepted in (SUPPLIER.lower(), "0x" + SUPPLIER[2:].upper()):
        assert verify(runner, url, "--supplier", accepted)[0] == 0


def test_every_command_has_help_with_an_example(runner: CliRunner) -> None:
    for command in (["keys", "new"], ["qr", "issue"], ["tag", "verify"], ["device", "provision"]):
        result = runner.invoke(main, [*command, "--help"])
        assert result.exit_code == 0
        assert "Example" in result.stdout


def run_module(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    environment.pop("FIRMWARE_TOOLS_PASSPHRASE", None)
    return subprocess.run(
        [sys.executable, "-m", "firmware_tools", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )


def test_python_m_firmware_tools_exit_codes_and_json() -> None:
    url = sign_label_url(LABEL_KEY, HOST, "96385074", "P-1")
    ok = run_module("tag", "verify", url, "--supplier", SUPPLIER)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["verdict"] == "authentic"
    bad = run_module("tag", "verify", url, "--supplier", OTHER)
    assert bad.returncode == 1
    assert json.loads(bad.stdout)["verdict"] == "counterfeit"
    usage = run_module("tag", "verify", url)
    assert usage.returncode == 2 and "--supplier" in usage.stderr and usage.stdout == ""


def test_the_console_script_runs_when_installed() -> None:
    import shutil

    script = shutil.which("firmware-tools", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("the console script appears with `pip install -e .`")
    url = sign_label_url(LABEL_KEY, HOST, "96385074", "C-1")
    done = subprocess.run(
        [script, "tag", "verify", url, "--supplier", SUPPLIER],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["serial"] == "C-1"


def test_python_m_firmware_tools_issues_labels(tmp_path: Path, passfile: Path) -> None:
    key = tmp_path / "s.key"
    created = run_module("keys", "new", str(key), "--passphrase-file", str(passfile), "--json")
    assert created.returncode == 0, created.stderr
    items = tmp_path / "items.csv"
    items.write_text("gtin,serial,lot,expiry\n96385074,,L1,\n96385074,,,991399\n")
    issued = run_module(
        "qr", "issue", str(items), "--key-file", str(key), "--host", HOST,
        "--out", str(tmp_path / "out"), "--passphrase-file", str(passfile),
    )  # fmt: skip
    assert issued.returncode == 1
    assert "line 3: AI 17 (expiry date) 991399: month 13" in issued.stderr
    assert "Traceback" not in issued.stderr
    assert (tmp_path / "out" / "labels.pdf").exists()


# --- NFC commands through libnfc and the PN532 emulator on a pty ------------------------

TAG_UID = bytes.fromhex("04A1B2C3D4E5F6")
TEST_ORIGINALITY_KEY = 0x0123456789ABCDEF0FEDCBA987654321


@pytest.fixture
def libnfc() -> None:
    from firmware_tools.errors import ReaderNotFound
    from firmware_tools.nfc.libnfc import bindings

    try:
        bindings()
    except ReaderNotFound as exc:
        from tests.conftest import unavailable

        unavailable(str(exc))


def emulated(tag: object):
    from tests.fakes.pn532 import Pn532Emulator

    return Pn532Emulator([tag])


@pytest.mark.libnfc
def test_ntag21x_write_then_tag_read(
    libnfc: None, runner: CliRunner, key_file: Path, passfile: Path
) -> None:
    from firmware_tools.chips import ecc
    from tests.fakes.ntag21x import SimulatedNtag21x

    signature = ecc.sign(ecc.SECP128R1, TEST_ORIGINALITY_KEY, TAG_UID)
    chip = SimulatedNtag21x(TAG_UID, signature=signature)
    supplier = load_key_file(key_file, PASSPHRASE).address
    test_key = ecc.public_key_of(ecc.SECP128R1, TEST_ORIGINALITY_KEY).hex()
    with emulated(chip) as emulator:
        device = ["--device", emulator.connstring, "--timeout", "3"]
        written = runner.invoke(
            main,
            ["ntag21x", "write", *device, "--key-file", str(key_file), "--host", HOST,
             "--gtin", "4006381333931", "--serial", "NFC-1", "--passphrase-file", str(passfile)],
        )  # fmt: skip
        assert written.exit_code == 0, written.output
        out = json.loads(written.stdout)
        assert out["uid"] == TAG_UID.hex().upper() and out["serial"] == "NFC-1"
        read = runner.invoke(
            main,
            ["tag", "read", *device, "--supplier", supplier, "--originality-public-key", test_key],
        )
        assert read.exit_code == 0, read.output
        report = json.loads(read.stdout)
        assert report["verdict"] == "authentic" and report["url"] == out["url"]
        assert (report["gtin"], report["serial"]) == ("04006381333931", "NFC-1")
        # Under NXP's real key the test chip's originality signature is not genuine.
        nxp = runner.invoke(main, ["tag", "read", *device, "--supplier", supplier])
        assert nxp.exit_code == 1
        assert json.loads(nxp.stdout)["verdict"] == "counterfeit"
        # Another supplier's address: the label is not theirs.
        other = runner.invoke(
            main,
            ["tag", "read", *device, "--supplier", OTHER, "--originality-public-key", test_key],
        )
        assert other.exit_code == 1 and "bad_signature" in json.loads(other.stdout)["codes"]
    assert emulator.errors == []


@pytest.mark.libnfc
def test_ntag21x_write_to_a_locked_tag_says_so(
    libnfc: None, runner: CliRunner, key_file: Path, passfile: Path
) -> None:
    from tests.fakes.ntag21x import SimulatedNtag21x

    chip = SimulatedNtag21x(TAG_UID, signature=bytes(32))
    chip.lock_page(4)
    with emulated(chip) as emulator:
        result = runner.invoke(
            main,
            ["ntag21x", "write", "--device", emulator.connstring, "--timeout", "3",
             "--key-file", str(key_file), "--host", HOST, "--gtin", "96385074",
             "--passphrase-file", str(passfile)],
        )  # fmt: skip
    assert result.exit_code == 1
    assert "locked" in result.stderr and "Traceback" not in result.output


@pytest.mark.libnfc
def test_a_missing_reader_is_a_clear_error(libnfc: None, runner: CliRunner) -> None:
    result = runner.invoke(
        main, ["tag", "read", "--device", "pn532_uart:/dev/nonexistent-reader", "--timeout", "1"]
    )
    assert result.exit_code == 1
    assert "no NFC reader" in result.stderr


@pytest.mark.libnfc
def test_ntag424_personalize_then_verify_its_sun_url(
    libnfc: None, runner: CliRunner, key_file: Path, passfile: Path
) -> None:
    from tests.fakes.ntag424 import SimulatedNtag424

    chip = SimulatedNtag424(bytes.fromhex("04C1D2E3F40580"))
    with emulated(chip) as emulator:
        result = runner.invoke(
            main,
            ["ntag424", "personalize", "--device", emulator.connstring, "--timeout", "3",
             "--key-file", str(key_file), "--host", HOST, "--gtin", "4006381333931",
             "--serial", "DNA-1", "--passphrase-file", str(passfile)],
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["uid"] == "04C1D2E3F40580"
    assert all(key != bytes(16) for key in chip.keys)
    first, second = tap(chip), tap(chip)
    assert first.startswith(f"https://{HOST}/01/04006381333931/21/DNA-1?picc_data=")
    keys = ["--key-file", str(key_file), "--passphrase-file", str(passfile)]
    code, report = verify(runner, first, *keys)
    # Personalization starts the MAC input at the GS1 path: GTIN and serial are authenticated.
    assert code == 0 and report["codes"] == [], report
    assert (report["uid"], report["serial"]) == ("04C1D2E3F40580", "DNA-1")
    code, later = verify(runner, second, *keys, "--last-counter", str(report["counter"]))
    assert code == 0 and later["counter"] == report["counter"] + 1
    code, replay = verify(runner, first, *keys, "--last-counter", str(later["counter"]))
    assert code == 1 and replay["codes"] == ["replayed_counter"]


@pytest.mark.libnfc
def test_tag_read_of_an_ntag424_checks_sun_and_originality(
    libnfc: None, runner: CliRunner, key_file: Path, passfile: Path, tmp_path: Path
) -> None:
    from tests.fakes.ntag424 import fake_public_key
    from tests.fakes.sun_tags import sun_tag

    master = load_key_file(key_file, PASSPHRASE).sun_master_key
    uid = bytes.fromhex("04C1D2E3F40581")
    chip = sun_tag(master, uid, host=HOST, serial="DNA-2")
    originality = ["--originality-public-key", fake_public_key().hex()]
    keys = ["--key-file", str(key_file), "--passphrase-file", str(passfile)]
    other_key_file = tmp_path / "other.key"
    runner.invoke(main, ["keys", "new", str(other_key_file), "--passphrase-file", str(passfile)])
    with emulated(chip) as emulator:
        device = ["--device", emulator.connstring, "--timeout", "3"]
        read_only = runner.invoke(main, ["tag", "read", *device, *originality])
        checked = runner.invoke(main, ["tag", "read", *device, *originality, *keys])
        not_nxp = runner.invoke(main, ["tag", "read", *device, *keys])
        other_key = [*device, *originality, "--key-file", str(other_key_file)]
        wrong_keys = runner.invoke(
            main, ["tag", "read", *other_key, "--passphrase-file", str(passfile)]
        )
    assert emulator.errors == []

    assert read_only.exit_code == 0, read_only.output
    first = json.loads(read_only.stdout)
    assert first["verdict"] is None and first["uid"] == "04C1D2E3F40581"
    assert first["url"].startswith(f"https://{HOST}/01/04006381333931/21/DNA-2?picc_data=")
    assert first["findings"] == ["genuine NXP chip UID (originality signature valid)"]

    assert checked.exit_code == 0, checked.output
    report = json.loads(checked.stdout)
    assert report["verdict"] == "authentic", report
    assert (report["uid"], report["serial"]) == ("04C1D2E3F40581", "DNA-2")
    assert report["findings"][0] == "genuine NXP chip UID (originality signature valid)"
    assert report["url"] != first["url"]  # every tap mirrors a fresh counter and MAC

    # The simulated chip is signed by a test key, not by NXP: under NXP's key it fails.
    assert not_nxp.exit_code == 1
    assert json.loads(not_nxp.stdout)["codes"] == ["bad_originality_signature"]

    assert wrong_keys.exit_code == 1
    assert json.loads(wrong_keys.stdout)["codes"] == ["unknown_picc_data_tag"]


def test_doctor_reports_a_missing_serial_device(runner: CliRunner) -> None:
    result = runner.invoke(
        main, ["doctor", "--device", "pn532_uart:/dev/nonexistent-reader", "--json"]
    )
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert any("/dev/nonexistent-reader does not exist" in f["message"] for f in report["findings"])


@pytest.mark.libnfc
def test_the_doctor_does_not_tell_the_user_to_run_the_doctor(
    libnfc: None, runner: CliRunner
) -> None:
    # A USB connstring that names no device: libnfc cannot open it.
    result = runner.invoke(main, ["doctor", "--device", "pn53x_usb:001:099", "--json"])
    assert result.exit_code == 1
    findings = json.loads(result.stdout)["findings"]
    errors = [f["message"] for f in findings if f["level"] == "error"]
    assert errors and "libnfc could not open a reader at pn53x_usb:001:099" in errors[-1]
    assert not any("doctor" in f["message"] for f in findings)
