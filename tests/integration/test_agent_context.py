"""The reader agent's files: the operator's context file, the config and the keys it names."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from firmware_tools.cli import main as firmware_tools
from reader_agent.config import load_api_key, load_config, load_device_key
from reader_agent.context import Context, ContextWatcher, read_overrides, update_context
from reader_agent.errors import ConfigError
from tests.integration.conftest import PASSPHRASE

OTHER = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"
DEFAULTS = Context("receiving", "in_progress", "dock 3")


def test_a_context_change_is_seen_at_the_next_scan_without_a_restart(tmp_path) -> None:
    path = tmp_path / "context.json"
    watcher = ContextWatcher(path, DEFAULTS)
    assert watcher.current() == DEFAULTS
    update_context(path, {"biz_step": "shipping", "to_party": OTHER.lower()}, "2026-12-01T10:00Z")
    assert watcher.current() == Context("shipping", "in_transit", "dock 3", None, OTHER)
    # Two changes within one timestamp tick are both seen: each write is a new file (inode).
    update_context(path, {"read_point": "dock 4"}, "2026-12-01T10:00Z")
    assert watcher.current().read_point == "dock 4"
    update_context(path, {"biz_step": None, "to_party": None}, "2026-12-01T10:01Z")
    assert watcher.current() == Context("receiving", "in_progress", "dock 4", None, None)
    path.unlink()
    assert watcher.current() == DEFAULTS


def test_a_bad_edit_keeps_the_last_good_context_and_says_why(tmp_path) -> None:
    path = tmp_path / "context.json"
    watcher = ContextWatcher(path, DEFAULTS)
    update_context(path, {"biz_step": "shipping"}, "2026-12-01T10:00Z")
    shipping = watcher.current()
    path.write_text('{\n  "biz_step": "shiping"\n}\n')
    assert watcher.current() == shipping
    assert watcher.error is not None and "context.json line 2: `biz_step`" in watcher.error
    update_context(path, {"biz_step": "receiving"}, "2026-12-01T10:02Z")
    assert watcher.current().biz_step == "receiving" and watcher.error is None


def test_a_refused_change_leaves_the_file_as_it_was(tmp_path) -> None:
    path = tmp_path / "context.json"
    update_context(path, {"read_point": "dock 4"}, "2026-12-01T10:00Z")
    before = path.read_bytes()
    with pytest.raises(ConfigError, match="context: `to_party`"):
        update_context(path, {"to_party": "0x1234"}, "2026-12-01T10:01Z")
    with pytest.raises(ConfigError, match="unknown context keys: gtin"):
        update_context(path, {"gtin": "1"}, "2026-12-01T10:01Z")
    assert path.read_bytes() == before
    assert read_overrides(path) == {"read_point": "dock 4"}
    assert [p.name for p in tmp_path.iterdir()] == ["context.json"]  # no temporary left


def test_the_provisioned_config_loads_and_opens_its_device_key(tmp_path, passfile) -> None:
    config_path = tmp_path / "agent.json"
    result = CliRunner().invoke(
        firmware_tools,
        [
            "device",
            "provision",
            "--config",
            str(config_path),
            "--key-file",
            str(tmp_path / "device.key"),
            "--api-url",
            "https://api.example.com",
            "--outbox",
            str(tmp_path / "outbox.db"),
            "--passphrase-file",
            str(passfile),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    address = json.loads(result.output)["address"]
    config = load_config(config_path)
    assert config.device_address == address
    assert config.context_file == tmp_path / "context.json"
    key = load_device_key(config, PASSPHRASE)
    assert len(key) == 32
    with pytest.raises(ConfigError, match="no `api_key_file`"):
        load_api_key(config)
    # The agent's own keys, added by hand, with a relative path.
    document = json.loads(config_path.read_text())
    document.update(api_key_file="api.key", biz_step="shipping")
    config_path.write_text(json.dumps(document, indent=2))
    (tmp_path / "api.key").write_text("pk_live_abc\n")
    config = load_config(config_path)
    assert load_api_key(config) == "pk_live_abc"
    assert config.context.disposition == "in_transit"


def test_a_config_naming_another_device_key_is_refused(tmp_path, passfile) -> None:
    runner = CliRunner()
    for name in ("a", "b"):
        result = runner.invoke(
            firmware_tools,
            [
                "device",
                "provision",
                "--config",
                str(tmp_path / f"{name}.json"),
                "--key-file",
                str(tmp_path / f"{name}.key"),
                "--api-url",
                "https://api.example.com",
                "--outbox",
                str(tmp_path / f"{name}.db"),
                "--passphrase-file",
                str(passfile),
            ],
        )
        assert result.exit_code == 0, result.output
    document = json.loads((tmp_path / "a.json").read_text())
    document["device_key_file"] = "b.key"
    (tmp_path / "a.json").write_text(json.dumps(document))
    with pytest.raises(ConfigError, match="device_address is"):
        load_device_key(load_config(tmp_path / "a.json"), PASSPHRASE)


def test_a_missing_or_unreadable_config_says_so(tmp_path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "agent.json")
    (tmp_path / "agent.json").write_bytes(b"\xff\xfe{")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(tmp_path / "agent.json")


def test_a_device_provisioned_with_its_api_key_file_loads_it(tmp_path, passfile) -> None:
    api_key = tmp_path / "api.key"
    api_key.write_text("pk_live_device\n")
    config_path = tmp_path / "agent.json"
    args = [
        "device", "provision", "--config", str(config_path),
        "--key-file", str(tmp_path / "device.key"), "--api-url", "https://api.example.com",
        "--outbox", str(tmp_path / "outbox.db"), "--api-key-file", str(api_key),
        "--passphrase-file", str(passfile),
    ]  # fmt: skip
    result = CliRunner().invoke(firmware_tools, args)
    assert result.exit_code == 0, result.output
    config = load_config(config_path)
    assert config.api_key_file == api_key
    # The passphrase stays out of the config: the unit hands it over as a systemd credential.
    assert config.passphrase_file is None
    assert load_api_key(config) == "pk_live_device"
    assert len(load_device_key(config, PASSPHRASE)) == 32


def test_provision_refuses_an_api_key_file_that_is_not_there(tmp_path, passfile) -> None:
    args = [
        "device", "provision", "--config", str(tmp_path / "agent.json"),
        "--key-file", str(tmp_path / "device.key"), "--api-url", "https://api.example.com",
        "--outbox", str(tmp_path / "outbox.db"), "--api-key-file", str(tmp_path / "nope"),
        "--passphrase-file", str(passfile),
    ]  # fmt: skip
    result = CliRunner().invoke(firmware_tools, args)
    assert result.exit_code == 2 and "nope" in result.output
    assert not (tmp_path / "device.key").exists() and not (tmp_path / "agent.json").exists()
