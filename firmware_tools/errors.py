"""The exceptions of the tag library.

FirmwareToolsError
├── FormatError            malformed input: GTIN, Digital Link URL, NDEF, CSV row
│   ├── GS1Error
│   └── NdefError
├── InvalidTag             a tag was read but does not verify; `reason` is a stable code
│   ├── BadSignature       supplier signature wrong or by another key
│   ├── BadOriginality     NXP originality signature wrong
│   ├── UidMismatch        label bound to another chip
│   ├── MalformedSun       SUN parameters damaged; `reason` names how:
│   │   │                  bad_hex, missing_parameter, duplicate_parameter, parameter_order
│   │   └── BadLength      SUN parameter of the wrong size
│   ├── UnknownPiccDataTag PICC data does not decrypt (likely the wrong meta-read key)
│   ├── FileKeyRefused     a key epoch's file-key rule refused the UID
│   ├── BadCmac            SUN MAC wrong (likely the wrong file key or offsets)
│   ├── ReplayedCounter    SUN counter not strictly greater than the last accepted one
│   └── CounterExhausted   SUN counter at FFFFFF
├── KeyStoreError          key file unreadable
│   └── WrongPassphrase
├── RecordStoreError       provisioning records cannot be read or written
└── ReaderError            NFC transport or tag command failed
    ├── ReaderNotFound
    ├── ReaderTimeout      the reader stopped answering
    ├── FrameError         garbled frame or NACK that retries did not cure
    │   └── OutcomeUnknown the answer to a command that changes the tag was lost
    ├── TagNotFound
    ├── TagLocked          the tag refuses writes
    └── TagCommandError    the tag answered with an error status
"""

from __future__ import annotations


class FirmwareToolsError(Exception):
    """Base of every error this package raises on purpose."""


class FormatError(FirmwareToolsError, ValueError):
    """Input that is not in the expected format; the message names the part."""


class GS1Error(FormatError):
    """A GTIN or GS1 Digital Link URL that is not valid."""


class NdefError(FormatError):
    """An NDEF message or tag memory image that does not parse."""


class InvalidTag(FirmwareToolsError):
    """A tag that does not verify; `reason` is a short stable code for machines."""

    reason = "invalid_tag"

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class BadSignature(InvalidTag):
    reason = "bad_signature"


class BadOriginality(InvalidTag):
    reason = "bad_originality_signature"


class UidMismatch(InvalidTag):
    reason = "uid_mismatch"


class MalformedSun(InvalidTag):
    """SUN parameters that are damaged: a counterfeit tap, not a usage error."""

    reason = "malformed_sun"


class BadLength(MalformedSun):
    reason = "bad_length"


class UnknownPiccDataTag(InvalidTag):
    reason = "unknown_picc_data_tag"


class FileKeyRefused(InvalidTag):
    reason = "file_key_refused"


class BadCmac(InvalidTag):
    reason = "bad_cmac"


class ReplayedCounter(InvalidTag):
    reason = "replayed_counter"


class CounterExhausted(InvalidTag):
    reason = "counter_exhausted"


class KeyStoreError(FirmwareToolsError):
    """A key file that cannot be read."""


class WrongPassphrase(KeyStoreError):
    """The passphrase does not open the key file."""


class RecordStoreError(FirmwareToolsError):
    """The provisioning record store cannot be opened, read or written."""


class ReaderError(FirmwareToolsError):
    """The NFC reader or the tag in its field failed."""


class ReaderNotFound(ReaderError):
    pass


class ReaderTimeout(ReaderError):
    pass


class FrameError(ReaderError):
    pass


class OutcomeUnknown(FrameError):
    """A command reached the reader but its answer was lost: the tag may have executed it.

    Never resent (the tag could run it twice); the caller finds out from the tag.
    """


class TagNotFound(ReaderError):
    pass


class TagLocked(ReaderError):
    pass


class TagCommandError(ReaderError):
    """The tag answered a command with an error status."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class TagNak(TagCommandError):
    """The tag answered a Type 2 command with a 4-bit NAK (or the reader reported one)."""
