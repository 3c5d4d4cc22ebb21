"""The daemon: reads from the sources, a local verdict, a signed event made durable, delivery.

Each source has a thread that reads through its `Supervisor` (reopened with backoff) and
hands every read to `Daemon.handle`: the repeat window, the local verdict from the cached
trust material, the event built in the operator's current context and signed, then
`Outbox.record`. Only once that returns is the scan said to be "recorded". The uploader
thread delivers the outbox and tells each of the API's answers; a trust thread refreshes
the cache; a status thread rewrites a small JSON file beside the outbox for `status`.
Logs are JSON lines on stdout (journald). SIGTERM or SIGINT stops it cleanly.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from reader_agent.config import AgentConfig
from reader_agent.context import ContextWatcher
from reader_agent.errors import EventError
from reader_agent.events import new_event
from reader_agent.feedback import Feedback
from reader_agent.files import replace_file
from reader_agent.outbox import Answer, Outbox, Pending
from reader_agent.reads import Read
from reader_agent.sources import Source, UnreadableTag, build_source
from reader_agent.sources.supervisor import Supervisor
from reader_agent.sources.window import DEFAULT_WINDOW, RepeatWindow
from reader_agent.trust import TrustCache
from reader_agent.uploader import Uploader
from reader_agent.verdict import REJECTED, Verdict, local_verdict, unreadable

log = logging.getLogger("reader_agent.daemon")

READ_TIMEOUT = 0.5  # how soon a source thread notices a stop
STATUS_SECONDS = 1.0
STATUS_STALE_SECONDS = 10.0  # `status` says the daemon is not running past this
JOIN_SECONDS = 15.0
KEEP_ACKNOWLEDGED_SECONDS = 7 * 86400  # delivered events kept a week for `status`, then pruned
PRUNE_EVERY_SECONDS = 3600.0


def status_path(config: AgentConfig) -> Path:
    """The daemon's status file, beside the outbox: `outbox.db` -> `outbox.status.json`."""
    return config.outbox.with_suffix(".status.json")


def trust_cache_path(config: AgentConfig) -> Path:
    """The trust cache, beside the outbox: `outbox.db` -> `outbox.trust.json`."""
    return config.outbox.with_suffix(".trust.json")


def build_sources(config: AgentConfig) -> list[Source]:
    """The config's sources, closed; ValueError names the refused option."""
    built = []
    for index, spec in enumerate(config.sources):
        try:
            built.append(build_source({"kind": spec.kind, **spec.options}, window=DEFAULT_WINDOW))
        except ValueError as exc:
            raise ValueError(f"sources[{index}].{exc}") from None
    return built


class JsonLines(logging.Formatter):
    """One JSON object per log record: time, level, logger, msg and the record's `fields`."""

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, UTC)
        entry: dict[str, Any] = {
            "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def log_json_lines(stream: TextIO = sys.stdout, level: int = logging.INFO) -> None:
    """Send every log record of the process to `stream` as JSON lines."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLines())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    logging.getLogger("httpcore").setLevel(logging.WARNING)


def write_status(path: Path, status: dict[str, Any]) -> None:
    """Replace the status file atomically, so that `status` never reads half of it."""
    # Not durable: the file is rewritten every second.
    replace_file(path, json.dumps(status, default=str), durable=False)


class AnswerReporter:
    """The uploader's view of the outbox: each answer it applies is also told to the operator."""

    def __init__(self, outbox: Outbox, feedback: Feedback) -> None:
        self._outbox = outbox
        self._feedback = feedback
        self._sent: dict[int, Pending] = {}

    def pending(self, limit: int) -> list[Pending]:
        batch = self._outbox.pending(limit)
        self._sent = {pending.id: pending for pending in batch}
        return batch

    def apply(self, answers: Iterable[Answer], now: float) -> None:
        answers = list(answers)
        self._outbox.apply(answers, now)  # durable first, then said
        for answer in answers:
            fields: dict[str, Any] = {"row": answer.id}
            pending = self._sent.get(answer.id)
            if pending is not None:
                body = json.loads(pending.body)
                fields.update(event_id=pending.event_id, gtin=body.get("gtin"))
                fields["serial"] = body.get("serial")
            if answer.codes:
                fields.update(codes=list(answer.codes), reasons=list(answer.reasons))
            self._feedback.answer(answer.status, fields)

    def note_error(self, message: str, now: float, ids: Sequence[int] = ()) -> None:
        self._outbox.note_error(message, now, ids)
        log.warning("upload failed", extra={"fields": {"error": message, "events": len(ids)}})


class Daemon:
    """The running agent: its sources, outbox, uploader, trust cache and context."""

    def __init__(
        self,
        config: AgentConfig,
        *,
        device_key: bytes,
        outbox: Outbox,
        sources: Sequence[Source],
        trust: TrustCache,
        uploader: Uploader,
        feedback: Feedback,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.outbox = outbox
        self.supervisors = [Supervisor(source) for source in sources]
        self.trust = trust
        self.uploader = uploader
        self.feedback = feedback
        self.context = ContextWatcher(config.context_file, config.context)
        self.window = RepeatWindow(DEFAULT_WINDOW)
        self.recorded = 0
        self.failed: str | None = None
        self._device_key = device_key
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.Lock()  # one scan at a time: window, context, record
        self._started_at = clock()
        self._stop = threading.Event()

    # --- one scan ----------------------------------------------------------------------

    def handle(self, read: Read) -> Verdict | None:
        """One read: the window, the verdict, the event recorded durably; None if a repeat."""
        began = self._monotonic()
        with self._lock:
            if not self.window.admit(read, began):
                log.debug("repeat within the window", extra={"fields": {"source": read.source}})
                return None
            context = self.context.current()
            verdict = local_verdict(read, self.trust.suppliers)
            fields: dict[str, Any] = {
                "source": read.source,
                "gtin": verdict.gtin,
                "serial": verdict.serial,
                "reasons": list(verdict.reasons),
            }
            if not verdict.record:
                fields["url"] = read.url[:200]
                self.feedback.scan(verdict.level, False, fields)
                return verdict
            try:
                event = new_event(
                    read,
                    context,
                    device_key=self._device_key,
                    device_address=self.config.device_address,
                )
                row = self.outbox.record(event, now=self._clock())
            except (EventError, sqlite3.Error, OSError) as exc:
                fields["reasons"] = [*verdict.reasons, f"not recorded: {exc}"]
                self.feedback.scan(REJECTED, False, fields)
                return Verdict(REJECTED, tuple(fields["reasons"]), verdict.gtin, verdict.serial)
            self.recorded += 1
        durable_ms = round((self._monotonic() - began) * 1000, 2)
        fields.update(
            event_id=event["event_id"], row=row, biz_step=context.biz_step, durable_ms=durable_ms
        )
        self.feedback.scan(verdict.level, True, fields)
        self.uploader.notify()
        return verdict

    def unreadable(self, exc: UnreadableTag, source: str) -> Verdict:
        """A read the source could not make sense of: rejected, nothing recorded."""
        verdict = unreadable(str(exc))
        fields = {"source": source, "reasons": list(verdict.reasons)}
        self.feedback.scan(verdict.level, False, fields)
        return verdict

    # --- threads -------------------------------------------------------------------------

    def _read_loop(self, supervisor: Supervisor) -> None:
        while not self._stop.is_set():
            try:
                read = supervisor.read(READ_TIMEOUT)
            except UnreadableTag as exc:
                self.unreadable(exc, supervisor.source.name)
                continue
            if read is not None:
                self.handle(read)

    def _status_loop(self) -> None:
        next_prune = self._monotonic()
        while not self._stop.wait(STATUS_SECONDS):
            self.write_status()
            if self._monotonic() >= next_prune:
                next_prune = self._monotonic() + PRUNE_EVERY_SECONDS
                self.prune()

    def prune(self) -> int:
        """Delete events the API acknowledged over a week ago, so the SD card never fills."""
        try:
            pruned = self.outbox.prune(self._clock() - KEEP_ACKNOWLEDGED_SECONDS)
        except sqlite3.Error as exc:
            log.warning("cannot prune the outbox: %s", exc)
            return 0
        if pruned:
            log.info("pruned delivered events", extra={"fields": {"events": pruned}})
        return pruned

    def status(self, *, running: bool = True) -> dict[str, Any]:
        """What the status file holds (the outbox figures `status` reads itself)."""
        with self._lock:
            context = self.context.current()
            context_error = self.context.error
        last = self.uploader.last
        return {
            "pid": os.getpid(),
            "running": running,
            "started_at": self._started_at,
            "updated_at": self._clock(),
            "device": self.config.device_address,
            "recorded_this_run": self.recorded,
            "sources": [supervisor.state().as_dict() for supervisor in self.supervisors],
            "context": asdict(context),
            "context_error": context_error,
            "trust": self.trust.state(),
            "uploader": None if last is None else {"kind": last.kind, "error": last.error},
            "failed": self.failed,
        }

    def write_status(self, *, running: bool = True) -> None:
        try:
            write_status(status_path(self.config), self.status(running=running))
        except OSError as exc:
            log.warning("cannot write the status file: %s", exc)

    def _guarded(self, name: str, target: Callable[..., None], *args: Any) -> threading.Thread:
        def run() -> None:
            try:
                target(*args)
            except Exception:
                # A bug, not a reader or network failure (those are handled where they
                # happen): stop, so that systemd restarts the agent with a clean state.
                log.exception("%s thread failed; stopping", name)
                self.failed = f"{name} thread failed"
                self._stop.set()

        return threading.Thread(target=run, name=name, daemon=True)

    def run(self, stop: threading.Event) -> int:
        """Run until `stop` is set (or a thread fails); the exit code: 0, or 1 after a failure."""
        self._stop = stop
        threads = [
            self._guarded("uploader", self.uploader.run, stop),
            self._guarded("trust", self.trust.run, stop),
            self._guarded("status", self._status_loop),
        ]
        for supervisor in self.supervisors:
            threads.append(self._guarded(supervisor.source.name, self._read_loop, supervisor))
        names = [supervisor.source.name for supervisor in self.supervisors]
        log.info(
            "started",
            extra={
                "fields": {
                    "device": self.config.device_address,
                    "sources": names,
                    "outbox": str(self.config.outbox),
                    "pending": self.outbox.depth(),
                    "trusted_gtins": len(self.trust.suppliers),
                }
            },
        )
        self.write_status()
        for thread in threads:
            thread.start()
        try:
            while not stop.wait(1.0):
                pass
        finally:
            stop.set()
            self.uploader.notify()
            for thread in threads:
                thread.join(JOIN_SECONDS)
            for supervisor in self.supervisors:
                supervisor.close()
            self.write_status(running=False)
            self.outbox.close()
            self.feedback.close()
            log.info("stopped", extra={"fields": {"recorded_this_run": self.recorded}})
        return 1 if self.failed else 0


def stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM (systemd) and SIGINT (Ctrl-C) set `stop`; the daemon then ends cleanly."""

    def handler(signum: int, frame: object) -> None:
        log.info("signal received, stopping", extra={"fields": {"signal": signum}})
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def build(config: AgentConfig, device_key: bytes) -> Daemon:
    """The daemon for `config`, with the real adapters (the agent's composition root)."""
    from reader_agent.config import load_api_key
    from reader_agent.feedback import make_feedback
    from reader_agent.uploader import make_client

    api_key = load_api_key(config)
    sources = build_sources(config)
    feedback = make_feedback(config.gpio)
    outbox = Outbox(config.outbox)
    trust = TrustCache(trust_cache_path(config), make_client(config.api_url, api_key, timeout=10))
    client = make_client(config.api_url, api_key, timeout=10)
    uploader = Uploader(
        AnswerReporter(outbox, feedback),  # type: ignore[arg-type]  # the outbox's interface
        client,
        batch_size=config.upload_batch_size,
    )
    return Daemon(
        config,
        device_key=device_key,
        outbox=outbox,
        sources=sources,
        trust=trust,
        uploader=uploader,
        feedback=feedback,
    )
