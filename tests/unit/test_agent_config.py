"""The reader agent's config and context rules: what loads, and what is refused with which line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contracts_abi.cbv import BIZ_STEPS, DISPOSITIONS
from reader_agent import jsonfile
from reader_agent.config import parse_config
from reader_agent.context import Context, merge, parse_overrides
from reader_agent.errors import ConfigError

ADDRESS = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
OTHER = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"
# What `firmware-tools device provision` writes, byte for byte in shape.
PROVISIONED = {
    "api_url": "https://api.example.com",
    "device_key_file": "/etc/reader-agent/device.key",
    "reader": "pn532_uart:/dev/ttyUSB0",
    "outbox": "/var/lib/reader-agent/outbox.db",
    "device_address": ADDRESS,
}


def text_of(**changes) -> str:
    return json.dumps({**PROVISIONED, **changes}, indent=2) + "\n"


def refusal(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    return str(caught.value)


def test_the_provisioned_config_loads_with_defaults() -> None:
    config = parse_config(text_of())
    assert config.api_url == "https://api.example.com"
    assert config.device_address == ADDRESS
    assert config.outbox == Path("/var/lib/reader-agent/outbox.db")
    assert config.context_file == Path("/var/lib/reader-agent/context.json")
    assert config.context == Context("receiving", "in_progress", ADDRESS)
    assert [(s.kind, s.options) for s in config.sources] == [
        ("nfc", {"device": "pn532_uart:/dev/ttyUSB0"})
    ]
    assert config.upload_batch_size == 100
    assert config.api_key_file is None
    assert config.gpio == {}


def test_the_agent_keys_load() -> None:
    config = parse_config(
        text_of(
            biz_step="shipping",
            read_point="urn:epc:id:sgln:9506000.13435.0",
            to_party=OTHER.lower(),
            sources=[{"kind": "serial", "port": "/dev/ttyACM0", "baud": 115200}],
            upload_batch_size=1000,
            gpio={"buzzer": 17, "good": 22},
            api_key_file="api.key",
        ),
        base=Path("/etc/reader-agent"),
    )
    assert config.context == Context(
        "shipping", "in_transit", "urn:epc:id:sgln:9506000.13435.0", None, OTHER
    )
    assert config.sources[0].options == {"port": "/dev/ttyACM0", "baud": 115200}
    assert config.upload_batch_size == 1000
    assert config.gpio == {"buzzer": 17, "good": 22}
    assert config.api_key_file == Path("/etc/reader-agent/api.key")


def test_a_bad_business_step_names_its_key_and_line_and_the_likely_intent() -> None:
    text = text_of(biz_step="recieving")
    line = text.splitlines().index('  "biz_step": "recieving"') + 1
    message = refusal(text)
    assert message.startswith(f"agent.json line {line}: `biz_step` must be one of")
    assert "did you mean 'receiving'?" in message


@pytest.mark.parametrize(
    ("changes", "key", "words"),
    [
        ({"disposition": "in transit"}, "disposition", "CBV dispositions"),
        ({"upload_batch_size": 1001}, "upload_batch_size", "from 1 to 1000"),
        ({"upload_batch_size": True}, "upload_batch_size", "whole number"),
        ({"to_party": "0x" + "00" * 20}, "to_party", "zero address"),
        ({"from_party": ADDRESS.replace("a", "A", 1)}, "from_party", "checksum"),
        ({"read_point": "dock\n3"}, "read_point", "one line"),
        ({"api_url": "ftp://x"}, "api_url", "https://"),
        ({"device_address": "0x12"}, "device_address", "40 hex digits"),
        ({"sources": [{"kind": "nfc"}, {"kind": "webcam"}]}, "sources[1].kind", "source kind"),
        ({"sources": [{"kind": "camera", "width": "640"}]}, "sources[0].width", "int"),
        # What the config accepts the daemon can open: the sources' own option names.
        (
            {"sources": [{"kind": "serial", "port": "/dev/ttyACM0", "baudrate": 9600}]},
            "sources[0].baudrate",
            "not an option",
        ),
        ({"sources": [{"kind": "serial", "baud": 9600}]}, "sources[0]", "port: a serial source"),
        ({"gpio": {"buzzer": 40}}, "gpio.buzzer", "BCM pin"),
        ({"gpio": {"good": 5, "warning": 5}}, "gpio.warning", "another output"),
        ({"bizstep": "shipping"}, "bizstep", "not a config key"),
    ],
)
def test_each_bad_key_is_refused_on_its_own_line(changes, key, words) -> None:
    text = text_of(**changes)
    top = key.split(".")[0].split("[")[0]
    line = next(n for n, row in enumerate(text.splitlines(), 1) if row.startswith(f'  "{top}"'))
    message = refusal(text)
    assert f"`{key}`" in message and words in message, message
    nested_line = int(message.split(" line ")[1].split(":")[0])
    assert nested_line >= line, message


def test_nested_keys_are_found_on_their_own_line() -> None:
    text = '{\n  "sources": [\n    {"kind": "nfc"},\n    {\n      "kind": "webcam"\n    }\n  ]\n}'
    document = jsonfile.parse(text, "agent.json")
    assert document.line(("sources", 1, "kind")) == 5
    assert document.line(("sources", 1)) == 4
    assert document.line(("absent",)) == 1
    # What Python's json takes beyond JSON is located too (and then refused as a value).
    odd = jsonfile.parse('{"a": [NaN, -Infinity, "q\\"}"],\n "b": 1}', "agent.json")
    assert odd.line(("b",)) == 2


def test_a_missing_key_a_repeated_key_and_bad_json_are_refused() -> None:
    without = {k: v for k, v in PROVISIONED.items() if k != "outbox"}
    assert "`outbox` is missing" in refusal(json.dumps(without))
    repeated = '{\n "biz_step": "shipping",\n "biz_step": "receiving"\n}'
    assert refusal(repeated) == "agent.json line 3: `biz_step` appears twice; give each key once"
    assert refusal('{\n "api_url": "x",\n}').startswith("agent.json line 3: not valid JSON")
    assert refusal("[]") == "agent.json line 1: must be a JSON object"


def test_the_shared_vocabulary_has_the_steps_a_dock_door_uses() -> None:
    assert {"shipping", "receiving"} <= set(BIZ_STEPS)
    assert {"in_transit", "in_progress"} <= set(DISPOSITIONS)


# --- the operator's context -----------------------------------------------------------------

DEFAULTS = Context("receiving", "in_progress", "dock 3", from_party=OTHER)


def test_overrides_replace_the_config_defaults_field_by_field() -> None:
    overrides = parse_overrides('{"read_point": "dock 4", "from_party": null}', "context.json")
    assert merge(DEFAULTS, overrides) == Context("receiving", "in_progress", "dock 4", None, None)
    assert merge(DEFAULTS, {}) == DEFAULTS


def test_a_new_business_step_brings_its_disposition_unless_one_is_given() -> None:
    assert merge(DEFAULTS, {"biz_step": "shipping"}).disposition == "in_transit"
    chosen = {"biz_step": "shipping", "disposition": "in_progress"}
    assert merge(DEFAULTS, chosen).disposition == "in_progress"


def test_a_bad_context_file_names_its_key_and_line() -> None:
    with pytest.raises(ConfigError, match=r"context.json line 3: `biz_step` must be one of"):
        parse_overrides('{\n  "read_point": "dock 4",\n  "biz_step": "shiping"\n}', "context.json")
    with pytest.raises(ConfigError, match=r"`device_address` is not a context key"):
        parse_overrides(json.dumps({"device_address": ADDRESS}), "context.json")
