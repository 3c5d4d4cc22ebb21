"""Keeps a source open: a reader that fails is closed and reopened with backoff.

The agent never restarts for a reader: unplugged, hung or not yet plugged in, the source
is retried after a delay that doubles up to a bound, with jitter so that several agents
on one flaky USB hub do not retry in step. Clock, sleep and randomness are arguments, so
that the rule is tested without waiting.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from reader_agent.reads import Read
from reader_agent.sources import Source, SourceGone, UnreadableTag

log = logging.getLogger("reader_agent.sources")

INITIAL_DELAY = 0.5  # seconds before the first reopen
MAX_DELAY = 30.0  # a reader plugged back in is found within this


def backoff_delay(failures: int, rand: float, *, initial: float, maximum: float) -> float:
    """Seconds to wait after `failures` failures in a row; `rand` is uniform in [0, 1).

    Pure. "Equal jitter": half the capped exponential delay, plus up to the other half.

    >>> [backoff_delay(n, 0.0, initial=0.5, maximum=30.0) for n in (1, 2, 3, 8, 100)]
    [0.25, 0.5, 1.0, 15.0, 15.0]
    >>> backoff_delay(100, 0.999999, initial=0.5, maximum=30.0) < 30.0
    True
    """
    ceiling = min(maximum, initial * 2.0 ** min(max(failures - 1, 0), 62))
    return ceiling / 2 + ceiling / 2 * rand


@dataclass(frozen=True)
class SourceState:
    """What `status` shows of one source; times are wall-clock UTC seconds."""

    source: str
    connected: bool
    reconnecting_since: float | None  # when it was lost (or first failed to open)
    failures: int  # failed opens since it was lost
    next_attempt_in: float | None  # seconds until the next reopen, when not connected
    last_error: str | None
    last_error_at: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Supervisor:
    """Wraps one source: `read(timeout)` opens it when due and turns failures into backoff.

    `read` returns a Read or None, or raises UnreadableTag (report it, read on). Safe to
    call `state()` from another thread while one thread reads.
    """

    def __init__(
        self,
        source: Source,
        *,
        initial: float = INITIAL_DELAY,
        maximum: float = MAX_DELAY,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.source = source
        self._initial = initial
        self._maximum = maximum
        self._monotonic = monotonic
        self._wall = wall
        self._sleep = sleep
        self._rand = rand
        self._lock = threading.Lock()
        self._connected = False
        self._next_open = monotonic()  # open at the first read
        self._failures = 0
        self._reconnecting_since: float | None = None
        self._last_error: str | None = None
        self._last_error_at: float | None = None

    def read(self, timeout: float) -> Read | None:
        """The next read within `timeout` seconds (opening the source when due), else None."""
        deadline = self._monotonic() + timeout
        if not self._connected:
            wait = self._next_open - self._monotonic()
            if wait > 0:
                self._sleep(min(wait, timeout))
                return None
            if not self._open():
                return None
        try:
            return self.source.read(max(0.0, deadline - self._monotonic()))
        except SourceGone as exc:
            self._lost(exc)
            return None
        except UnreadableTag as exc:
            log.warning("unreadable: %s", exc)
            raise

    def state(self) -> SourceState:
        """A snapshot for `status`."""
        with self._lock:
            waiting = None
            if not self._connected:
                waiting = round(max(0.0, self._next_open - self._monotonic()), 3)
            return SourceState(
                source=self.source.name,
                connected=self._connected,
                reconnecting_since=self._reconnecting_since,
                failures=self._failures,
                next_attempt_in=waiting,
                last_error=self._last_error,
                last_error_at=self._last_error_at,
            )

    def close(self) -> None:
        """Close the source (at shutdown)."""
        with self._lock:
            self._connected = False
        self.source.close()

    def _open(self) -> bool:
        try:
            self.source.open()
        except SourceGone as exc:
            self.source.close()
            self._failed(exc)
            return False
        with self._lock:
            down_since, self._reconnecting_since = self._reconnecting_since, None
            self._connected = True
            self._failures = 0
        if down_since is None:
            log.info("%s: open", self.source.name)
        else:
            log.info(
                "%s: open again after %.1f s", self.source.name, max(0.0, self._wall() - down_since)
            )
        return True

    def _lost(self, exc: SourceGone) -> None:
        self.source.close()
        with self._lock:
            self._connected = False
        self._failed(exc)

    def _failed(self, exc: SourceGone) -> None:
        delay = 0.0
        with self._lock:
            self._failures += 1
            delay = backoff_delay(
                self._failures, self._rand(), initial=self._initial, maximum=self._maximum
            )
            self._next_open = self._monotonic() + delay
            if self._reconnecting_since is None:
                self._reconnecting_since = self._wall()
            self._last_error = str(exc)
            self._last_error_at = self._wall()
            failures = self._failures
        log.warning("%s; reopening in %.1f s (failures in a row: %d)", exc, delay, failures)
