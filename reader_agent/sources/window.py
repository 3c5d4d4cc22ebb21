"""The repeat window: the same tag read again within a few seconds counts once.

Pure: no I/O; times are arguments (monotonic seconds, so that a wall-clock step neither
drops nor doubles a read).
"""

from __future__ import annotations

from reader_agent.reads import Read

DEFAULT_WINDOW = 2.0  # seconds: a scanner's double beep or a tag held on the reader


class RepeatWindow:
    """Admits a read unless the same tag (`Read.tag_key`) was read less than `seconds` ago.

    The window slides: every read of a tag, admitted or not, restarts it, so a tag that
    rests on a reader polled every second counts once until it is taken away.

    >>> window = RepeatWindow(2.0)
    >>> read = Read("https://id.example.com/01/09506000134352/21/1", "serial:x", 0.0)
    >>> [window.admit(read, now) for now in (0.0, 1.5, 3.0, 5.5)]
    [True, False, False, True]
    """

    def __init__(self, seconds: float = DEFAULT_WINDOW) -> None:
        if seconds < 0:
            raise ValueError(f"the repeat window must not be negative, got {seconds}")
        self.seconds = seconds
        self._last: dict[str, float] = {}

    def admit(self, read: Read, now: float) -> bool:
        """Whether this read counts; remembers it either way."""
        key = read.tag_key
        last = self._last.get(key)
        self._last[key] = now
        if len(self._last) > 64:
            self._forget(now)
        return last is None or not 0 <= now - last < self.seconds

    def _forget(self, now: float) -> None:
        # Only tags seen within the window matter; bounded by how many pass in 2 s.
        self._last = {k: t for k, t in self._last.items() if 0 <= now - t < self.seconds}
