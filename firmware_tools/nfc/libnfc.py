"""The libnfc transport, through pynfc's ctypes bindings (libnfc 1.8, Debian's libnfc.so).

pynfc is imported here, lazily, so that the pure modules load on machines without libnfc.
The PN532 itself (framing, ACKs, checksums) is libnfc's business; this module adds what a
service needs on top: a timeout on every call, retries for the link errors a UART shows
(a garbled frame, a NACK) where a retry is safe, and errors that say what went wrong.

What libnfc does with link faults (found against tests/fakes/pn532.py, and read in libnfc
1.8 pn532_uart.c / pn53x.c): a frame with a bad checksum, or a NACK where an ACK belongs,
makes the call fail with NFC_EIO and libnfc does not retry. The two cannot be told apart
from the result, and the first means the PN532 did run the command: the tag may have
executed it and only its answer was lost. So a tag command is sent again only when the
caller says it is idempotent (a read, a select, GetVersion, Read_Sig): sending ChangeKey
twice can leave an NTAG 424 DNA half-personalized. Any other command ends in
OutcomeUnknown, and the caller asks the tag what happened. (The PN532 would resend its
last answer on a host NACK, PN532 UM §6.2.1.3, but pn532_uart has no way to send one:
its receive path flushes the input and returns NFC_EIO, and no libnfc call writes a NACK.)
A reader that stops answering makes the call fail with NFC_ETIMEOUT after the timeout we
passed; we do not retry that, so a dead reader costs one timeout, never a hang. A tag
that leaves the field shows as NFC_ERFTRANS (the PN532 reports status 01h, time out, for
the exchange, PN532 UM §7.1), which is TagNotFound.
"""

from __future__ import annotations

import ctypes
import time
from collections.abc import Callable
from functools import lru_cache
from types import SimpleNamespace
from typing import Any

from firmware_tools.errors import (
    FrameError,
    OutcomeUnknown,
    ReaderError,
    ReaderNotFound,
    ReaderTimeout,
    TagNotFound,
)
from firmware_tools.nfc import Ntag21x, Ntag424, TagNak, classify

# libnfc nfc.h error codes.
NFC_EIO = -1
NFC_EINVARG = -2
NFC_EDEVNOTSUPP = -3
NFC_ENOTSUCHDEV = -4
NFC_EOVFLOW = -5
NFC_ETIMEOUT = -6
NFC_EOPABORTED = -7
NFC_ENOTIMPL = -8
NFC_ETGRELEASED = -10
NFC_ERFTRANS = -20
NFC_EMFCAUTHFAIL = -30
NFC_ESOFT = -80
NFC_ECHIP = -90

# nfc-types.h nfc_property, for messages.
_PROPERTY_NAMES = {5: "the RF field", 7: "infinite select", 11: "easy framing"}

CONNSTRING_SIZE = 1024  # NFC_BUFSIZE_CONNSTRING, nfc-types.h
RX_BUFFER_SIZE = 264  # the PN532's largest information frame payload


@lru_cache(maxsize=1)
def bindings() -> SimpleNamespace:
    """pynfc's `nfc` module and the prototypes we had to redeclare; ReaderNotFound if absent."""
    try:
        from pynfc import nfc
    except ImportError as exc:
        raise ReaderNotFound(
            f"pynfc is not installed ({exc}); install the 'agent' or 'tools' extra"
        ) from None
    except OSError as exc:
        raise ReaderNotFound(
            f"libnfc could not be loaded ({exc}); on Debian install libnfc-dev and"
            " libfreefare-dev, which provide the unversioned libnfc.so and libfreefare.so"
            " that pynfc opens"
        ) from None
    lib = nfc._libraries["libfreefare.so"]
    # lib[...] (not lib.name) returns a fresh function object, so these prototypes do not
    # change the ones pynfc and its users share.
    # pynfc declares nfc_open's connstring as a char[1024] passed by value, which cannot
    # carry NULL ("the default device"), and pynfc.Nfc() rewrites that declaration at run
    # time; ours takes a plain char *, which is what the C function receives.
    nfc_open = lib["nfc_open"]
    nfc_open.restype = ctypes.POINTER(nfc.struct_nfc_device)
    nfc_open.argtypes = [ctypes.POINTER(nfc.struct_nfc_context), ctypes.c_char_p]
    # pynfc declares the connstring array as char[1024][0] (zero entries), so no buffer
    # can be passed; nfc-types.h: nfc_connstring connstrings[], i.e. char (*)[1024].
    nfc_list_devices = lib["nfc_list_devices"]
    nfc_list_devices.restype = ctypes.c_size_t
    nfc_list_devices.argtypes = [
        ctypes.POINTER(nfc.struct_nfc_context),
        ctypes.POINTER(ctypes.c_char * CONNSTRING_SIZE),
        ctypes.c_size_t,
    ]
    return SimpleNamespace(nfc=nfc, nfc_open=nfc_open, nfc_list_devices=nfc_list_devices)


def _text(pointer: object) -> str:
    # pynfc declares char * results as POINTER(c_char); read them as C strings.
    value = ctypes.cast(pointer, ctypes.c_char_p).value
    return value.decode(errors="replace") if value else ""


def libnfc_version() -> str:
    """The version string of the loaded libnfc."""
    return _text(bindings().nfc.nfc_version())


def list_devices(limit: int = 16) -> list[str]:
    """Connstrings of the readers libnfc finds (nfc_list_devices), without opening them."""
    b = bindings()
    context = ctypes.POINTER(b.nfc.struct_nfc_context)()
    b.nfc.nfc_init(ctypes.byref(context))
    if not context:
        raise ReaderError("nfc_init failed (out of memory, or an unreadable libnfc.conf)")
    try:
        found = ((ctypes.c_char * CONNSTRING_SIZE) * limit)()
        count = b.nfc_list_devices(context, found, limit)
        return [found[i].value.decode(errors="replace") for i in range(count)]
    finally:
        b.nfc.nfc_exit(context)


class LibnfcReader:
    """An open libnfc device in initiator mode; also the `Link` to the selected target."""

    def __init__(self, connstring: str | None, *, timeout_ms: int = 500, retries: int = 3) -> None:
        self.connstring = connstring
        self.timeout_ms = timeout_ms
        self.retries = retries
        self._b = bindings()
        nfc = self._b.nfc
        self._nfc = nfc
        self._context = ctypes.POINTER(nfc.struct_nfc_context)()
        self._device = None
        self._uid: bytes | None = None
        nfc.nfc_init(ctypes.byref(self._context))
        if not self._context:
            raise ReaderNotFound("nfc_init failed (out of memory, or an unreadable libnfc.conf)")
        where = connstring or "the default device (LIBNFC_DEFAULT_DEVICE or the first found)"
        device = self._b.nfc_open(self._context, connstring.encode() if connstring else None)
        if not device:
            nfc.nfc_exit(self._context)
            raise ReaderNotFound(
                f"no NFC reader at {where}: libnfc could not open it (is it plugged in, is"
                " the device path right, may this user read and write it? run the doctor)"
            )
        self._device = device
        try:
            self._call("nfc_initiator_init", lambda: nfc.nfc_initiator_init(device))
            # Without this libnfc selects with an infinite PN532 retry count and waits
            # with no timeout: a call that never returns when no tag comes.
            self._set(nfc.NP_INFINITE_SELECT, False)
        except ReaderError:
            self.close()
            raise

    # --- context manager ----------------------------------------------------------------

    def __enter__(self) -> LibnfcReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the target, switch the field off, close the device (idempotent)."""
        if self._device is not None:
            self._nfc.nfc_close(self._device)
            self._device = None
        if self._context:
            self._nfc.nfc_exit(self._context)
            self._context = ctypes.POINTER(self._nfc.struct_nfc_context)()

    @property
    def name(self) -> str:
        """The device name libnfc reports."""
        return _text(self._nfc.nfc_device_get_name(self._require()))

    # --- errors and retries ------------------------------------------------------------

    def _require(self) -> Any:  # a ctypes pointer to nfc_device
        if self._device is None:
            raise ReaderError("the reader is closed")
        return self._device

    def _call(self, what: str, call: Callable[[], int], *, idempotent: bool = True) -> int:
        """Run one libnfc call; after NFC_EIO send it again only if it is `idempotent`."""
        attempts = self.retries + 1 if idempotent else 1
        for attempt in range(attempts):
            result = call()
            if result >= 0:
                return result
            if result == NFC_EIO and attempt + 1 < attempts:
                continue  # a garbled frame or a NACK on the serial link: send it again
            if result == NFC_EIO and not idempotent:
                raise self._lost(what)
            raise self._error(what, result, attempt + 1)
        raise AssertionError("unreachable")

    def _lost(self, what: str) -> OutcomeUnknown:
        detail = _text(self._nfc.nfc_strerror(self._device)) if self._device else ""
        where = self.connstring or "the default reader"
        return OutcomeUnknown(
            f"{where}: the answer to {what} was lost on the serial link ({detail}); it was"
            " not sent again, because the tag may already have executed it"
        )

    def _error(self, what: str, code: int, attempts: int) -> ReaderError:
        detail = _text(self._nfc.nfc_strerror(self._device)) if self._device else ""
        where = self.connstring or "the default reader"
        if code == NFC_ETIMEOUT:
            return ReaderTimeout(
                f"{where} stopped answering during {what} (no answer within"
                f" {self.timeout_ms} ms: unplugged, powered off or hung?)"
            )
        if code == NFC_EIO:
            return FrameError(
                f"{where}: {what} failed on the serial link {attempts} times ({detail});"
                " check the cable and the baud rate"
            )
        if code == NFC_EMFCAUTHFAIL:
            return TagNak(f"the tag refused {what} (NAK)")
        if code in (NFC_ERFTRANS, NFC_ETGRELEASED):
            return TagNotFound(f"the tag did not answer {what} ({detail}): it left the field?")
        return ReaderError(f"{where}: {what} failed: {detail or code}")

    def _set(self, prop: int, value: bool) -> None:
        device = self._require()
        name = _PROPERTY_NAMES.get(prop, f"property {prop}")
        self._call(
            f"{'setting' if value else 'clearing'} {name}",
            lambda: self._nfc.nfc_device_set_property_bool(device, prop, value),
        )

    # --- targets ------------------------------------------------------------------------

    def _select(self, uid: bytes | None) -> tuple[bytes, bytes, int, bytes] | None:
        nfc = self._nfc
        device = self._require()
        modulation = nfc.nfc_modulation(nmt=nfc.NMT_ISO14443A, nbr=nfc.NBR_106)
        target = nfc.nfc_target()
        # libnfc adds the cascade tag (88h) to a 7-byte UID itself (ISO 14443-3 §6.5.4).
        init = (ctypes.c_ubyte * len(uid))(*uid) if uid else None
        found = self._call(
            "select",
            lambda: nfc.nfc_initiator_select_passive_target(
                device, modulation, init, len(uid) if uid else 0, ctypes.byref(target)
            ),
        )
        if found == 0:
            return None
        info = target.nti.nai
        return (
            bytes(info.abtUid[: info.szUidLen]),
            bytes(info.abtAtqa),
            info.btSak,
            bytes(info.abtAts[: info.szAtsLen]),
        )

    def wait_for_tag(self, timeout_s: float = 5.0) -> Ntag21x | Ntag424:
        """The next tag that enters the field; TagNotFound after `timeout_s` seconds."""
        nfc = self._nfc
        deadline = time.monotonic() + timeout_s
        if self._uid is not None:
            self._call("deselect", lambda: nfc.nfc_initiator_deselect_target(self._require()))
            self._uid = None
        # Switch the field off and on: tags left in the field from the last tap lose
        # power and answer again as a new activation (an NTAG 424 then mirrors a new SUN).
        self._set(nfc.NP_ACTIVATE_FIELD, False)
        self._set(nfc.NP_ACTIVATE_FIELD, True)
        while True:
            selected = self._select(None)
            if selected is not None:
                uid, atqa, sak, ats = selected
                self._uid = uid
                return classify(self, uid, atqa, sak, ats)
            if time.monotonic() >= deadline:
                raise TagNotFound(f"no tag came into the field within {timeout_s:g} s")
            time.sleep(0.05)

    # --- Link ----------------------------------------------------------------------------

    def reselect(self) -> None:
        """Select the last tag again by its UID (after a NAK it is in IDLE)."""
        if self._uid is None:
            raise TagNotFound("no tag was selected")
        if self._select(self._uid) is None:
            raise TagNotFound(f"tag {self._uid.hex().upper()} left the field")

    def transceive(self, data: bytes, *, raw: bool = False, idempotent: bool = False) -> bytes:
        """Send one tag command and return the answer, with the reader's timeout.

        Only an `idempotent` command is sent again after a link error; any other ends in
        OutcomeUnknown (see the module docstring).
        """
        nfc = self._nfc
        device = self._require()
        tx = (ctypes.c_ubyte * len(data)).from_buffer_copy(data)
        rx = (ctypes.c_ubyte * RX_BUFFER_SIZE)()
        if raw:
            # Easy framing off: libnfc sends InCommunicateThru (the chip still adds and
            # checks the CRC) instead of InDataExchange, which would take some command
            # codes (60h, 61h) for MIFARE Classic commands.
            self._set(nfc.NP_EASY_FRAMING, False)
        try:
            length = self._call(
                f"command {data[:1].hex()}",
                lambda: nfc.nfc_initiator_transceive_bytes(
                    device, tx, len(data), rx, RX_BUFFER_SIZE, self.timeout_ms
                ),
                idempotent=idempotent,
            )
        finally:
            if raw:
                self._set(nfc.NP_EASY_FRAMING, True)
        return bytes(rx[:length])
