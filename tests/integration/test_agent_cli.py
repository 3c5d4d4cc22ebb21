"""`reader-agent` commands refuse what is wrong in words: a bad config, a key that does not
open, an outbox that is not there; `context set` and `doctor --config` do their part."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from firmware_tools.keys import DEVICE, new_key_file
from reader_agent.cli import main
from tests.conftest import free_port

PASSPHRASE = "cli passphrase"


@pytest.fixture
def agent(tmp_path):
    """A device key, its passphrase file and a config naming them (no API behind it)."""
    keys = new_key_file(tmp_path / "device.key", PASSPHRASE, kind=DEVICE, scrypt_n=2**10)
    (tmp_path / "passphrase").write_text(PASSPHRASE + "\n", encoding="utf-8")
    (tmp_path / "api.key").write_text("pk_nobody\n", encoding="utf-8")
    config = {
        "api_url": f"http://127.0.0.1:{free_port()}",
        "device_key_file": "device.key",
        "device_address": keys.address,
        "outbox": "outbox.db",
        "api_key_file": "api.key",
        "passphrase_file": "passphrase",
        "sources": [{"kind": "serial", "port": str(tmp_path / "no-such-tty")}],
    }
    path = tmp_path / "agent.json"
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    return path


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def test_run_refuses_a_bad_config_naming_the_key_and_line(agent):
    text = agent.read_text().replace('"outbox.db"', '"outbox.db",\n  "biz_stp": "shipping"')
    agent.write_text(text)
    result = invoke("run", "--config", str(agent))
    assert result.exit_code == 1
    assert "agent.json line 6: `biz_stp` is not a config key" in result.output
    assert result.exc_info is None or result.exc_info[0] is SystemExit


def test_run_refuses_a_key_that_does_not_open(agent):
    (agent.parent / "passphrase").write_text("wrong\n")
    result = invoke("run", "--config", str(agent))
    assert result.exit_code == 1
    assert result.output.startswith("error: ") and "passphrase" in result.output.lower()
    assert result.exc_info[0] is SystemExit


def test_run_refuses_a_missing_config(tmp_path):
    result = invoke("run", "--config", str(tmp_path / "nope.json"))
    assert result.exit_code == 1
    assert "does not exist" in result.output


def test_status_before_the_first_run_says_so(agent):
    result = invoke("status", "--config", str(agent))
    assert result.exit_code == 1
    assert "the agent has not run yet" in result.output
    assert not (agent.parent / "outbox.db").exists()


def test_context_set_writes_what_the_daemon_reads_and_refuses_a_typo(agent):
    result = invoke("context", "set", "--config", str(agent), "biz_step=shipping", "to_party=null")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"biz_step": "shipping", "to_party": None}
    written = json.loads((agent.parent / "context.json").read_text())
    assert written["biz_step"] == "shipping"

    typo = invoke("context", "set", "--config", str(agent), "biz_step=shiping")
    assert typo.exit_code == 1
    assert "did you mean 'shipping'?" in typo.output
    unknown = invoke("context", "set", "--config", str(agent), "dock=3")
    assert unknown.exit_code == 1 and "unknown context keys: dock" in unknown.output


def test_doctor_checks_the_config_key_api_and_scanner(agent):
    result = invoke("doctor", "--config", str(agent), "--json")
    assert result.exit_code == 1
    findings = {f["message"].split(" ")[0]: f["level"] for f in json.loads(result.output)}
    messages = [f["message"] for f in json.loads(result.output)]
    assert findings[str(agent)] == "ok"
    assert any(m.startswith("device key") and "opens" in m for m in messages)
    assert any("does not answer" in m for m in messages)
    assert any("no-such-tty does not exist" in m for m in messages)


def test_doctor_names_a_device_key_that_does_not_open(agent):
    (agent.parent / "passphrase").write_text("wrong\n")
    result = invoke("doctor", "--config", str(agent), "--json")
    levels = [f for f in json.loads(result.output) if f["message"].startswith("device key")]
    assert levels[0]["level"] == "error"


def test_scan_prints_one_read_with_its_local_verdict_and_records_nothing(agent, tmp_path):
    import threading

    from tests.fakes.serial_scanner import ScannerEmulator

    with ScannerEmulator(tmp_path / "scanner") as scanner:
        config = json.loads(agent.read_text())
        config["sources"] = [{"kind": "serial", "port": str(scanner.link)}]
        agent.write_text(json.dumps(config))
        url = "https://id.example.com/01/04006381333931/21/SN-1"
        later = threading.Timer(0.5, scanner.scan, (url,))
        later.start()
        result = invoke("scan", "--config", str(agent), "--timeout", "10", "--json")
        later.join()
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    assert found["url"] == url and found["level"] == "warning"  # no trust cache yet
    assert found["gtin"] == "04006381333931" and found["serial"] == "SN-1"
    assert not (agent.parent / "outbox.db").exists()


def test_scan_says_when_nothing_was_read(agent, tmp_path):
    from tests.fakes.serial_scanner import ScannerEmulator

    with ScannerEmulator(tmp_path / "scanner") as scanner:
        config = json.loads(agent.read_text())
        config["sources"] = [{"kind": "serial", "port": str(scanner.link)}]
        agent.write_text(json.dumps(config))
        result = invoke("scan", "--config", str(agent), "--timeout", "0.3")
    assert result.exit_code == 1
    assert "no tag read from serial:" in result.output


def test_doctor_opens_the_scanner_and_names_a_missing_camera(agent, tmp_path):
    from tests.fakes.serial_scanner import ScannerEmulator

    with ScannerEmulator(tmp_path / "scanner") as scanner:
        config = json.loads(agent.read_text())
        config["sources"] = [
            {"kind": "serial", "port": str(scanner.link)},
            {"kind": "camera", "device": str(tmp_path / "no-such-video")},
        ]
        agent.write_text(json.dumps(config))
        result = invoke("doctor", "--config", str(agent), "--json")
    findings = {f["message"]: f["level"] for f in json.loads(result.output)}
    assert findings[f"serial:{scanner.link} opens"] == "ok"
    camera = [level for message, level in findings.items() if message.startswith("camera:")]
    assert camera == ["error"], findings


def test_the_passphrase_comes_from_the_file_a_systemd_credential_or_the_environment(agent):
    from reader_agent.config import load_config
    from reader_agent.errors import ConfigError
    from reader_agent.keyfile import open_device_key, passphrase_for

    config = json.loads(agent.read_text())
    del config["passphrase_file"]
    agent.write_text(json.dumps(config))
    loaded = load_config(agent)
    credentials = agent.parent / "credentials"
    credentials.mkdir()
    (credentials / "passphrase").write_text(PASSPHRASE + "\n")
    assert passphrase_for(loaded, {"CREDENTIALS_DIRECTORY": str(credentials)}) == PASSPHRASE
    assert passphrase_for(loaded, {"FIRMWARE_TOOLS_PASSPHRASE": "from env"}) == "from env"
    assert len(open_device_key(loaded, {"FIRMWARE_TOOLS_PASSPHRASE": PASSPHRASE})) == 32
    with pytest.raises(ConfigError, match="no passphrase for the device key"):
        passphrase_for(loaded, {})
