"""`reader-agent doctor --config FILE`: what stops the agent from working, in words.

Each check returns findings (firmware_tools.nfc.doctor's `Finding`): the config parses,
the device key opens with its passphrase, the API answers with the organization's key,
each serial scanner's port and each camera exists and opens, and the NFC reader (libnfc) is
there.
"""

from __future__ import annotations

from pathlib import Path

from firmware_tools.errors import FirmwareToolsError
from firmware_tools.nfc.doctor import ERROR, OK, WARNING, Finding, check_serial_device
from reader_agent.config import AgentConfig, load_api_key, load_config
from reader_agent.errors import ConfigError


def check_config(path: Path) -> tuple[AgentConfig | None, list[Finding]]:
    """The config, or None with the error naming the key and line."""
    try:
        config = load_config(path)
    except ConfigError as exc:
        return None, [Finding(ERROR, str(exc))]
    return config, [Finding(OK, f"{path} parses: device {config.device_address}")]


def check_device_key(config: AgentConfig) -> Finding:
    """The key file opens with its passphrase and holds the configured address."""
    from reader_agent.keyfile import open_device_key

    try:
        open_device_key(config)
    except (ConfigError, FirmwareToolsError) as exc:
        return Finding(ERROR, f"device key: {exc}")
    return Finding(OK, f"device key {config.device_key_file} opens: {config.device_address}")


def check_api(config: AgentConfig) -> Finding:
    """The API answers `GET /v1/trust` with the organization's API key."""
    import httpx

    from reader_agent.trust import TRUST_PATH
    from reader_agent.uploader import make_client

    try:
        api_key = load_api_key(config)
    except ConfigError as exc:
        return Finding(ERROR, str(exc))
    try:
        with make_client(config.api_url, api_key, timeout=10) as client:
            response = client.get(TRUST_PATH, params={"limit": 1})
    except httpx.HTTPError as exc:
        return Finding(ERROR, f"the API at {config.api_url} does not answer: {exc}")
    if response.status_code in (401, 403):
        return Finding(
            ERROR, f"the API refuses the key in {config.api_key_file} ({response.status_code})"
        )
    if response.status_code != 200:
        return Finding(ERROR, f"the API at {config.api_url} answered {response.status_code}")
    return Finding(OK, f"the API at {config.api_url} answers with the key")


def check_source(kind: str, options: dict) -> Finding:
    """A scanner's port or a camera exists and opens (not held by another program)."""
    from reader_agent.sources import SourceGone, build_source

    if kind == "serial":
        finding = check_serial_device(str(options.get("port")))
        if finding.level != OK:
            return finding
    try:
        source = build_source({"kind": kind, **options})
    except ValueError as exc:
        return Finding(ERROR, f"{kind} source: {exc}")
    try:
        source.open()
    except SourceGone as exc:
        if kind == "serial":
            return Finding(WARNING, f"{exc} (busy: is the agent already running?)")
        return Finding(ERROR, str(exc))
    finally:
        source.close()
    return Finding(OK, f"{source.name} opens")


def check_agent(path: Path) -> list[Finding]:
    """Every check for the agent configured in `path`."""
    from firmware_tools.nfc.doctor import doctor as nfc_doctor

    config, findings = check_config(path)
    if config is None:
        return findings
    findings.append(check_device_key(config))
    findings.append(check_api(config))
    for source in config.sources:
        if source.kind == "nfc":
            findings += nfc_doctor(source.options.get("device") or None)
        else:
            findings.append(check_source(source.kind, source.options))
    return findings
