"""Delivery of the outbox to the API: batches in order, answers applied, backoff while it is away.

`drain_once` sends the oldest pending batch and applies the answer (its I/O goes through the
client and the outbox it is given); `backoff_delay` is pure; `Uploader.run` loops until
stopped. What each answer does:

- 200: each event's result is applied: accepted or duplicate acknowledge it (never sent
  again), rejected keeps it apart with the API's codes and reasons.
- no answer (connect error, timeout, reset) or 408, 409, 425, 429, 5xx: the batch stays
  pending and goes again after a full-jitter backoff (0.5 s doubling to 60 s). Resending is
  safe: the API answers an identical event it already stored as a duplicate.
- 413 or 422 for the whole body: the batch is halved until the one event the API refuses
  is found, which is then rejected locally with the API's message.
- any other 4xx (401: a wrong API key, 403): recorded as the last error, retried after the
  longest backoff: it will not pass until someone fixes the config, and must not spin.
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from reader_agent.outbox import ACCEPTED, DUPLICATE, REJECTED, Answer, Outbox, Pending

EVENTS_PATH = "/v1/events"
BACKOFF_BASE = 0.5
BACKOFF_CAP = 60.0
IDLE_POLL = 0.5
RETRYABLE = frozenset({408, 409, 425, 429})
IDLE, DELIVERED, UNREACHABLE, REFUSED = "idle", "delivered", "unreachable", "refused"
FAILED = "failed"  # the outbox could not be read or written


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one drain did: `kind` is idle, delivered, unreachable, refused (or failed)."""

    kind: str
    sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    status_code: int | None = None
    error: str | None = None


def backoff_delay(failures: int, rand: Callable[[], float] = random.random) -> float:
    """Full jitter: uniform in [0, min(60 s, 0.5 s * 2**failures)). Pure given `rand`."""
    return rand() * min(BACKOFF_CAP, BACKOFF_BASE * 2 ** min(failures, 16))


def make_client(api_url: str, api_key: str, *, timeout: float = 30.0) -> httpx.Client:
    """An httpx client for the API at `api_url` that presents the organization's API key."""
    return httpx.Client(
        base_url=api_url,
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
    )


def drain_once(
    outbox: Outbox, client: httpx.Client, *, limit: int, clock: Callable[[], float] = time.time
) -> Outcome:
    """Send the oldest `limit` pending events in one request and apply the answer."""
    batch = outbox.pending(limit)
    if not batch:
        return Outcome(IDLE)
    ids = [pending.id for pending in batch]
    # The bodies are sent exactly as recorded: a resend is byte-identical to the first send.
    content = ('{"events":[' + ",".join(pending.body for pending in batch) + "]}").encode()
    try:
        response = client.post(
            EVENTS_PATH, content=content, headers={"Content-Type": "application/json"}
        )
    except httpx.RequestError as exc:  # no usable answer: connect, timeout, reset, garbled
        message = f"API unreachable: {type(exc).__name__}: {exc}"
        outbox.note_error(message, clock(), ids)
        return Outcome(UNREACHABLE, sent=len(batch), error=message)
    status = response.status_code
    if status == 200:
        try:
            answers = _answers(batch, response.json())
        except (ValueError, KeyError, TypeError) as exc:
            message = f"the API's answer does not match the batch sent: {exc}"
            outbox.note_error(message, clock(), ids)
            return Outcome(UNREACHABLE, sent=len(batch), status_code=status, error=message)
        outbox.apply(answers, clock())
        return Outcome(
            DELIVERED,
            sent=len(batch),
            accepted=sum(a.status == ACCEPTED for a in answers),
            duplicates=sum(a.status == DUPLICATE for a in answers),
            rejected=sum(a.status == REJECTED for a in answers),
            status_code=status,
        )
    message = f"API answered {status}: {_error_text(response)}"
    if status in (413, 422) and len(batch) == 1:
        # The API refuses this one event's body: no resend of it can ever pass.
        code = "too_large" if status == 413 else "invalid_body"
        outbox.apply([Answer(batch[0].id, REJECTED, (code,), (message,))], clock())
        return Outcome(DELIVERED, sent=1, rejected=1, status_code=status, error=message)
    outbox.note_error(message, clock(), ids)
    kind = UNREACHABLE if status in RETRYABLE or status >= 500 else REFUSED
    return Outcome(kind, sent=len(batch), status_code=status, error=message)


def _answers(batch: list[Pending], body: Any) -> list[Answer]:
    results = body["results"]
    if len(results) != len(batch):
        raise ValueError(f"{len(results)} results for {len(batch)} events")
    answers = []
    for pending, result in zip(batch, sorted(results, key=lambda r: r["index"]), strict=True):
        if result["event_id"] != pending.event_id:
            raise ValueError(f"result for {result['event_id']}, expected {pending.event_id}")
        status = result["status"]
        if status not in (ACCEPTED, DUPLICATE, REJECTED):
            raise ValueError(f"unknown status {status!r}")
        codes = tuple(str(code) for code in result.get("codes") or ())
        reasons = tuple(str(reason) for reason in result.get("reasons") or ())
        answers.append(Answer(pending.id, status, codes, reasons))
    return answers


def _error_text(response: httpx.Response) -> str:
    """The API's error body in one line: its message and each refused field."""
    try:
        body = response.json()
        text = str(body.get("message") or body.get("error") or "")
        fields = body.get("fields") or {}
        if fields:
            text += " (" + "; ".join(f"{key}: {value}" for key, value in fields.items()) + ")"
        return text or response.reason_phrase
    except (ValueError, AttributeError):
        return response.text[:200] or response.reason_phrase


class Uploader:
    """The delivery loop: drains while there is work, waits when idle, backs off when refused."""

    def __init__(
        self,
        outbox: Outbox,
        client: httpx.Client,
        *,
        batch_size: int,
        rand: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.outbox = outbox
        self.client = client
        self.batch_size = batch_size
        self.last: Outcome | None = None
        self._rand = rand
        self._clock = clock
        self._wake = threading.Event()

    def notify(self) -> None:
        """Start delivering now (after a new event was recorded) instead of at the next poll."""
        self._wake.set()

    def run(self, stop: threading.Event) -> None:
        """Deliver until `stop` is set; never raises for the API's or the network's failures."""
        failures = 0
        limit = self.batch_size
        while not stop.is_set():
            try:
                outcome = drain_once(self.outbox, self.client, limit=limit, clock=self._clock)
            except sqlite3.Error as exc:
                # The outbox itself failed (disk full, I/O error): nothing was lost; try later.
                self.last = Outcome(FAILED, error=f"outbox: {exc}")
                stop.wait(BACKOFF_CAP)
                continue
            self.last = outcome
            if outcome.kind == DELIVERED:
                failures = 0
                limit = min(self.batch_size, limit * 2)  # back to full size after a split
            elif outcome.kind == IDLE:
                failures = 0
                self._wake.wait(IDLE_POLL)
                self._wake.clear()
            elif outcome.kind == REFUSED and outcome.status_code in (413, 422) and limit > 1:
                limit = max(1, min(limit, outcome.sent) // 2)  # narrow down the refused event
            elif outcome.kind == UNREACHABLE:
                stop.wait(backoff_delay(failures, self._rand))
                failures += 1
            else:
                stop.wait(BACKOFF_CAP)
