"""The `reader-agent` command: the dock-door daemon's entry point."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import click

from reader_agent.errors import AgentError

config_option = click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The agent's config (written by `firmware-tools device provision`).",
)


def fail(message: str) -> NoReturn:
    """Say what is wrong on stderr and exit 1 (no traceback)."""
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def load(config_path: Path):
    from reader_agent.config import load_config

    try:
        return load_config(config_path)
    except AgentError as exc:
        fail(str(exc))


def when(seconds: float | None) -> str | None:
    """UTC seconds as ISO 8601, for people and JSON alike."""
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


@click.group()
@click.version_option(package_name="provenance")
def main() -> None:
    """Read tags at a dock door and upload signed custody handoffs.

    \b
    Example:
      reader-agent run --config /etc/reader-agent/agent.json
      reader-agent status --config /etc/reader-agent/agent.json
      reader-agent context set --config /etc/reader-agent/agent.json biz_step=shipping
      reader-agent doctor --config /etc/reader-agent/agent.json
    """


@main.command()
@config_option
def run(config_path: Path) -> None:
    """Run the daemon: scan, record durably, upload; JSON logs on stdout.

    \b
    Example:
      reader-agent run --config /etc/reader-agent/agent.json
    """
    import signal
    import threading

    from firmware_tools.errors import FirmwareToolsError
    from reader_agent.keyfile import open_device_key

    stop = threading.Event()
    # First: a SIGTERM while the key is opened still ends cleanly.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    config = load(config_path)
    try:
        # Before the daemon's modules are imported: scrypt's 32 MiB then sit on a small base.
        device_key = open_device_key(config)
    except (AgentError, FirmwareToolsError) as exc:
        fail(str(exc))
    from reader_agent.daemon import build, log_json_lines, stop_on_signals
    from reader_agent.outbox import OutboxError

    try:
        daemon = build(config, device_key)
    except (AgentError, OutboxError, ValueError) as exc:
        fail(str(exc))
    stop_on_signals(stop)
    log_json_lines()
    sys.exit(daemon.run(stop))


def gather_status(config) -> dict[str, Any]:
    """The outbox's figures and the daemon's status file, as one JSON-ready object."""
    from reader_agent.daemon import STATUS_STALE_SECONDS, status_path
    from reader_agent.outbox import Outbox, OutboxError

    if not config.outbox.exists():
        fail(f"no outbox at {config.outbox}: the agent has not run yet")
    try:
        with Outbox(config.outbox) as outbox:
            last_error = outbox.last_error()
            found: dict[str, Any] = {
                "outbox": str(config.outbox),
                "depth": outbox.depth(),
                "counts": outbox.counts(),
                "last_upload": when(outbox.last_upload()),
                "last_error": None
                if last_error is None
                else {"at": when(last_error[0]), "message": last_error[1]},
                "rejected": [
                    {
                        "event_id": r.event_id,
                        "gtin": r.gtin,
                        "serial": r.serial,
                        "codes": list(r.codes),
                        "reasons": list(r.reasons),
                        "answered_at": when(r.answered_at),
                    }
                    for r in outbox.rejected(20)
                ],
            }
    except OutboxError as exc:
        fail(str(exc))
    try:
        daemon = json.loads(status_path(config).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        daemon = None
    running = (
        daemon is not None
        and daemon.get("running")
        and time.time() - daemon.get("updated_at", 0) < STATUS_STALE_SECONDS
    )
    found["daemon"] = {"running": bool(running), **(daemon or {})}
    return found


@main.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def status(config_path: Path, as_json: bool) -> None:
    """Outbox depth, last upload and error, rejected events, and the sources' state.

    \b
    Example:
      reader-agent status --config /etc/reader-agent/agent.json --json
    """
    found = gather_status(load(config_path))
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    daemon = found["daemon"]
    click.echo(f"daemon: {'running' if daemon['running'] else 'not running'}")
    click.echo(f"outbox: {found['depth']} pending, {found['counts']['acknowledged']} delivered")
    click.echo(f"last upload: {found['last_upload'] or 'never'}")
    if found["last_error"]:
        click.echo(f"last error: {found['last_error']['at']} {found['last_error']['message']}")
    for source in daemon.get("sources", []):
        state = "connected" if source["connected"] else f"reconnecting ({source['last_error']})"
        click.echo(f"source {source['source']}: {state}")
    if daemon.get("context"):
        context = daemon["context"]
        click.echo(f"context: {context['biz_step']} at {context['read_point']}")
    if daemon.get("context_error"):
        click.echo(f"context file refused: {daemon['context_error']}")
    trust = daemon.get("trust")
    if trust:
        click.echo(f"trust: {trust['gtins']} GTINs, fetched {when(trust['fetched_at']) or 'never'}")
    click.echo(f"rejected: {found['counts']['rejected']}")
    for rejected in found["rejected"]:
        reasons = "; ".join(rejected["reasons"]) or ", ".join(rejected["codes"])
        click.echo(f"  {rejected['gtin']} {rejected['serial']} {rejected['event_id']}: {reasons}")


@main.command()
@config_option
@click.option("--timeout", default=30.0, show_default=True, help="Seconds to wait for a tag.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def scan(config_path: Path, timeout: float, as_json: bool) -> None:
    """Read one tag from the first source and print it with its local verdict (not recorded).

    \b
    Example:
      reader-agent scan --config /etc/reader-agent/agent.json --timeout 10
    """
    from dataclasses import asdict

    from reader_agent.daemon import build_sources, trust_cache_path
    from reader_agent.sources import SourceError, UnreadableTag
    from reader_agent.trust import load_cache
    from reader_agent.verdict import local_verdict, unreadable

    config = load(config_path)
    try:
        source = build_sources(config)[0]
    except ValueError as exc:
        fail(str(exc))
    suppliers, _ = load_cache(trust_cache_path(config))
    try:
        source.open()
        read = source.read(timeout)
        found: dict[str, Any]
        if read is None:
            fail(f"no tag read from {source.name} within {timeout:g} s")
        verdict = local_verdict(read, suppliers)
        found = {"url": read.url, "source": read.source, "uid": read.uid.hex().upper() or None}
    except UnreadableTag as exc:
        verdict, found = unreadable(str(exc)), {"source": source.name}
    except SourceError as exc:
        fail(str(exc))
    finally:
        source.close()
    found.update(asdict(verdict))
    if as_json:
        click.echo(json.dumps(found, indent=2))
    else:
        click.echo(f"{verdict.level}: {found.get('url', '')}")
        for reason in verdict.reasons:
            click.echo(f"  {reason}")
    sys.exit(0 if verdict.level != "rejected" else 1)


@main.group()
def context() -> None:
    """The operator's context: business step, read point, counterparties."""


@context.command("set")
@config_option
@click.argument("assignments", nargs=-1, required=True)
def context_set(config_path: Path, assignments: tuple[str, ...]) -> None:
    """Change the context; the running daemon uses it from the next scan on.

    KEY is biz_step, disposition, read_point, from_party or to_party; `null` clears it
    (back to the config's value; no party for from_party and to_party).

    \b
    Example:
      reader-agent context set --config agent.json biz_step=shipping to_party=0xAbC...
    """
    from reader_agent.context import update_context

    config = load(config_path)
    changes: dict[str, str | None] = {}
    for assignment in assignments:
        key, equals, value = assignment.partition("=")
        if not equals or not key:
            fail(f"{assignment!r}: expected key=value, e.g. biz_step=shipping")
        changes[key.strip()] = None if value in ("null", "") else value
    set_at = datetime.now(UTC).isoformat(timespec="seconds")
    try:
        overrides = update_context(config.context_file, changes, set_at)
    except (AgentError, OSError) as exc:
        fail(str(exc))
    click.echo(json.dumps(overrides, indent=2))


@main.command()
@click.option(
    "--config",
    "config_path",
    default=None,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Check the agent's config, device key, API and sources too.",
)
@click.option("--device", "connstring", default=None, help="libnfc connstring; default: any.")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
def doctor(config_path: Path | None, connstring: str | None, as_json: bool) -> None:
    """Find what stops the agent from working and say it in words.

    \b
    Example:
      reader-agent doctor --config /etc/reader-agent/agent.json
      reader-agent doctor --device pn532_uart:/dev/ttyUSB0
    """
    from firmware_tools.nfc.doctor import doctor as nfc_doctor
    from firmware_tools.nfc.doctor import has_errors

    if config_path is not None:
        from reader_agent.doctor import check_agent

        findings = check_agent(config_path)
        if connstring is not None:
            findings += nfc_doctor(connstring)
    else:
        findings = nfc_doctor(connstring)
    if as_json:
        click.echo(json.dumps([finding.as_dict() for finding in findings], indent=2))
    else:
        for finding in findings:
            click.echo(str(finding))
    sys.exit(1 if has_errors(findings) else 0)
