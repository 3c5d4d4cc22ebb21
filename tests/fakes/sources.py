"""A scripted reader and a fake clock, for the supervisor's rules without hardware or waiting."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from reader_agent.reads import Read
from reader_agent.sources import SourceGone, UnreadableTag


class FakeTime:
    """Monotonic and wall clocks that move only when `sleep` (or `advance`) is called."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = 100.0
        self.epoch = start - self.now
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.epoch + self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0, seconds
        self.sleeps.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


class ScriptedSource:
    """A Source whose opens and reads follow a script.

    `opens`: for each open, True (it opens) or False (SourceGone); when the script runs
    out, opens succeed. `reads`: for each read, a URL (a Read), None (nothing in time),
    "gone" (SourceGone) or "unreadable" (UnreadableTag); then None.
    """

    def __init__(self, opens: Iterable[bool] = (), reads: Iterable[str | None] = ()) -> None:
        self.name = "scripted:0"
        self.opens = deque(opens)
        self.reads = deque(reads)
        self.is_open = False
        self.open_calls = 0
        self.close_calls = 0

    def open(self) -> None:
        self.open_calls += 1
        if self.opens and not self.opens.popleft():
            raise SourceGone(f"{self.name} is not plugged in")
        self.is_open = True

    def read(self, timeout: float) -> Read | None:
        if not self.is_open:
            raise SourceGone(f"{self.name} is not open")
        step = self.reads.popleft() if self.reads else None
        if step == "gone":
            raise SourceGone(f"{self.name} stopped answering")
        if step == "unreadable":
            raise UnreadableTag(f"{self.name}: a line that is not UTF-8")
        return None if step is None else Read(step, self.name, 0.0)

    def close(self) -> None:
        self.close_calls += 1
        self.is_open = False
