"""What is wrong with the NFC setup, in words (like `python -m nfc`).

python -m firmware_tools.nfc.doctor pn532_uart:/dev/ttyUSB0
"""

from __future__ import annotations

import glob
import grp
import os
import pwd
import stat
import sys
from dataclasses import dataclass

from firmware_tools.errors import ReaderError, ReaderNotFound

OK, WARNING, ERROR = "ok", "warning", "error"
# libnfc drivers whose connstring names a serial device: "<driver>:<path>[:<baud>]".
SERIAL_DRIVERS = ("pn532_uart", "arygon")
SERIAL_GLOBS = ("/dev/ttyUSB*", "/dev/ttyACM*", "/dev/serial0", "/dev/ttyAMA0", "/dev/ttyS0")


@dataclass(frozen=True)
class Finding:
    """One check's outcome: `level` is ok, warning or error; `message` says it in words."""

    level: str
    message: str

    def __str__(self) -> str:
        return f"[{self.level}] {self.message}"

    def as_dict(self) -> dict[str, str]:
        """The finding as JSON-ready data."""
        return {"level": self.level, "message": self.message}


def has_errors(findings: list[Finding]) -> bool:
    """Whether any finding stops the reader from working (the exit status says so)."""
    return any(finding.level == ERROR for finding in findings)


def serial_path(connstring: str | None) -> str | None:
    """The device path in a serial-driver connstring, else None.

    >>> serial_path("pn532_uart:/dev/ttyUSB0:115200"), serial_path("pn53x_usb:001:004")
    ('/dev/ttyUSB0', None)
    """
    if not connstring:
        return None
    driver, _, rest = connstring.partition(":")
    if driver not in SERIAL_DRIVERS or not rest:
        return None
    return rest.split(":")[0]


def check_serial_device(path: str) -> Finding:
    """Exists, is a character device, and this user may read and write it."""
    if not os.path.exists(path):
        return Finding(
            ERROR,
            f"{path} does not exist: is the reader plugged in and powered? USB-serial"
            " adapters appear as /dev/ttyUSB0 or /dev/ttyACM0 (see `dmesg`)",
        )
    info = os.stat(path)
    if not stat.S_ISCHR(info.st_mode):
        return Finding(ERROR, f"{path} is not a character device, so not a serial port")
    if not os.access(path, os.R_OK | os.W_OK):
        user = pwd.getpwuid(os.geteuid()).pw_name
        try:
            group = grp.getgrgid(info.st_gid).gr_name
        except KeyError:
            group = str(info.st_gid)
        return Finding(
            ERROR,
            f"user {user} may not read and write {path} (mode {stat.filemode(info.st_mode)},"
            f" group {group}): run `sudo usermod -aG {group} {user}` and log in again",
        )
    return Finding(OK, f"{path} is a serial device this user may read and write")


def doctor(connstring: str | None = None) -> list[Finding]:
    """Check libnfc, the serial device, the readers libnfc finds, and open the reader."""
    findings: list[Finding] = []
    # The serial device is checked first: with libnfc missing too, the user hears of both.
    path = serial_path(connstring)
    if path is not None:
        findings.append(check_serial_device(path))
    try:
        from firmware_tools.nfc.libnfc import libnfc_version, list_devices
    except ImportError as exc:  # pragma: no cover - the package itself is broken
        return [Finding(ERROR, f"the NFC transport does not import: {exc}"), *findings]
    try:
        findings.insert(0, Finding(OK, f"libnfc {libnfc_version()} loaded through pynfc"))
    except ReaderError as exc:
        return [Finding(ERROR, str(exc)), *findings]

    if connstring is None:
        ports = sorted({p for pattern in SERIAL_GLOBS for p in glob.glob(pattern)})
        for port in ports:
            finding = check_serial_device(port)
            if finding.level != OK:
                findings.append(Finding(WARNING, finding.message))
        if not ports:
            findings.append(Finding(WARNING, "no serial ports (ttyUSB, ttyACM, serial0) found"))

    try:
        devices = list_devices()
    except ReaderError as exc:
        devices = []
        findings.append(Finding(ERROR, f"nfc_list_devices failed: {exc}"))
    if devices:
        findings.append(Finding(OK, f"libnfc lists {len(devices)} reader(s): {', '.join(devices)}"))
    else:
        findings.append(
            Finding(
                WARNING,
                "libnfc lists no reader: USB readers are found by themselves, serial ones"
                " (a PN532 on a UART) only when named, e.g. pn532_uart:/dev/ttyUSB0, in"
                " LIBNFC_DEFAULT_DEVICE, /etc/nfc/libnfc.conf, or with"
                " LIBNFC_INTRUSIVE_SCAN=true",
            )
        )

    if any(f.level == ERROR for f in findings):
        return findings
    from firmware_tools.nfc import open_reader

    try:
        with open_reader(connstring) as reader:
            findings.append(Finding(OK, f"opened {reader.name} and set it up as initiator"))
    except ReaderNotFound as exc:
        findings.append(Finding(ERROR, _without_doctor_hint(str(exc), connstring)))
    except ReaderError as exc:
        findings.append(Finding(ERROR, str(exc)))
    return findings


def _without_doctor_hint(message: str, connstring: str | None) -> str:
    """The transport's message, unless it ends in "run the doctor": this is the doctor."""
    if "doctor" not in message:
        return message
    where = connstring or "the default device (LIBNFC_DEFAULT_DEVICE or the first found)"
    return (
        f"libnfc could not open a reader at {where}: check that it is plugged in and powered,"
        " that the connstring names its driver and port (e.g. pn532_uart:/dev/ttyUSB0), and"
        " that this user may read and write the port"
    )


def main(argv: list[str] | None = None) -> int:
    """Print the findings; exit status 1 if any is an error."""
    args = sys.argv[1:] if argv is None else argv
    findings = doctor(args[0] if args else None)
    for finding in findings:
        print(finding)
    return 1 if has_errors(findings) else 0


if __name__ == "__main__":
    sys.exit(main())
