"""proof.js in headless Chromium: a real item's proofs check out, and every forgery fails.

The item is registered, handed over and anchored on anvil through the API (proof_support's
shop); the browser gets only what the buyer page embeds and reads the chain itself over
JSON-RPC. tests/e2e/test_buyer_page_proof.py runs the same checks on the real page.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from contracts_abi import eip712
from tests.e2e.proof_support import (
    Proven,
    harness_html,
    harness_server,
    proof_strings,
    proven_item,
)

pytestmark = [pytest.mark.anvil, pytest.mark.slow]


@pytest.fixture
def proven(tmp_path: Path, anvil_url: str) -> Iterator[Proven]:
    with proven_item(tmp_path, anvil_url) as made:
        yield made


def check_in_browser(
    page,
    base: str,
    served: dict[str, bytes],
    data: dict[str, Any],
    strings: dict[str, Any] | None = None,
) -> dict:
    """Load the harness with `data`, press the button; the overall result and each check's."""
    served["html"] = harness_html(data, strings)
    page.goto(base + "/")
    button = (strings or {}).get("button", "Check the proofs in this browser")
    page.get_by_role("button", name=button).click()
    overall = page.locator("[data-proof-overall]")
    overall.wait_for(timeout=20_000)
    checks = page.locator("[data-check]")
    return {
        "overall": overall.get_attribute("data-result"),
        "text": overall.inner_text(),
        "checks": [
            (item.get_attribute("data-check"), item.get_attribute("data-result"))
            for item in checks.all()
        ],
        "events": [
            item.get_attribute("data-result") for item in page.locator("[data-event]").all()
        ],
    }


def _bent(value: str) -> str:
    """A 0x hex string with its last digit changed."""
    return value[:-1] + ("0" if value[-1] != "0" else "1")


def _resign_attestation(proven: Proven, key: bytes) -> Callable[[dict], None]:
    def change(data: dict) -> None:
        shown, att = data["verification"], data["verification"]["attestation"]
        signed = eip712.TagVerdict(
            gtin=att["gtin"],
            serial=att["serial"],
            tag_kind=att["tag_kind"],
            verdict=att["verdict"],
            reasons_hash=bytes.fromhex(att["reasons_hash"][2:]),
            checked_at=att["checked_at"],
        )
        chain = proven.chain
        signature = eip712.sign_tag_verdict(
            key, signed, chain_id=chain["chain_id"], ledger=chain["ledger"]
        )
        att["signature"] = "0x" + signature.hex()
        att["signer"] = eip712.address_of_private_key(key)
        assert shown["verdict"] == att["verdict"]

    return change


def _resign_event(step: dict, key: bytes, shown: dict) -> None:
    """Make `step` a well-formed event of the reader of `key`, signed by it."""
    step["device"] = eip712.address_of_private_key(key)
    event = eip712.CustodyEvent(
        event_id=uuid.UUID(step["event_id"]),
        gtin=shown["gtin"],
        serial=shown["serial"],
        biz_step=step["biz_step"],
        disposition=step["disposition"],
        read_point=step["read_point"],
        from_party=step["from_party"],
        to_party=step["to_party"],
        event_time=int(datetime.fromisoformat(step["event_time"]).timestamp()),
        time_zone_offset=step["time_zone_offset"],
        tag_evidence=bytes.fromhex(step["tag_evidence"][2:]),
        device=step["device"],
    )
    digest = eip712.custody_event_digest(event)
    step["digest"] = "0x" + digest.hex()
    step["signature"] = "0x" + eip712.sign_digest(key, digest).hex()


def _anchored(data: dict) -> dict:
    """The first step with a Merkle proof of at least one node."""
    return next(s for s in data["verification"]["history"] if s["proof"])


def _device_step(data: dict) -> dict:
    return next(s for s in data["verification"]["history"] if s["biz_step"] == "receiving")


def test_a_real_items_proofs_pass_and_each_forgery_fails(proven, page, subtests) -> None:
    shown = proven.verification
    steps = shown["history"]
    assert [s["biz_step"] for s in steps] == ["commissioning", "shipping", "receiving"]
    assert all(s["anchoring"] == "confirmed" and s["root"] for s in steps), steps
    assert any(s["proof"] for s in steps)  # the commissioning batch holds three items
    assert "tag_url" not in steps[0]
    # The service signed with the key the ledger made its operator.
    att = shown["attestation"]
    assert att["signer"] == Account.from_key(proven.operator_key).address
    assert (att["verdict"], att["tag_kind"]) == (shown["verdict"], "ntag424_sun")

    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    with harness_server() as (base, served):
        served["html"] = harness_html(proven.data())
        page.goto(base + "/")
        page.get_by_role("button", name="Check the proofs in this browser").wait_for()
        assert not [url for url in requested if "vendor" in url]  # the crypto waits for a click
        genuine = check_in_browser(page, base, served, proven.data())
        # The page's own files and the node: no CDN, no third party.
        paths = {url.split("/", 3)[3] for url in requested if url.startswith(base)}
        assert paths == {"", "static/proof.js", "static/vendor/noble.js"}
        others = {url.split("/", 3)[2] for url in requested if not url.startswith(base)}
        assert others == {proven.chain["rpc_url"].split("/", 3)[2]}
        assert genuine["overall"] == "pass", genuine
        assert genuine["text"] == "Every check your browser made passed."
        assert genuine["events"] == ["pass"] * 3
        kinds = dict.fromkeys(key for key, _ in genuine["checks"])
        assert list(kinds) == [
            "attestation",
            "operator",
            "tag",
            "digest",
            "signature",
            "supplier",
            "proof",
            "anchor",
            "device",
        ]
        assert {result for _, result in genuine["checks"]} == {"pass", "service"}
        # What the browser cannot check is said to rest on the service, in words.
        page_text = page.locator("#verify-yourself").inner_text()
        assert "NTAG 424 DNA" in page_text and "rests on our word" in page_text

        other_key = bytes(Account.create().key)
        forgeries: dict[str, tuple[Callable[[dict], None], str, str]] = {
            "a proof node": (
                lambda d: _anchored(d)["proof"].__setitem__(0, _bent(_anchored(d)["proof"][0])),
                "proof",
                "fail",
            ),
            "the root": (
                lambda d: _anchored(d).__setitem__("root", _bent(_anchored(d)["root"])),
                "proof",
                "fail",
            ),
            "a salt": (
                lambda d: _anchored(d).__setitem__("salt", _bent(_anchored(d)["salt"])),
                "anchor",
                "fail",
            ),
            "an event's signature": (
                lambda d: _device_step(d).__setitem__(
                    "signature", _bent(_device_step(d)["signature"][:-2]) + "1b"
                ),
                "signature",
                "fail",
            ),
            "an event's place": (
                lambda d: _device_step(d).__setitem__("read_point", "urn:epc:id:sgln:1.2.0"),
                "digest",
                "fail",
            ),
            "the verdict shown": (
                lambda d: d["verification"].__setitem__("verdict", "suspicious"),
                "attestation",
                "fail",
            ),
            "the attestation's verdict": (
                lambda d: d["verification"]["attestation"].__setitem__("verdict", "suspicious"),
                "attestation",
                "fail",
            ),
            "a reason added": (
                lambda d: d["verification"]["reasons"].append({"code": "x", "message": "y"}),
                "attestation",
                "fail",
            ),
            "a verdict signed by an unregistered key": (
                _resign_attestation(proven, other_key),
                "operator",
                "fail",
            ),
            "the ledger named by the page": (
                lambda d: d["chain"].__setitem__("ledger", Account.create().address),
                "attestation",
                "fail",
            ),
        }
        for name, (change, key, expected) in forgeries.items():
            with subtests.test(forgery=name):
                data = proven.data()
                change(data)
                seen = check_in_browser(page, base, served, data)
                assert seen["overall"] == "fail", (name, seen)
                assert (key, expected) in seen["checks"], (name, seen)

        with subtests.test(forgery="a verdict re-signed by the operator itself still passes"):
            data = proven.data()
            _resign_attestation(proven, proven.operator_key)(data)
            assert check_in_browser(page, base, served, data)["overall"] == "pass"

        with subtests.test(forgery="an event signed by an unregistered reader"):
            data = proven.data()
            _resign_event(_device_step(data), bytes(Account.create().key), data["verification"])
            seen = check_in_browser(page, base, served, data)
            assert seen["overall"] == "fail", seen
            assert [
                check for check in seen["checks"] if check[0] in ("digest", "signature", "device")
            ][-3:] == [("digest", "pass"), ("signature", "pass"), ("device", "fail")]

        with subtests.test(case="a step not anchored yet is not checked, and says so"):
            data = proven.data()
            _device_step(data).update(root=None, proof=None, anchoring="owed")
            seen = check_in_browser(page, base, served, data)
            assert (seen["overall"], seen["events"]) == ("pending", ["pass", "pass", "pending"])

        with subtests.test(case="an unsigned verdict is not checked, and says so"):
            data = proven.data()
            data["verification"]["attestation"] = None
            seen = check_in_browser(page, base, served, data)
            assert seen["overall"] == "pending", seen
            assert ("attestation", "pending") in seen["checks"]
            assert seen["events"] == ["pass"] * 3

        with subtests.test(case="the page's own words"):
            strings = proof_strings(button="Prüfen", **{"pass": "Alle Prüfungen bestanden."})
            seen = check_in_browser(page, base, served, proven.data(), strings)
            assert (seen["overall"], seen["text"]) == ("pass", "Alle Prüfungen bestanden.")

        with subtests.test(case="no node configured"):
            data = proven.data()
            data["chain"]["rpc_url"] = None
            seen = check_in_browser(page, base, served, data)
            assert seen["overall"] == "unavailable", seen

        with subtests.test(case="a node on another chain"):
            data = proven.data()
            data["chain"]["chain_id"] = 1
            seen = check_in_browser(page, base, served, data)
            assert seen["overall"] == "unavailable", seen
            assert "not chain 1" in seen["text"]
