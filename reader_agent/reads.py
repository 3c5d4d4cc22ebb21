"""What a source hands the agent: one tag read, as the reader saw it.

Pure: no I/O. The sources (reader_agent.sources) make these; the event builder, the local
verdict and the outbox take them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Read:
    """One tag read: the URL text exactly as read and, from an NFC chip, its UID and signature.

    `source` names the reader (`nfc:pn532_uart:/dev/ttyUSB0`, `serial:/dev/ttyACM0`,
    `camera:0`); `read_at` is wall-clock UTC seconds, the event's time.
    """

    url: str
    source: str
    read_at: float
    uid: bytes = b""
    originality_signature: bytes = b""

    @property
    def tag_key(self) -> str:
        """What makes two reads the same tag for the repeat window: the chip, else the text."""
        return self.uid.hex() if self.uid else self.url
