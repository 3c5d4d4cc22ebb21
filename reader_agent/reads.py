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
    `camera:0`); `read_at` is wall-clock UTC seconds, the event's time. `uid` and
    `originality_signature` are the chip evidence the event carries (an NTAG 21x: both or
    neither, as the API's TagEvidence requires). `field_uid` is the UID the reader saw in
    anticollision when the read carries no chip evidence: an NTAG 424 DNA's evidence is
    its SUN URL, whose encrypted PICC data names the UID, yet the repeat window needs the
    chip, since each tap yields a new URL.
    """

    url: str
    source: str
    read_at: float
    uid: bytes = b""
    originality_signature: bytes = b""
    field_uid: bytes = b""

    @property
    def tag_key(self) -> str:
        """What makes two reads the same tag for the repeat window: the chip, else the text."""
        chip = self.uid or self.field_uid
        return chip.hex() if chip else self.url
