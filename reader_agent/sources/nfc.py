"""NFC readers (PN532, ACR122U, PN533) through firmware_tools' libnfc transport.

One read is one tag in the field: its NDEF URL and, by chip,
- NTAG 213/215/216: the UID and the NXP originality signature (READ_SIG), the chip
  evidence the API checks (`uid`, `originality_signature`; both or neither);
- NTAG 424 DNA: the SUN URL alone. Its encrypted PICC data names the UID and its MAC
  proves the tap, so the event carries no chip UID and the API verifies it as a SUN URL;
  the anticollision UID goes into `field_uid`, for the repeat window only.
The protocols are firmware_tools' (`firmware_tools.nfc`); this module maps its errors:
a reader that does not open, stops answering or garbles every frame is SourceGone; a tag
that refuses a command, leaves the field mid-read or holds no URL is UnreadableTag.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

from firmware_tools.errors import (
    FormatError,
    ReaderError,
    TagCommandError,
    TagLocked,
    TagNotFound,
)
from firmware_tools.nfc import Ntag21x, Ntag424
from firmware_tools.nfc.libnfc import LibnfcReader
from reader_agent.reads import Read
from reader_agent.sources import SourceGone, UnreadableTag

RESTING_POLL = 0.25  # seconds between polls while the last tag still rests on the reader


class NfcSource:
    """A libnfc reader at `connstring` (`pn532_uart:/dev/ttyUSB0`; None: libnfc's default).

    A tag that stays in the field is read once: polling selects it again every time (the
    transport resets the field), and an NTAG 424 DNA counts up its SUN read counter at
    every read, so the same UID seen again within `hold` seconds is not read again.
    """

    def __init__(
        self,
        connstring: str | None = None,
        *,
        timeout_ms: int = 500,
        hold: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.connstring = connstring
        self.timeout_ms = timeout_ms
        self.hold = hold
        self.name = f"nfc:{connstring or 'default'}"
        self._clock = clock
        self._reader: LibnfcReader | None = None
        self._resting: tuple[str, float] | None = None  # (UID or error, monotonic time)

    def open(self) -> None:
        """Open the reader; SourceGone with libnfc's words if it is not there."""
        self.close()
        try:
            # timeout_ms bounds every libnfc call: how long a hung reader takes to notice.
            self._reader = LibnfcReader(self.connstring, timeout_ms=self.timeout_ms)
        except ReaderError as exc:
            raise self._gone(exc) from None
        self._resting = None

    def close(self) -> None:
        if self._reader is not None:
            reader, self._reader = self._reader, None
            with contextlib.suppress(ReaderError, OSError):  # the device is gone already
                reader.close()

    def read(self, timeout: float) -> Read | None:
        """The next tag that comes into the field within `timeout` seconds, else None."""
        if self._reader is None:
            raise SourceGone(f"{self.name} is not open")
        deadline = time.monotonic() + timeout
        while True:
            try:
                tag = self._reader.wait_for_tag(timeout_s=max(0.0, deadline - time.monotonic()))
            except TagNotFound:
                self._resting = None  # the field is empty
                return None
            except TagCommandError as exc:  # neither an NTAG 21x nor a 424 DNA
                if not self._rests(str(exc)):
                    raise UnreadableTag(f"{self.name}: {exc}") from None
            except ReaderError as exc:
                raise self._gone(exc) from None
            else:
                if not self._rests(tag.uid.hex()):
                    return self._read(tag)
            if time.monotonic() + RESTING_POLL >= deadline:
                return None
            time.sleep(RESTING_POLL)

    def _gone(self, exc: ReaderError) -> SourceGone:
        # The transport's messages name the connstring already; not twice.
        message = str(exc)
        if not self.connstring or self.connstring not in message:
            message = f"{self.name}: {message}"
        return SourceGone(message)

    def _rests(self, key: str) -> bool:
        """Whether `key` (a UID, or what an unusable tag said) was in the field just now."""
        now = time.monotonic()
        resting = self._resting is not None and self._resting[0] == key
        resting = resting and now - self._resting[1] < self.hold  # type: ignore[index]
        self._resting = (key, now)
        return resting

    def _read(self, tag: Ntag21x | Ntag424) -> Read:
        what = f"{self.name}: tag {tag.uid.hex().upper()}"
        try:
            url = tag.read_ndef_url()
            if isinstance(tag, Ntag424):
                return Read(url, self.name, self._clock(), field_uid=tag.uid)
            signature = tag.read_signature()
        except TagNotFound as exc:
            self._resting = None  # it left: the next tap of it is a new read
            raise UnreadableTag(f"{what} left the field before it was read: {exc}") from None
        except (TagCommandError, TagLocked, FormatError) as exc:
            raise UnreadableTag(f"{what} could not be read: {exc}") from None
        except ReaderError as exc:
            raise self._gone(exc) from None
        return Read(url, self.name, self._clock(), uid=tag.uid, originality_signature=signature)
