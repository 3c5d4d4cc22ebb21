"""The chain writer's state machine: every transition, fee bumps, nonces, calldata."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction

import eth_abi
import pytest
from eth_hash.auto import keccak

from contracts_abi import load_artifact
from provenance_api import outbox
from provenance_api.outbox import (
    Attempt,
    Broadcast,
    Confirm,
    Fail,
    Fees,
    Fill,
    Mined,
    Observation,
    Policy,
    Receipt,
    Refusal,
    Replace,
    Unmine,
    Wait,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
POLICY = Policy(
    confirmations=2,
    rebroadcast_after=timedelta(seconds=10),
    bump_after=timedelta(seconds=60),
    bump_percent=Fraction(25, 2),
)
FEES = Fees(max_fee_per_gas=2_000, max_priority_fee_per_gas=100)


def attempt(
    name: str, sent: datetime | None = T0, fees: Fees = FEES, gas: int = 100_000, filler=False
) -> Attempt:
    return Attempt(
        tx_hash=name, fees=fees, created_at=T0, broadcast_at=sent, gas=gas, filler=filler
    )


def seen(
    head: int = 100, mined_nonce: int = 5, receipts=(), known=(), final_nonce=None
) -> Observation:
    return Observation(
        head=head,
        mined_nonce=mined_nonce,
        receipts={r.tx_hash: r for r in receipts},
        known=frozenset(known),
        final_nonce=final_nonce,
    )


def decide(
    attempts,
    observation,
    status="sent",
    nonce=5,
    now=T0,
    suggested=None,
    policy=POLICY,
    refusal=None,
    mined_block=None,
):
    return outbox.decide(
        status,
        nonce,
        attempts,
        observation,
        policy,
        now,
        suggested,
        refusal=refusal,
        mined_block=mined_block,
    )


class TestDecide:
    def test_signed_never_sent_is_broadcast(self):
        action = decide([attempt("0xa", sent=None)], seen(), status="signed")
        assert action == Broadcast("0xa", resend=False)

    def test_recorded_replacement_not_yet_sent_is_broadcast_first(self):
        action = decide([attempt("0xa"), attempt("0xb", sent=None)], seen(known={"0xa"}))
        assert action == Broadcast("0xb", resend=False)

    def test_refused_tx_is_resent_as_it_is_never_bumped(self):
        # Nothing was accepted, so a higher fee buys nothing; it would only be paid later.
        refused = Attempt("0xb", Fees(2_250, 113), created_at=T0, broadcast_at=None)
        refusal = Refusal("insufficient funds", 0, T0 + timedelta(seconds=55))
        later = T0 + timedelta(minutes=5)
        action = decide([attempt("0xa"), refused], seen(), now=later, refusal=refusal)
        assert action == Broadcast("0xb", resend=True)
        soon = T0 + timedelta(seconds=60)
        assert isinstance(decide([refused], seen(), now=soon, refusal=refusal), Wait)

    def test_an_hour_without_funds_leaves_the_fees_as_they_were(self):
        attempts = [attempt("0xa", sent=None)]
        refusal = None
        now = T0
        for _ in range(60):
            action = decide(attempts, seen(), status="signed", now=now, refusal=refusal)
            assert not isinstance(action, Replace | Fill)
            if isinstance(action, Broadcast):  # the node refuses it again
                refusal = Refusal("insufficient funds for gas * price + value", 0, now)
            now += timedelta(minutes=1)
        assert action == Broadcast("0xa", resend=True)

    def test_in_mempool_waits(self):
        action = decide([attempt("0xa")], seen(known={"0xa"}), now=T0 + timedelta(seconds=30))
        assert isinstance(action, Wait)

    def test_unknown_to_node_before_timeout_waits(self):
        action = decide([attempt("0xa")], seen(), now=T0 + timedelta(seconds=9))
        assert isinstance(action, Wait)

    def test_unknown_to_node_after_timeout_is_resent_as_recorded(self):
        action = decide([attempt("0xa")], seen(), now=T0 + timedelta(seconds=10))
        assert action == Broadcast("0xa", resend=True)

    def test_stuck_too_long_is_replaced_with_bumped_fees(self):
        action = decide([attempt("0xa")], seen(known={"0xa"}), now=T0 + timedelta(seconds=60))
        assert action == Replace(outbox.bump_fees(FEES, POLICY.bump_percent))
        assert action.fees == Fees(2_250, 113)

    def test_dropped_and_stuck_is_replaced_not_resent(self):
        action = decide([attempt("0xa")], seen(), now=T0 + timedelta(minutes=5))
        assert isinstance(action, Replace)

    def test_bump_is_relative_to_the_latest_attempt(self):
        second = attempt("0xb", sent=T0 + timedelta(seconds=60), fees=Fees(2_250, 113))
        action = decide([attempt("0xa"), second], seen(), now=T0 + timedelta(seconds=121))
        assert action == Replace(Fees(2_532, 128))

    def test_bump_respects_suggested_fees(self):
        action = decide(
            [attempt("0xa")],
            seen(),
            now=T0 + timedelta(seconds=60),
            suggested=Fees(9_000, 500),
        )
        assert action == Replace(Fees(9_000, 500))

    def test_mined_but_shallow_is_recorded_as_mined(self):
        receipt = Receipt("0xa", block_number=99, succeeded=True)
        action = decide([attempt("0xa")], seen(head=100, mined_nonce=6, receipts=[receipt]))
        assert action == Mined(receipt, 1)

    def test_mined_and_recorded_waits_for_depth(self):
        receipt = Receipt("0xa", block_number=99, succeeded=True)
        observation = seen(head=100, mined_nonce=6, receipts=[receipt])
        action = decide([attempt("0xa")], observation, status="mined", mined_block=99)
        assert isinstance(action, Wait)
        assert "1 confirmations" in action.reason

    def test_mined_again_in_another_block_after_a_reorg_is_recorded_anew(self):
        receipt = Receipt("0xa", block_number=100, succeeded=True)
        observation = seen(head=100, mined_nonce=6, receipts=[receipt])
        action = decide([attempt("0xa")], observation, status="mined", mined_block=99)
        assert action == Mined(receipt, 0)

    def test_receipt_gone_sends_a_mined_write_back(self):
        action = decide([attempt("0xa")], seen(mined_nonce=5), status="mined", mined_block=99)
        assert isinstance(action, Unmine)

    def test_nonce_used_at_the_head_but_not_at_depth_is_not_failed(self):
        # One look at the head is not final: the block may be reorged out.
        observation = seen(mined_nonce=6, final_nonce=5, known={"0xa"})
        action = decide([attempt("0xa")], observation, now=T0 + timedelta(seconds=30))
        assert isinstance(action, Wait)
        assert isinstance(decide([attempt("0xa")], seen(mined_nonce=6, final_nonce=6)), Fail)

    def test_mined_deep_enough_confirms(self):
        receipt = Receipt("0xa", block_number=98, succeeded=True, gas_used=50_000)
        action = decide([attempt("0xa")], seen(head=100, mined_nonce=6, receipts=[receipt]))
        assert action == Confirm(receipt, 2)

    def test_any_attempt_mined_confirms_even_an_older_one(self):
        receipt = Receipt("0xa", block_number=90, succeeded=True)
        attempts = [attempt("0xa"), attempt("0xb"), attempt("0xc", sent=None)]
        action = decide(attempts, seen(mined_nonce=6, receipts=[receipt]))
        assert action == Confirm(receipt, 10)

    def test_reverted_and_deep_enough_fails(self):
        receipt = Receipt("0xb", block_number=90, succeeded=False)
        action = decide([attempt("0xa"), attempt("0xb")], seen(mined_nonce=6, receipts=[receipt]))
        assert action == Fail(receipt, 10, "reverted")

    def test_reverted_but_shallow_is_not_failed_yet(self):
        receipt = Receipt("0xa", block_number=100, succeeded=False)
        action = decide([attempt("0xa")], seen(mined_nonce=6, receipts=[receipt]))
        assert action == Mined(receipt, 0)

    def test_permanent_refusals_up_to_the_bound_are_resent(self):
        refusal = Refusal("intrinsic gas too low", POLICY.max_refusals - 1, T0)
        action = decide(
            [attempt("0xa", sent=None)],
            seen(),
            "signed",
            now=T0 + timedelta(minutes=1),
            refusal=refusal,
        )
        assert action == Broadcast("0xa", resend=True)

    def test_permanent_refusals_at_the_bound_fill_the_nonce(self):
        refusal = Refusal("intrinsic gas too low", POLICY.max_refusals, T0)
        action = decide(
            [attempt("0xa", sent=None)],
            seen(),
            "signed",
            suggested=Fees(900, 90),
            refusal=refusal,
        )
        assert action == Fill(Fees(900, 90), "intrinsic gas too low")

    def test_filler_outbids_an_attempt_that_reached_a_pool(self):
        refusal = Refusal("intrinsic gas too low", 3, T0)
        attempts = [attempt("0xa"), attempt("0xb", sent=None, fees=Fees(2_250, 113))]
        action = decide(attempts, seen(), refusal=refusal, suggested=Fees(900, 90))
        assert isinstance(action, Fill)
        assert action.fees == outbox.bump_fees(FEES, POLICY.bump_percent, Fees(900, 90))

    def test_filled_nonce_fails_the_write_with_its_cause_at_depth(self):
        refusal = Refusal("intrinsic gas too low", 3, T0)
        attempts = [attempt("0xa", sent=None), attempt("0xf", filler=True, gas=21_000)]
        shallow = Receipt("0xf", block_number=100, succeeded=True)
        assert decide(attempts, seen(mined_nonce=6, receipts=[shallow]), refusal=refusal) == (
            Mined(shallow, 0)
        )
        deep = Receipt("0xf", block_number=98, succeeded=True)
        action = decide(attempts, seen(mined_nonce=6, receipts=[deep]), refusal=refusal)
        assert isinstance(action, Fail) and action.filled
        assert "intrinsic gas too low" in action.reason

    def test_a_filled_write_is_not_filled_twice(self):
        refusal = Refusal("intrinsic gas too low", 5, T0)
        attempts = [attempt("0xa", sent=None), attempt("0xf", filler=True, gas=21_000)]
        action = decide(attempts, seen(known={"0xf"}), refusal=refusal, now=T0)
        assert isinstance(action, Wait)

    def test_nonce_consumed_by_a_foreign_tx_fails_without_receipt(self):
        action = decide([attempt("0xa")], seen(mined_nonce=6))
        assert isinstance(action, Fail)
        assert action.receipt is None
        assert "nonce 5" in action.reason

    def test_final_rows_are_left_alone(self):
        for status in ("confirmed", "failed"):
            assert isinstance(decide([attempt("0xa")], seen(), status=status), Wait)

    def test_pending_rows_are_not_decided_here(self):
        with pytest.raises(outbox.OutboxError, match="pending"):
            decide([], seen(), status="pending", nonce=None)

    def test_live_row_without_attempts_is_an_error(self):
        with pytest.raises(outbox.OutboxError, match="at least one attempt"):
            decide([], seen(), status="sent")


class TestNonces:
    def test_first_write_takes_the_chain_nonce(self):
        assert outbox.next_nonce(None, 2) == 2

    def test_recorded_but_unsent_nonces_are_never_reused(self):
        # The node forgot our mempool (restart): the recorded txs fill 3..7, new ones follow.
        assert outbox.next_nonce(7, 3) == 8

    def test_nonces_used_outside_the_outbox_are_skipped(self):
        assert outbox.next_nonce(7, 12) == 12

    def test_assigned_nonces_are_contiguous_and_follow_id_order(self):
        assigned = outbox.assign_nonces([42, 7, 19, 8], 10)
        assert assigned == [(7, 10), (8, 11), (19, 12), (42, 13)]

    def test_no_gap_across_batches(self):
        first = outbox.assign_nonces([1, 2, 3], outbox.next_nonce(None, 0))
        highest = max(n for _, n in first)
        second = outbox.assign_nonces([4, 5], outbox.next_nonce(highest, 1))
        nonces = [n for _, n in first + second]
        assert nonces == list(range(5))


class TestFees:
    def test_initial_fees_leave_room_for_the_base_fee_to_double(self):
        assert outbox.initial_fees(1_000, 7) == Fees(2_007, 7)

    @pytest.mark.parametrize("percent", [0, 1, 5, 9.99])
    def test_bump_is_at_least_ten_percent(self, percent):
        bumped = outbox.bump_fees(Fees(1_000, 100), percent)
        assert bumped == Fees(1_100, 110)

    def test_bump_rounds_up(self):
        assert outbox.bump_fees(Fees(1_001, 101), 10) == Fees(1_102, 112)

    def test_bump_of_zero_tip_still_raises_it(self):
        bumped = outbox.bump_fees(Fees(1, 0), 12.5)
        assert bumped.max_priority_fee_per_gas == 1
        assert bumped.max_fee_per_gas >= 2

    def test_cap_never_below_tip(self):
        bumped = outbox.bump_fees(Fees(10, 10), 10, Fees(5, 50))
        assert bumped.max_fee_per_gas >= bumped.max_priority_fee_per_gas == 50

    def test_repeated_bumps_grow_geometrically(self):
        fees = Fees(1_000_000, 100_000)
        for _ in range(5):
            new = outbox.bump_fees(fees, 12.5)
            assert new.max_fee_per_gas * 100 >= fees.max_fee_per_gas * 110
            assert new.max_priority_fee_per_gas * 100 >= fees.max_priority_fee_per_gas * 110
            fees = new
        # 1.125**5 = 1.802032..., each of the five steps rounding up by less than one wei.
        assert 1_802_033 <= fees.max_fee_per_gas <= 1_802_033 + 5

    def test_gas_limit_margin(self):
        assert outbox.gas_limit(21_001, 20) == 25_202

    def test_gas_limit_never_above_the_block_gas_limit(self):
        assert outbox.gas_limit(2_000_000, 20, 1_000_000) == 1_000_000

    def test_fees_are_capped_per_gas_and_per_write(self):
        policy = Policy(max_fee_per_gas=1_000, max_fee_per_write=50_000_000)
        assert outbox.cap_fees(Fees(5_000, 2_000), 21_000, policy) == Fees(1_000, 1_000)
        assert outbox.cap_fees(Fees(5_000, 20), 100_000, policy) == Fees(500, 20)
        assert outbox.cap_fees(Fees(300, 20), 100_000, policy) == Fees(300, 20)
        assert outbox.cap_fees(Fees(5_000, 20), 100_000, Policy()) == Fees(5_000, 20)

    def test_bumps_stop_at_the_cap(self):
        policy = Policy(
            bump_after=timedelta(seconds=60), max_fee_per_gas=2_400, max_fee_per_write=None
        )
        first = attempt("0xa", fees=Fees(2_000, 100))
        late = T0 + timedelta(seconds=60)
        action = decide([first], seen(known={"0xa"}), now=late, policy=policy)
        assert action == Replace(Fees(2_250, 113))
        second = attempt("0xb", sent=T0, fees=Fees(2_250, 113))
        # +10% would be 2_475 > 2_400: no replacement a node would take fits under the cap.
        action = decide([first, second], seen(known={"0xb"}), now=late, policy=policy)
        assert action == Wait("in the mempool at the fee cap")
        action = decide([first, second], seen(), now=late, policy=policy)
        assert action == Broadcast("0xb", resend=True)

    def test_a_day_of_bumps_never_passes_the_caps(self):
        policy = Policy(bump_after=timedelta(seconds=60), max_fee_per_gas=10**12)
        attempts = [attempt("0x0", fees=Fees(10**9, 10**8))]
        now = T0
        for step in range(24 * 60):
            now += timedelta(minutes=1)
            action = decide(attempts, seen(known={attempts[-1].tx_hash}), now=now, policy=policy)
            if isinstance(action, Replace):
                attempts.append(attempt(f"0x{step + 1:x}", sent=now, fees=action.fees))
        assert attempts[-1].fees.max_fee_per_gas <= 10**12
        assert len(attempts) < 80  # about 1.125**n to reach the cap, then no more

    def test_replacement_rule(self):
        assert outbox.is_replacement(Fees(100, 10), Fees(110, 11))
        assert not outbox.is_replacement(Fees(100, 10), Fees(109, 11))
        assert not outbox.is_replacement(Fees(100, 0), Fees(110, 0))

    def test_refusal_causes(self):
        assert outbox.refusal_is_permanent("intrinsic gas too low: gas 30000, minimum needed 53000")
        assert outbox.refusal_is_permanent("Transaction gas limit exceeds block gas limit")
        assert not outbox.refusal_is_permanent("insufficient funds for gas * price + value")
        assert not outbox.refusal_is_permanent("replacement transaction underpriced")


ABI = [
    {
        "type": "function",
        "name": "anchor",
        "inputs": [
            {"name": "root", "type": "bytes32"},
            {"name": "count", "type": "uint32"},
            {"name": "batchId", "type": "bytes32"},
        ],
    },
    {
        "type": "function",
        "name": "verifyEvent",
        "inputs": [
            {"name": "root", "type": "bytes32"},
            {"name": "leaf", "type": "bytes32"},
            {"name": "proof", "type": "bytes32[]"},
        ],
    },
    {
        "type": "function",
        "name": "registerDevice",
        "inputs": [{"name": "org", "type": "address"}, {"name": "device", "type": "address"}],
    },
    {
        "type": "error",
        "name": "LedgerUnknownRoot",
        "inputs": [{"name": "root", "type": "bytes32"}],
    },
]


class TestCalldata:
    def test_anchor_calldata_matches_eth_abi(self):
        root, batch = bytes(range(32)), bytes(32)
        args = outbox.jsonable([root, 3, batch])
        data = outbox.encode_call(outbox.find_function(ABI, "anchor", 3), args)
        selector = keccak(b"anchor(bytes32,uint32,bytes32)")[:4]
        assert data == selector + eth_abi.encode(["bytes32", "uint32", "bytes32"], [root, 3, batch])

    def test_arrays_and_addresses_are_coerced(self):
        leaf = "0x" + "11" * 32
        data = outbox.encode_call(
            outbox.find_function(ABI, "verifyEvent", 3), [leaf, leaf, [leaf, leaf]]
        )
        assert len(data) == 4 + 32 * 3 + 32 + 64
        lower = "0x" + "ab" * 20
        encoded = outbox.encode_call(outbox.find_function(ABI, "registerDevice", 2), [lower, lower])
        assert encoded[4:36] == bytes(12) + bytes.fromhex("ab" * 20)

    def test_wrong_arguments_name_the_signature(self):
        with pytest.raises(outbox.OutboxError, match=r"anchor\(bytes32,uint32,bytes32\)"):
            outbox.encode_call(outbox.find_function(ABI, "anchor", 3), ["0x01", -1, "0x"])

    def test_unknown_function_is_named(self):
        with pytest.raises(outbox.OutboxError, match="no function mint with 4 arguments"):
            outbox.find_function(ABI, "mint", 4)

    def test_constructor_data_is_creation_code_then_arguments(self):
        abi = [{"type": "constructor", "inputs": [{"name": "admin", "type": "address"}]}]
        admin = "0x" + "ab" * 20
        entry = outbox.find_function(abi, outbox.CONSTRUCTOR, 1)
        data = outbox.encode_creation(b"\x60\x80", entry, [admin])
        assert data == b"\x60\x80" + eth_abi.encode(["address"], [admin])
        with pytest.raises(outbox.OutboxError, match="no constructor with 2 arguments"):
            outbox.find_function(abi, outbox.CONSTRUCTOR, 2)
        with pytest.raises(outbox.OutboxError, match=r"constructor\(address\)"):
            outbox.encode_creation(b"", entry, ["not an address"])
        assert outbox.find_function([], outbox.CONSTRUCTOR, 0)["inputs"] == []

    def test_anchor_of_a_batch_already_holding_its_root_is_done(self):
        root, batch = "0x" + "11" * 32, "0x" + "22" * 32
        assert outbox.already_done("CustodyLedger", "anchor", [root, 1, batch], b"\x11" * 32)
        assert not outbox.already_done("CustodyLedger", "anchor", [root, 1, batch], b"\x33" * 32)
        assert not outbox.already_done("CustodyLedger", "anchor", [root, 1, batch], bytes(32))
        assert not outbox.already_done("CustodyLedger", "revokeDevice", [root], b"\x11" * 32)

    def test_revert_reasons(self):
        custom = keccak(b"LedgerUnknownRoot(bytes32)")[:4] + bytes([0xAA]) * 32
        ledger = load_artifact("CustodyLedger")
        assert outbox.describe_revert(custom, ledger) == "LedgerUnknownRoot(0x" + "aa" * 32 + ")"
        error = bytes.fromhex("08c379a0") + eth_abi.encode(["string"], ["nope"])
        assert outbox.describe_revert(error, ledger) == "nope"
        assert outbox.describe_revert(b"", ledger) == "reverted without a reason"
        assert outbox.describe_revert(b"\x01\x02\x03\x04", ledger).startswith("reverted with data")
