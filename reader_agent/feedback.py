"""Feedback at the device: each verdict said in the log and, where configured, on GPIO.

GPIO goes through gpiozero (the `gpio` extra), imported only when the config names pins:
a buzzer and green / amber / red LEDs on BCM pins (`gpio` in the config). Patterns:
good is one short beep and the green LED; warning two beeps and the amber LED; rejected
one long beep and the red LED. Tests use gpiozero's MockFactory.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from reader_agent.errors import ConfigError
from reader_agent.verdict import GOOD, REJECTED, WARNING

log = logging.getLogger("reader_agent.feedback")

LIGHT_SECONDS = 1.5  # how long an LED stays lit after a scan
# (on seconds, off seconds, beeps) per level
BEEPS = {GOOD: (0.08, 0.0, 1), WARNING: (0.08, 0.08, 2), REJECTED: (0.6, 0.0, 1)}


class Gpio:
    """A buzzer and LEDs on the pins named in `pins` ({"buzzer": 17, "good": 22, ...})."""

    def __init__(self, pins: Mapping[str, int], pin_factory: Any = None) -> None:
        from gpiozero import LED, Buzzer

        self.buzzer = Buzzer(pins["buzzer"], pin_factory=pin_factory) if "buzzer" in pins else None
        self.leds = {
            level: LED(pins[level], pin_factory=pin_factory)
            for level in (GOOD, WARNING, REJECTED)
            if level in pins
        }

    def signal(self, level: str) -> None:
        """Beep and light for `level`; returns at once (gpiozero blinks in its own thread)."""
        for name, led in self.leds.items():
            if name != level:
                led.off()
        led = self.leds.get(level)
        if led is not None:
            led.blink(on_time=LIGHT_SECONDS, off_time=0, n=1)
        if self.buzzer is not None:
            on, off, beeps = BEEPS[level]
            self.buzzer.beep(on_time=on, off_time=off, n=beeps)

    def close(self) -> None:
        """Switch everything off and release the pins."""
        for device in [*self.leds.values(), self.buzzer]:
            if device is not None:
                device.close()


class Feedback:
    """Says each scan's local verdict and, later, the API's answer: log line and GPIO."""

    def __init__(self, gpio: Gpio | None = None) -> None:
        self.gpio = gpio
        self._lock = threading.Lock()

    def scan(self, level: str, recorded: bool, fields: Mapping[str, Any]) -> None:
        """The local verdict of one scan, said once it is recorded (or refused)."""
        message = "recorded" if recorded else "not recorded"
        severity = logging.INFO if level == GOOD else logging.WARNING
        log.log(severity, message, extra={"fields": {"verdict": level, **fields}})
        self._signal(level)

    def answer(self, status: str, fields: Mapping[str, Any]) -> None:
        """The API's answer for one event; a rejection is signalled like a rejected scan."""
        level = logging.WARNING if status == REJECTED else logging.INFO
        log.log(level, f"api {status}", extra={"fields": fields})
        if status == REJECTED:
            self._signal(REJECTED)

    def _signal(self, level: str) -> None:
        if self.gpio is None:
            return
        with self._lock:
            try:
                self.gpio.signal(level)
            except Exception as exc:  # a GPIO fault must never stop the dock door
                log.warning("GPIO signal failed: %s", exc)

    def close(self) -> None:
        if self.gpio is not None:
            self.gpio.close()


def make_feedback(pins: Mapping[str, int]) -> Feedback:
    """Feedback for the config's `gpio` pins: log only when none are named.

    ConfigError when pins are named but gpiozero is missing or cannot drive them.
    """
    if not pins:
        return Feedback(None)
    try:
        from gpiozero.exc import GPIOZeroError
    except ImportError:
        raise ConfigError(
            "`gpio` names pins but gpiozero is not installed: pip install 'provenance[gpio]'"
            " (and apt install python3-lgpio on a Raspberry Pi)"
        ) from None
    try:
        return Feedback(Gpio(pins))
    except GPIOZeroError as exc:
        raise ConfigError(f"`gpio`: the pins cannot be driven: {exc}") from None
