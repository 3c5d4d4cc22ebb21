"""Feedback on GPIO through gpiozero's mock pin factory: the right LED and the right beeps."""

from __future__ import annotations

import itertools
import logging
import time

import pytest

gpiozero = pytest.importorskip("gpiozero")
from gpiozero import Device  # noqa: E402
from gpiozero.pins.mock import MockFactory  # noqa: E402

from reader_agent.feedback import Feedback, Gpio, make_feedback  # noqa: E402
from reader_agent.verdict import GOOD, REJECTED, WARNING  # noqa: E402

PINS = {"buzzer": 17, "good": 22, "warning": 23, "rejected": 24}


@pytest.fixture
def factory():
    previous = Device.pin_factory
    Device.pin_factory = MockFactory()
    yield Device.pin_factory
    Device.pin_factory.close()
    Device.pin_factory = previous


def beeps(pin) -> int:
    """How many times the pin went high."""
    states = [change.state for change in pin.states]
    return sum(1 for before, after in itertools.pairwise(states) if after and not before)


def settle(seconds: float = 0.5) -> None:
    time.sleep(seconds)  # gpiozero beeps in its own thread


@pytest.mark.parametrize(("level", "count"), [(GOOD, 1), (WARNING, 2), (REJECTED, 1)])
def test_each_verdict_lights_its_led_and_beeps_its_pattern(factory, level, count) -> None:
    gpio = Gpio(PINS)
    try:
        gpio.signal(level)
        settle(0.8)
        for name in (GOOD, WARNING, REJECTED):
            assert factory.pin(PINS[name]).state == (name == level), name
        assert beeps(factory.pin(PINS["buzzer"])) == count
        assert factory.pin(PINS["buzzer"]).state is False
    finally:
        gpio.close()


def test_the_next_scan_switches_the_last_led_off(factory) -> None:
    gpio = Gpio(PINS)
    try:
        gpio.signal(REJECTED)
        gpio.signal(GOOD)
        settle(0.1)
        assert factory.pin(PINS[REJECTED]).state is False
        assert factory.pin(PINS[GOOD]).state is True
    finally:
        gpio.close()


def test_only_the_configured_outputs_are_used(factory) -> None:
    feedback = make_feedback({"buzzer": 5})
    try:
        feedback.scan(WARNING, True, {})
        settle()
        assert beeps(factory.pin(5)) == 2
    finally:
        feedback.close()


def test_an_api_rejection_is_signalled_and_logged(factory, caplog) -> None:
    feedback = make_feedback({"rejected": 24})
    caplog.set_level(logging.INFO, "reader_agent.feedback")
    try:
        feedback.answer("accepted", {"event_id": "a"})
        settle(0.1)
        assert factory.pin(24).state is False
        feedback.answer("rejected", {"event_id": "b", "reasons": ["replayed counter"]})
        settle(0.1)
        assert factory.pin(24).state is True
    finally:
        feedback.close()
    assert [r.getMessage() for r in caplog.records] == ["api accepted", "api rejected"]


def test_without_pins_feedback_only_logs(caplog) -> None:
    feedback = make_feedback({})
    caplog.set_level(logging.INFO, "reader_agent.feedback")
    feedback.scan(GOOD, True, {"gtin": "04006381333931"})
    assert feedback.gpio is None
    assert caplog.records[0].getMessage() == "recorded"
    assert caplog.records[0].fields == {"verdict": GOOD, "gtin": "04006381333931"}
    assert isinstance(feedback, Feedback)


def test_a_pin_already_in_use_is_a_config_error(factory) -> None:
    from reader_agent.errors import ConfigError

    taken = make_feedback({"good": 22})
    try:
        with pytest.raises(ConfigError, match="`gpio`: the pins cannot be driven"):
            make_feedback({"good": 22})
    finally:
        taken.close()
