"""A trade world for the trade pages' tests: a seller, a buyer, an arbiter and a stranger.

The API on SQLite and the embedded chain (test_api_transfers.world: the maker "Maker" owns
items S1..S3 of GTIN), every organization custodial and funded with coin, "Fair Referee"
registered as the only arbiter; the writers (the operator's and the custodial senders') are
run by `settle` until nothing is owed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session

from provenance_api import db
from provenance_api.schemas import Role
from provenance_api.services import wallets
from provenance_api.services.chain_writes import unsettled_count
from tests.integration.api_support import GTIN, Api
from tests.integration.test_api_transfers import org_of, world

COIN = 10**18
DEPOSIT = COIN // 10
PRICE = COIN
SERIAL = "S2"  # a QR-labelled item of the maker's, its passport not minted yet


@dataclass
class Trading:
    """The served world: the API, each organization's key and id, and the chain writers."""

    api: Api
    keys: dict[str, str] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)
    writers: list[Any] = field(default_factory=list)

    def settle(self, timeout: float = 90.0) -> None:
        """Tick the operator's and the custodial writers until no write is owed."""
        rt = self.api.rt
        if not self.writers:
            self.writers = [rt.new_writer(), rt.new_custodial_writers()]
        deadline = time.monotonic() + timeout
        while True:
            for writer in self.writers:
                writer.tick()
            with Session(rt.engine) as session:
                if unsettled_count(session) == 0:
                    return
            assert time.monotonic() < deadline, "writes still unsettled"
            time.sleep(0.05)

    def open_trade(self, **terms: Any) -> int:
        """The seller opens a trade of SERIAL with the buyer over the JSON API; its id."""
        body = {
            "gtin": GTIN,
            "serial": SERIAL,
            "buyer_organization_id": self.ids["buyer"],
            "deposit": str(DEPOSIT),
            "price": str(PRICE),
            **terms,
        }
        answer = self.api.call("POST", "/v1/trades", self.keys["seller"], json=body)
        assert answer.status_code == 201, answer.get_json()
        self.settle()
        return answer.get_json()["id"]

    def close(self) -> None:
        for writer in self.writers:
            writer.release()
        self.api.rt.close()


def trading(tmp_path, **extra: Any) -> Trading:
    """The world, its organizations funded and the arbiter registered (all settled)."""
    api = world(tmp_path, **extra)
    made = Trading(api)
    made.keys = {
        "seller": api.supplier,
        "buyer": api.retailer,
        "arbiter": api.key(Role.ARBITER, "Fair Referee"),
        "stranger": api.carrier,
    }
    made.ids = {name: org_of(api, key)["id"] for name, key in made.keys.items()}
    rt = api.rt
    with db.session_scope(rt.engine) as session:
        for name in ("seller", "buyer", "arbiter"):
            wallets.fund_organization(
                session, made.ids[name], 5 * COIN, operator=rt.operator.address
            )
    made.settle()
    profile = {
        "summary": "Disputes over consumer goods, decided within a week.",
        "languages": ["English", "French"],
        "jurisdictions": ["EU"],
        "fee_note": "The losing party's deposit.",
        "contact": "cases@referee.example",
    }
    registered = api.call(
        "POST",
        "/v1/arbiters",
        made.keys["arbiter"],
        json={"display_name": "Fair Referee", "profile": profile},
    )
    assert registered.status_code in (200, 202), registered.get_json()
    made.settle()
    return made
