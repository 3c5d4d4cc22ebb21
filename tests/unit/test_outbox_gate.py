"""The chain writer's gate: may a write that waits for another be signed now; coin payments."""

from __future__ import annotations

import pytest

from provenance_api import outbox
from provenance_api.outbox import Doom, Hold, Ready, gate

LIVE = ["pending", "signed", "sent", "mined"]


def test_a_write_without_prerequisite_is_ready():
    assert gate(5, []) == Ready()


@pytest.mark.parametrize("status", LIVE)
def test_a_live_prerequisite_holds_the_write(status):
    verdict = gate(9, [(4, status)])
    assert isinstance(verdict, Hold)
    assert "write 4" in verdict.reason and status in verdict.reason


def test_a_confirmed_prerequisite_or_retry_of_it_lets_it_go():
    assert gate(9, [(4, "confirmed")]) == Ready()
    assert gate(9, [(4, "failed"), (6, "confirmed")]) == Ready()
    assert gate(9, [(4, "failed"), (6, "failed"), (7, "confirmed")]) == Ready()


def test_a_failed_prerequisite_dooms_the_write_and_names_it():
    verdict = gate(9, [(4, "failed")])
    assert isinstance(verdict, Doom)
    assert "prerequisite write 4 failed" in verdict.reason


def test_a_failed_retry_is_named_too():
    verdict = gate(9, [(4, "failed"), (6, "failed")])
    assert isinstance(verdict, Doom)
    assert "write 4" in verdict.reason and "retry 6" in verdict.reason


@pytest.mark.parametrize("status", LIVE)
def test_a_live_retry_owed_before_the_write_is_waited_for(status):
    verdict = gate(9, [(4, "failed"), (6, status)])
    assert isinstance(verdict, Hold)
    assert "write 6" in verdict.reason and "write 4" in verdict.reason


@pytest.mark.parametrize("status", LIVE)
def test_a_live_retry_owed_after_the_write_dooms_it_rather_than_deadlock(status):
    # The retry may sit behind this write in its sender's queue: waiting would be for ever.
    verdict = gate(9, [(4, "failed"), (12, status)])
    assert isinstance(verdict, Doom)
    assert "retry this write" in verdict.reason


def test_a_payment_names_its_payee_checksummed():
    payee = "0x" + "cd" * 20
    assert outbox.payment_recipient(outbox.PAY, [payee]).lower() == payee


@pytest.mark.parametrize(
    ("function", "args"),
    [
        ("pay", []),
        ("pay", ["0x1", "0x2"]),
        ("pay", ["not an address"]),
        ("send", ["0x" + "00" * 20]),
    ],
)
def test_a_malformed_payment_is_an_outbox_error(function, args):
    with pytest.raises(outbox.OutboxError):
        outbox.payment_recipient(function, args)
