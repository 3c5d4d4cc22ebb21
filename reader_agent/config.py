"""The agent's config: the file `firmware-tools device provision` writes, and the agent's keys.

`parse_config` is pure (text in, `AgentConfig` out; a ConfigError names the key and its
line: ``agent.json line 7: `biz_step` must be one of ...``); `load_config`, `load_api_key`
and `load_device_key` are the file edge. Relative paths are relative to the config's folder.

Keys of the JSON object (the first five are what provisioning writes)::

    api_url            required  base URL of the API: http(s)://host[:port][/prefix]
    device_key_file    required  the device's key file (encrypted)
    device_address     required  the device key's address, as registered with the API
    outbox             required  the outbox (SQLite file)
    reader             ""        libnfc connstring of the NFC reader ("" = the first found)
    api_key_file       null      file holding the organization's API key (one line)
    passphrase_file    null      file holding the device key's passphrase
    context_file       null      the operator's context file; null: context.json beside the outbox
    biz_step           "receiving"           CBV business step (short name)
    disposition        by biz_step           CBV disposition (context.default_disposition)
    read_point         the device address    where it is read: an SGLN URI or your own id
    from_party         null      the giver's address, for a handoff
    to_party           null      the taker's address, for a handoff
    sources            [{"kind": "nfc", "device": <reader>}]
                       each {"kind": "nfc" | "serial" | "camera", ...its options}
    upload_batch_size  100       events per request, 1 to 1,000 (the API's maximum)
    gpio               null      BCM pin numbers: {"buzzer": 17, "good": 22, "warning": 23,
                                 "rejected": 24}; each optional
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from firmware_tools.errors import FormatError
from firmware_tools.formats.gs1 import check_host
from firmware_tools.formats.qr import address_bytes, checksummed
from reader_agent import jsonfile
from reader_agent.context import Context, check_context, default_disposition
from reader_agent.errors import ConfigError
from reader_agent.sources import source_options

UPLOAD_BATCH_MAX = 1_000  # the API's EVENTS_PER_BATCH_MAX
UPLOAD_BATCH_DEFAULT = 100
DEFAULT_BIZ_STEP = "receiving"
GPIO_OUTPUTS = ("buzzer", "good", "warning", "rejected")
GPIO_PIN_MAX = 27  # BCM GPIO 0-27 on a Raspberry Pi's 40-pin header
_KEYS = (
    "api_url",
    "device_key_file",
    "device_address",
    "outbox",
    "reader",
    "api_key_file",
    "passphrase_file",
    "context_file",
    "biz_step",
    "disposition",
    "read_point",
    "from_party",
    "to_party",
    "sources",
    "upload_batch_size",
    "gpio",
)
_REQUIRED = ("api_url", "device_key_file", "device_address", "outbox")


@dataclass(frozen=True)
class SourceConfig:
    """One tag source: its kind and its options (e.g. {"port": "/dev/ttyACM0"})."""

    kind: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AgentConfig:
    """The checked config; paths are absolute, addresses checksummed."""

    api_url: str
    device_key_file: Path
    device_address: str
    outbox: Path
    context_file: Path
    context: Context  # the defaults; the context file overrides them
    sources: tuple[SourceConfig, ...]
    upload_batch_size: int = UPLOAD_BATCH_DEFAULT
    reader: str = ""
    api_key_file: Path | None = None
    passphrase_file: Path | None = None
    gpio: dict[str, int] = field(default_factory=dict)


def parse_config(text: str, *, name: str = "agent.json", base: Path = Path()) -> AgentConfig:
    """The config in `text`; `name` is for messages, `base` resolves relative paths. Pure."""
    document = jsonfile.parse(text, name)
    data = document.data
    if not isinstance(data, dict):
        raise document.error((), "must be a JSON object")
    for key in data:
        if key not in _KEYS:
            raise document.error((key,), f"is not a config key (known: {', '.join(_KEYS)})")
    for key in _REQUIRED:
        if key not in data:
            raise document.error(
                (), f"`{key}` is missing (rerun `firmware-tools device provision`)"
            )

    def path_of(key: str, *, optional: bool = False) -> Path | None:
        value = data.get(key)
        if value is None and optional:
            return None
        if not isinstance(value, str) or not value.strip():
            raise document.error((key,), "must be a file path (a non-empty string)")
        return base / Path(value).expanduser()

    api_url = data["api_url"]
    if not isinstance(api_url, str) or not api_url.lower().startswith(("https://", "http://")):
        raise document.error(("api_url",), "must start with https:// or http://")
    try:
        api_url = check_host(api_url)
    except FormatError as exc:
        raise document.error(("api_url",), str(exc)) from None
    address = _address(document, data["device_address"])
    reader = data.get("reader", "")
    if not isinstance(reader, str):
        raise document.error(("reader",), "must be a libnfc connstring (a string)")
    outbox = path_of("outbox")
    assert outbox is not None
    context_file = path_of("context_file", optional=True) or outbox.with_name("context.json")
    checked = check_context(document, data)
    biz_step = checked.get("biz_step", DEFAULT_BIZ_STEP)
    context = Context(
        biz_step=biz_step,
        disposition=checked.get("disposition", default_disposition(biz_step)),
        read_point=checked.get("read_point", address),
        from_party=checked.get("from_party"),
        to_party=checked.get("to_party"),
    )
    device_key_file = path_of("device_key_file")
    assert device_key_file is not None
    return AgentConfig(
        api_url=api_url,
        device_key_file=device_key_file,
        device_address=address,
        outbox=outbox,
        context_file=context_file,
        context=context,
        sources=_sources(document, data.get("sources"), reader),
        upload_batch_size=_batch_size(document, data.get("upload_batch_size")),
        reader=reader,
        api_key_file=path_of("api_key_file", optional=True),
        passphrase_file=path_of("passphrase_file", optional=True),
        gpio=_gpio(document, data.get("gpio")),
    )


def _address(document: jsonfile.Document, value: Any) -> str:
    try:
        raw = address_bytes(value)
    except FormatError as exc:
        raise document.error(("device_address",), str(exc)) from None
    return checksummed(raw)


def _batch_size(document: jsonfile.Document, value: Any) -> int:
    if value is None:
        return UPLOAD_BATCH_DEFAULT
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= UPLOAD_BATCH_MAX:
        raise document.error(
            ("upload_batch_size",), f"must be a whole number from 1 to {UPLOAD_BATCH_MAX}"
        )
    return value


def _sources(document: jsonfile.Document, value: Any, reader: str) -> tuple[SourceConfig, ...]:
    if value is None:
        return (SourceConfig("nfc", {"device": reader}),)
    if not isinstance(value, list) or not value:
        raise document.error(("sources",), "must be a non-empty list of sources")
    sources = []
    for index, entry in enumerate(value):
        at = ("sources", index)
        if not isinstance(entry, dict):
            raise document.error(at, 'must be an object such as {"kind": "nfc"}')
        try:
            # The sources' own rule, so that what the config accepts the daemon can open.
            kind, _ = source_options(entry)
        except ValueError as exc:
            key, _, message = str(exc).partition(": ")
            if key in entry:
                raise document.error((*at, key), message) from None
            raise document.error(at, str(exc)) from None
        options = {key: item for key, item in entry.items() if key != "kind"}
        sources.append(SourceConfig(kind, options))
    return tuple(sources)


def _gpio(document: jsonfile.Document, value: Any) -> dict[str, int]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise document.error(("gpio",), f"must be an object of pins: {', '.join(GPIO_OUTPUTS)}")
    pins: dict[str, int] = {}
    for key, pin in value.items():
        if key not in GPIO_OUTPUTS:
            raise document.error(("gpio", key), f"is not an output ({', '.join(GPIO_OUTPUTS)})")
        if pin is None:
            continue
        if not isinstance(pin, int) or isinstance(pin, bool) or not 0 <= pin <= GPIO_PIN_MAX:
            raise document.error(
                ("gpio", key), f"must be a BCM pin number from 0 to {GPIO_PIN_MAX}"
            )
        if pin in pins.values():
            raise document.error(("gpio", key), f"uses pin {pin}, which another output uses")
        pins[key] = pin
    return pins


def load_config(path: str | os.PathLike) -> AgentConfig:
    """Read and check the config file at `path` (ConfigError names the file, key and line)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path.name} is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    return parse_config(text, name=path.name, base=path.resolve().parent)


def load_api_key(config: AgentConfig) -> str:
    """The organization's API key from `api_key_file` (the only line; spaces trimmed)."""
    if config.api_key_file is None:
        raise ConfigError("no `api_key_file` in the config: the agent cannot upload without it")
    try:
        key = config.api_key_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(
            f"cannot read api_key_file {config.api_key_file}: {exc.strerror}"
        ) from None
    if not key or any(char.isspace() for char in key):
        raise ConfigError(f"api_key_file {config.api_key_file} must hold the API key on one line")
    return key


def load_device_key(config: AgentConfig, passphrase: str) -> bytes:
    """The device's signing key; refuses a key file whose address is not `device_address`."""
    from firmware_tools.keys import load_key_file

    keys = load_key_file(config.device_key_file, passphrase)
    if keys.address != config.device_address:
        raise ConfigError(
            f"the key file {config.device_key_file} holds {keys.address}, but the config's"
            f" device_address is {config.device_address}"
        )
    return keys.signing_key
