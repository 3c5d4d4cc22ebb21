"""Every route × every role × own/other tenant, against the one access table.

A route added without an entry in provenance_api.api.access (and a probe here) fails
`test_every_route_is_in_the_table_and_has_a_probe`; a route in the table is called by every
role, on the caller's own resource and on another tenant's, and must answer what the table
and the tenancy rule say: 403 for a role not listed, 404 for another tenant's resource.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from eth_account import Account

from firmware_tools.formats.gs1 import compute_check_digit
from provenance_api.api import access
from provenance_api.cli import ensure_deployed, fund_operator
from provenance_api.models import Trade
from provenance_api.schemas import Role
from provenance_api.services.ports import NewCustodyEvent
from tests.integration.api_support import OTHER_GTIN, Api

OWN, OTHER = "own", "other"


def probe_event(event_id: str, item: Any) -> NewCustodyEvent:
    """A stored event about `item`, recorded by its supplier (its content is not checked here)."""
    return NewCustodyEvent(
        event_id=event_id,
        item_id=item.id,
        organization_id=item.organization_id,
        party="0x" + "0a" * 20,
        gtin=item.gtin,
        serial=item.serial,
        biz_step="shipping",
        disposition="in_transit",
        read_point="dock",
        from_party="0x" + "00" * 20,
        to_party="0x" + "00" * 20,
        event_time=1_790_000_000,
        time_zone_offset=0,
        tag_url="https://id.example.com/",
        tag_uid=b"",
        tag_originality_signature=b"",
        tag_evidence=bytes(32),
        device="0x" + "0d" * 20,
        signature=bytes(65),
        digest=bytes(range(32)),
        salt=bytes(range(32, 64)),
        tag_verdict="authentic",
        tag_codes=[],
        flags=[],
        received_at=datetime.now(UTC),
    )


def fresh_gtins(lead: str) -> Iterator[str]:
    """Valid GTIN-14s starting with `lead`, never the same twice."""
    for n in itertools.count(1):
        body = f"{lead}{n:012d}"
        yield body + compute_check_digit(body)


NEW_GTINS = fresh_gtins("1")


@dataclass(frozen=True)
class Probe:
    """How to call a route: method, a URL for the caller's own or another tenant's resource,
    an optional JSON body, the success status, and whether the URL names a resource."""

    method: str
    url: Callable[[Any, str], str]
    ok: int = 200
    json: Callable[[], dict] | None = None
    addresses_resource: bool = False
    # A body that depends on what `url` set up (e.g. which item to transfer).
    world_json: Callable[[Any], dict] | None = None
    # Operators read any tenant's resource (they own none, so "own" names nothing).
    operators_read_any: bool = False
    # Operators are let through the table only to be told the resource does not exist.
    operators_not_found: bool = False


class World:
    """Callers of every role, each with resources of its own, and a rival supplier."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.keys = {role: api.key(role) for role in Role}
        self.rival = api.key(Role.SUPPLIER)
        self.maker = api.key(Role.SUPPLIER)
        self.gtins = fresh_gtins("2")
        self.names = iter(f"New org {n}" for n in range(1000))
        self.trade_ids = itertools.count(1)
        assert self._post_product(self.rival, OTHER_GTIN) == 201
        assert self._post_item(self.rival, OTHER_GTIN) == 200
        self.rival_device = Account.create().address
        body = {"address": self.rival_device, "name": "Rival reader"}
        assert api.call("POST", "/v1/devices", self.rival, json=body).status_code == 201

    def _post_product(self, key: str, gtin: str) -> int:
        body = {"gtin": gtin, "name": "Probe product"}
        return self.api.call("POST", "/v1/products", key, json=body).status_code

    def _post_item(self, key: str, gtin: str) -> int:
        body = {"items": [{"gtin": gtin, "serial": "S1", "tag": "qr"}]}
        return self.api.call("POST", "/v1/items", key, json=body).status_code

    def item(self, key: str, tenant: str) -> str:
        """The path of an item the caller owns (when it can own one), or the rival's."""
        gtin = self.product(key, tenant)
        if tenant == OWN:
            self._post_item(key, gtin)
        return f"{gtin}/S1"

    def product(self, key: str, tenant: str) -> str:
        """A GTIN the caller owns (when it can own one), or the rival's."""
        if tenant == OTHER:
            return OTHER_GTIN
        gtin = next(self.gtins)
        self._post_product(key, gtin)  # refused for non-suppliers: then nobody owns it
        return gtin

    def device(self, key: str, tenant: str) -> str:
        """An address of the caller's device (when it can register one), or the rival's."""
        if tenant == OTHER:
            return self.rival_device
        address = Account.create().address
        body = {"address": address, "name": "Probe reader"}
        self.api.call("POST", "/v1/devices", key, json=body)  # refused for operators
        return address

    def deployed(self) -> None:
        """Deploy the contracts on the app's embedded chain once (transfers sign for them)."""
        if not getattr(self, "_deployed", False):
            runtime = self.api.app.extensions["provenance"]
            fund_operator(runtime)
            ensure_deployed(runtime)
            self._deployed = True

    def held_item(self, key: str, tenant: str) -> tuple[str, str]:
        """(GTIN, serial) of an item the caller owns now (a maker's item transferred to it when
        the caller is not a supplier), or the rival's item, which the caller never held."""
        self.deployed()
        if tenant == OTHER:
            return OTHER_GTIN, "S1"
        me = self.api.call("GET", "/v1/me", key).get_json()
        if me.get("organization") is None:  # an operator: refused before the item matters
            return OTHER_GTIN, "S1"
        if me["organization"]["kind"] == "supplier":
            return self.item(key, OWN).split("/")  # type: ignore[return-value]
        gtin, serial = self.item(self.maker, OWN).split("/")
        body = {"gtin": gtin, "serial": serial, "to_organization_id": me["organization"]["id"]}
        assert self.api.call("POST", "/v1/transfers", self.maker, json=body).status_code == 201
        return gtin, serial

    def event_of(self, key: str, tenant: str) -> str:
        """The id of an event stored about an item the caller holds, or about the rival's item."""
        gtin, serial = self.held_item(key, tenant)
        event_id = str(uuid.uuid4())
        with self.api.uow() as uow:
            item = uow.items.get(gtin, serial)
            uow.events.add_many([probe_event(event_id, item)])
            uow.commit()
        return event_id

    def transfer_of(self, key: str, tenant: str) -> str:
        """Set up the next transfer body (the caller's held item, or the rival's)."""
        gtin, serial = self.held_item(key, tenant)
        self.pending = {"gtin": gtin, "serial": serial, "to_address": Account.create().address}
        return "/v1/transfers"

    def capture_job(self, key: str, tenant: str) -> str:
        """The captureID of an EPCIS capture by the caller (a random one when it may not
        capture), or by the rival."""
        owner = self.rival if tenant == OTHER else key
        response = self.api.call("POST", "/v1/epcis/capture", owner, json=PROBE_CAPTURE)
        return response.get_json().get("captureID") or str(uuid.uuid4())

    def rival_id(self) -> int:
        return self.api.call("GET", "/v1/me", self.rival).get_json()["organization"]["id"]

    def trade_body(self, key: str, tenant: str) -> str:
        """Set up the next trade to open: the caller's held item (or the rival's), sold to
        the rival (or, for the rival's item, to the maker)."""
        gtin, serial = self.held_item(key, tenant)
        self.pending = {
            "gtin": gtin,
            "serial": serial,
            "buyer_organization_id": self.rival_id(),
            "deposit": "1",
        }
        return "/v1/trades"

    def trade(self, key: str, tenant: str) -> int:
        """A trade the caller is a party to (or the appointed arbiter of), or the rival's with
        the maker; opened (not yet on the chain)."""
        self.deployed()
        me = self.api.call("GET", "/v1/me", key).get_json().get("organization")
        if tenant == OTHER or me is None:
            seller = self.rival
            gtin, serial = self.item(self.rival, OWN).split("/")
            buyer = self.api.call("GET", "/v1/me", self.maker).get_json()["organization"]["id"]
        elif me["kind"] == "arbiter":
            seller, buyer = self.maker, self.rival_id()
            gtin, serial = self.item(self.maker, OWN).split("/")
        else:
            seller, buyer = key, self.rival_id()
            gtin, serial = self.held_item(key, OWN)
        body = {"gtin": gtin, "serial": serial, "buyer_organization_id": buyer, "deposit": "1"}
        opened = self.api.call("POST", "/v1/trades", seller, json=body)
        assert opened.status_code == 201, opened.get_json()
        trade_id = opened.get_json()["id"]
        if tenant == OWN and me is not None and me["kind"] == "arbiter":
            # As the chain's refresh records an appointed arbiter.
            with self.api.uow() as uow:
                row = uow.trades.get(trade_id)
                row.arbiter_organization_id = me["id"]
                uow.trades.add(row)
                uow.commit()
        return trade_id

    def new_arbiter(self, key: str, register: bool) -> str:
        """For an arbiter caller, a fresh arbiter organization (registered if asked) becomes
        the caller: each registers once."""
        me = self.api.call("GET", "/v1/me", key).get_json().get("organization")
        if me is None or me["kind"] != "arbiter":
            return "/v1/arbiters"
        self.deployed()
        self.key = self.api.key(Role.ARBITER)
        if register:
            body = {"display_name": "Probe arbiter", "profile": {"summary": "Probe."}}
            assert self.api.call("POST", "/v1/arbiters", self.key, json=body).status_code == 202
        return "/v1/arbiters"

    def arbiter_id(self) -> int:
        """A freshly registered arbiter, for an operator to flag."""
        self.deployed()
        key = self.api.key(Role.ARBITER)
        body = {"display_name": "Probe arbiter", "profile": {"summary": "Probe."}}
        return self.api.call("POST", "/v1/arbiters", key, json=body).get_json()["arbiter"]["id"]

    def trade_of(
        self, key: str, tenant: str, *, state: str = "funded", record: bool = False
    ) -> int:
        """A trade row the caller sells in (with a record when `record`), or the rival's; an
        operator, who trades nothing, gets the rival's."""
        me = self.api.call("GET", "/v1/me", key).get_json().get("organization")
        seller_key = key if tenant == OWN and me is not None else self.rival
        seller = self.api.call("GET", "/v1/me", seller_key).get_json()["organization"]
        buyer = self.api.call("GET", "/v1/me", self.maker).get_json()["organization"]
        chain_id = next(self.trade_ids)
        # An item per trade: the database allows one live trade per item.
        serial = f"TRADE{chain_id}"
        body = {"items": [{"gtin": OTHER_GTIN, "serial": serial, "tag": "qr"}]}
        assert self.api.call("POST", "/v1/items", self.rival, json=body).status_code == 200
        with self.api.uow() as uow:
            item = uow.items.get(OTHER_GTIN, serial)
            trade = Trade(
                item_id=item.id,
                seller_organization_id=seller["id"],
                buyer_organization_id=buyer["id"],
                seller_address=seller["address"],
                buyer_address=buyer["address"],
                deposit=1,
                price=0,
                deposit_window=60,
                ship_window=60,
                confirm_window=60,
                agree_window=60,
                rule_window=60,
                opened_by_organization_id=seller["id"],
                open_write_key=f"probe-open-{chain_id}",
                escrow_address="0x" + "e5" * 20,  # no escrow's: nothing to read on-chain
                chain_trade_id=chain_id,
                state=state,
                outcome="completed" if state == "settled" else None,
            )
            trade_id = uow.trades.add(trade).id
            uow.commit()
        if record:
            body = {"kind": "message", "text": "probe"}
            added = self.api.call("POST", f"/v1/trades/{trade_id}/details", seller_key, json=body)
            assert added.status_code == 201, added.get_json()
        return trade_id

    def spare_key_prefix(self, key: str, tenant: str) -> str:
        """A second key of the caller (so revoking it is not revoking the last), or the rival's."""
        owner = self.rival if tenant == OTHER else key
        created = self.api.call("POST", "/v1/api-keys", owner).get_json()
        return created["prefix"]


PROBE_EVENTS = {
    "events": [
        {
            "event_id": "0b5c7f36-3a4f-4c39-9a53-4f1f8a1a2b3c",
            "gtin": OTHER_GTIN,
            "serial": "S1",
            "biz_step": "receiving",
            "disposition": "in_progress",
            "read_point": "dock 1",
            "event_time": "2026-12-01T10:00:00+01:00",
            "device": "0x" + "ab" * 20,
            "tag": {"url": "https://id.example.com/01/04006381333931/21/S1"},
            "signature": "0x" + "11" * 64 + "1b",
        }
    ]
}

PROBE_CAPTURE = {
    "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
    "type": "EPCISDocument",
    "schemaVersion": "2.0",
    "creationDate": "2026-12-01T10:00:00Z",
    "epcisBody": {
        "eventList": [
            {
                "type": "ObjectEvent",
                "eventTime": "2026-12-01T10:00:00+01:00",
                "eventTimeZoneOffset": "+01:00",
                "epcList": [f"https://id.gs1.org/01/{OTHER_GTIN}/21/S1"],
                "action": "OBSERVE",
                "bizStep": "inspecting",
            }
        ]
    },
}

PROBES: dict[str, Probe] = {
    "me.get_me": Probe("GET", lambda w, t: "/v1/me"),
    "api_keys.list_api_keys": Probe("GET", lambda w, t: "/v1/api-keys"),
    "api_keys.create_api_key": Probe("POST", lambda w, t: "/v1/api-keys", ok=201),
    "api_keys.revoke_api_key": Probe(
        "DELETE",
        lambda w, t: f"/v1/api-keys/{w.spare_key_prefix(w.key, t)}",
        addresses_resource=True,
    ),
    "organizations.create_organization": Probe(
        "POST",
        lambda w, t: "/v1/organizations",
        ok=201,
        json=lambda: {"name": f"Org {id(object())}", "kind": "retailer"},
    ),
    "organizations.list_organizations": Probe("GET", lambda w, t: "/v1/organizations"),
    "products.create_product": Probe(
        "POST",
        lambda w, t: "/v1/products",
        ok=201,
        json=lambda: {"gtin": next(NEW_GTINS), "name": "Tea"},
    ),
    "products.list_products": Probe("GET", lambda w, t: "/v1/products"),
    "products.get_product": Probe(
        "GET", lambda w, t: f"/v1/products/{w.product(w.key, t)}", addresses_resource=True
    ),
    "products.update_product": Probe(
        "PATCH",
        lambda w, t: f"/v1/products/{w.product(w.key, t)}",
        json=lambda: {"name": "Renamed"},
        addresses_resource=True,
    ),
    "items.register_items": Probe(
        "POST",
        lambda w, t: "/v1/items",
        json=lambda: {"items": [{"gtin": next(NEW_GTINS), "serial": "S1", "tag": "qr"}]},
    ),
    "items.list_items": Probe(
        "GET", lambda w, t: f"/v1/items?gtin={w.product(w.key, t)}", addresses_resource=True
    ),
    "items.get_item": Probe(
        "GET", lambda w, t: f"/v1/items/{w.item(w.key, t)}", addresses_resource=True
    ),
    "sun_keys.create_sun_key": Probe("POST", lambda w, t: "/v1/sun-keys", ok=201, json=dict),
    "sun_keys.list_sun_keys": Probe("GET", lambda w, t: "/v1/sun-keys"),
    "devices.register_device": Probe(
        "POST",
        lambda w, t: "/v1/devices",
        ok=201,
        json=lambda: {"address": Account.create().address, "name": "Reader"},
    ),
    "devices.list_devices": Probe("GET", lambda w, t: "/v1/devices"),
    "devices.revoke_device": Probe(
        "DELETE", lambda w, t: f"/v1/devices/{w.device(w.key, t)}", addresses_resource=True
    ),
    # A well-formed event from a device nobody registered: 200, with the event rejected.
    "events.record_events": Probe("POST", lambda w, t: "/v1/events", json=lambda: PROBE_EVENTS),
    "items.mint_passport": Probe(
        "POST",
        lambda w, t: "/v1/items/{}/{}/passport".format(*w.held_item(w.key, t)),
        ok=201,
        json=dict,
        addresses_resource=True,
    ),
    "items.get_passport": Probe(
        "GET",
        lambda w, t: "/v1/items/{}/{}/passport".format(*w.held_item(w.key, t)),
        addresses_resource=True,
    ),
    "items.get_history": Probe(
        "GET",
        lambda w, t: "/v1/items/{}/{}/history".format(*w.held_item(w.key, t)),
        addresses_resource=True,
    ),
    "events.get_event": Probe(
        "GET", lambda w, t: f"/v1/events/{w.event_of(w.key, t)}", addresses_resource=True
    ),
    "transfers.create_transfer": Probe(
        "POST",
        lambda w, t: w.transfer_of(w.key, t),
        ok=201,
        world_json=lambda w: w.pending,
        addresses_resource=True,
    ),
    "transfers.list_transfers": Probe(
        "GET",
        lambda w, t: "/v1/transfers?gtin={}&serial={}".format(*w.held_item(w.key, t)),
        addresses_resource=True,
    ),
    # Claims (issue 11): the item's current owner makes a buyer's code and lists its codes.
    "claim_codes.create_claim_code": Probe(
        "POST",
        lambda w, t: "/v1/items/{}/{}/claim-codes".format(*w.held_item(w.key, t)),
        ok=201,
        addresses_resource=True,
    ),
    "claim_codes.list_claim_codes": Probe(
        "GET",
        lambda w, t: "/v1/items/{}/{}/claim-codes".format(*w.held_item(w.key, t)),
        addresses_resource=True,
    ),
    "trust.list_trust": Probe("GET", lambda w, t: "/v1/trust"),
    # EPCIS 2.0 export: a query, not a resource; another tenant's item answers an empty page.
    "epcis.query_epcis_events": Probe(
        "GET",
        lambda w, t: "/v1/epcis/events?MATCH_epc=https://id.gs1.org/01/{}/21/{}".format(
            *w.held_item(w.key, t)
        ),
    ),
    # EPCIS 2.0 capture: a new job for anyone who may; a job is its capturer's alone.
    "epcis.capture_epcis_document": Probe(
        "POST", lambda w, t: "/v1/epcis/capture", ok=202, json=lambda: PROBE_CAPTURE
    ),
    "epcis.get_capture_job": Probe(
        "GET",
        lambda w, t: f"/v1/epcis/capture/{w.capture_job(w.key, t)}",
        addresses_resource=True,
    ),
    # Verification (issue 10).
    "verifications.set_item_status": Probe(
        "POST",
        lambda w, t: f"/v1/items/{w.item(w.key, t)}/status",
        json=lambda: {"status": "recalled", "reason": "probe"},
        addresses_resource=True,
    ),
    "verifications.get_item_status": Probe(
        "GET", lambda w, t: f"/v1/items/{w.item(w.key, t)}/status", addresses_resource=True
    ),
    "verifications.list_item_scans": Probe(
        "GET",
        lambda w, t: f"/v1/items/{w.item(w.key, t)}/verifications",
        addresses_resource=True,
        operators_read_any=True,
    ),
    # Trades (issue 12): actions on a trade not yet open on the chain run up to the check of
    # its state (409); another tenant's trade is 404.
    "trades.create_trade": Probe(
        "POST",
        lambda w, t: w.trade_body(w.key, t),
        ok=201,
        world_json=lambda w: w.pending,
        addresses_resource=True,
    ),
    "trades.list_trades": Probe("GET", lambda w, t: "/v1/trades"),
    "trades.get_trade": Probe(
        "GET", lambda w, t: f"/v1/trades/{w.trade(w.key, t)}", addresses_resource=True
    ),
    **{
        f"trades.{name}": Probe(
            "POST",
            lambda w, t, path=path: f"/v1/trades/{w.trade(w.key, t)}/{path}",
            ok=ok,
            json=(lambda body=body: body),
            addresses_resource=True,
        )
        for name, path, body, ok in (
            ("deposit", "deposit", {}, 409),
            ("cancel", "cancel", {}, 409),
            ("ship", "ship", {}, 409),
            # The caller's own trades are its sales: a seller never confirms receipt.
            ("confirm", "confirm", {}, 403),
            ("dispute", "dispute", {}, 409),
            ("decline_arbiter", "arbiter/decline", {}, 409),
            ("accept_arbiter", "arbiter/accept", {"arbiter_id": 1}, 409),
            ("rule", "rule", {"for_buyer": True}, 409),
            ("timeout", "timeout", {}, 409),
        )
    },
    "trades.get_credit": Probe("GET", lambda w, t: (w.deployed(), "/v1/trades/credit")[1]),
    "trades.withdraw": Probe("POST", lambda w, t: (w.deployed(), "/v1/withdrawals")[1], ok=409),
    "arbiters.register_arbiter": Probe(
        "POST",
        lambda w, t: w.new_arbiter(w.key, register=False),
        ok=202,
        json=lambda: {"display_name": "Probe arbiter", "profile": {"summary": "Probe."}},
    ),
    "arbiters.retire_arbiter": Probe(
        "DELETE", lambda w, t: w.new_arbiter(w.key, register=True) + "/me", ok=202
    ),
    "arbiters.flag_arbiter_tie": Probe(
        "POST",
        lambda w, t: f"/v1/arbiters/{w.arbiter_id()}/ties",
        ok=201,
        world_json=lambda w: {"organization_id": w.rival_id(), "reason": "probe"},
    ),
    # A trade's personal data (issue 12): its parties (and accepted arbiter) only; operators
    # and other tenants are not told the trade exists; operators alone set legal holds.
    "trade_details.add_trade_record": Probe(
        "POST",
        lambda w, t: f"/v1/trades/{w.trade_of(w.key, t)}/details",
        ok=201,
        json=lambda: {"kind": "message", "text": "probe"},
        addresses_resource=True,
        operators_not_found=True,
    ),
    "trade_details.get_trade_details": Probe(
        "GET",
        lambda w, t: f"/v1/trades/{w.trade_of(w.key, t)}/details",
        addresses_resource=True,
        operators_not_found=True,
    ),
    "trade_details.get_trade_record_content": Probe(
        "GET",
        lambda w, t: f"/v1/trades/{w.trade_of(w.key, t, record=True)}/details/1/content",
        addresses_resource=True,
        operators_not_found=True,
    ),
    "trade_details.export_trade_details": Probe(
        "GET",
        lambda w, t: f"/v1/trades/{w.trade_of(w.key, t)}/details/export",
        addresses_resource=True,
        operators_not_found=True,
    ),
    "trade_details.erase_trade_details": Probe(
        "DELETE",
        lambda w, t: f"/v1/trades/{w.trade_of(w.key, t, state='settled')}/details",
        addresses_resource=True,
        operators_not_found=True,
    ),
    "trade_details.get_trade_access_log": Probe(
        "GET",
        lambda w, t: f"/v1/trades/{w.trade_of(w.key, t)}/access-log",
        addresses_resource=True,
        operators_not_found=True,
    ),
    "trade_details.set_trade_legal_hold": Probe(
        "PUT",
        lambda w, t: f"/v1/trades/{w.trade_of(w.key, t)}/legal-hold",
        json=lambda: {"until": "2099-01-01T00:00:00Z", "reason": "probe"},
    ),
}


def _v1_endpoints(app) -> set[str]:
    return {rule.endpoint for rule in app.url_map.iter_rules() if rule.rule.startswith("/v1/")}


def test_every_route_is_in_the_table_and_has_a_probe(api):
    endpoints = {rule.endpoint for rule in api.app.url_map.iter_rules()}
    unlisted = endpoints - set(access.ACCESS) - access.PUBLIC
    assert not unlisted, f"routes missing from provenance_api.api.access: {sorted(unlisted)}"
    guarded = _v1_endpoints(api.app) - access.PUBLIC_V1
    assert set(access.ACCESS) == guarded, "stale entries in the access table"
    assert access.PUBLIC & _v1_endpoints(api.app) == access.PUBLIC_V1, "a /v1 route needs a key"
    assert set(PROBES) == set(access.ACCESS), "every route in the table needs a probe here"


def test_every_route_by_every_role_on_own_and_other_tenant(api):
    world = World(api)
    outcomes = []
    for endpoint, probe in PROBES.items():
        for role in Role:
            for tenant in (OWN, OTHER):
                world.key = world.keys[role]
                body = probe.json() if probe.json else None
                url = probe.url(world, tenant)
                if probe.world_json:
                    body = probe.world_json(world)
                response = api.call(probe.method, url, world.key, json=body)
                if not access.allowed(endpoint, role):
                    expected = 403
                elif probe.operators_read_any and role == Role.OPERATOR:
                    expected = probe.ok if tenant == OTHER else 404
                elif (probe.operators_not_found and role == Role.OPERATOR) or (
                    probe.addresses_resource and tenant == OTHER
                ):
                    expected = 404
                else:
                    expected = probe.ok
                outcomes.append((endpoint, role.value, tenant, response.status_code, expected))
    # The same GTIN posted twice by one supplier is a 409 by design; allow exactly that.
    wrong = [
        o
        for o in outcomes
        if o[3] != o[4]
        and not (o[0] == "products.create_product" and o[2] == OTHER and o[3] == 409)
    ]
    assert not wrong, "\n".join(f"{e} as {r} ({t}): got {g}, want {w}" for e, r, t, g, w in wrong)
    assert len(outcomes) == len(PROBES) * len(Role) * 2


def test_the_rivals_resources_are_untouched_by_the_walk(api):
    world = World(api)
    for role in Role:
        world.key = world.keys[role]
        api.call("PATCH", f"/v1/products/{OTHER_GTIN}", world.key, json={"name": "Hijacked"})
        api.call("DELETE", f"/v1/api-keys/{world.spare_key_prefix(world.key, OTHER)}", world.key)
    product = api.call("GET", f"/v1/products/{OTHER_GTIN}", world.rival).get_json()
    assert product["name"] == "Probe product"
    keys = api.call("GET", "/v1/api-keys", world.rival).get_json()["items"]
    assert all(k["active"] for k in keys)
    for role in Role:
        api.call("DELETE", f"/v1/devices/{world.rival_device}", world.keys[role])
    readers = api.call("GET", "/v1/devices", world.rival).get_json()["items"]
    assert [(d["address"], d["status"]) for d in readers] == [(world.rival_device, "active")]


def test_a_route_missing_from_the_table_is_refused_to_every_role(api, monkeypatch):
    world = World(api)
    monkeypatch.delitem(access.ACCESS, "me.get_me")
    for role in Role:
        assert api.call("GET", "/v1/me", world.keys[role]).status_code == 403
    assert api.call("GET", "/v1/me").status_code == 401


VERIFY_URL = "https://id.example.com/01/04006381333931/21/S1"


@pytest.mark.parametrize(
    "url", ["/healthz", "/openapi.json", "/docs", f"/v1/verify?url={VERIFY_URL}"]
)
def test_public_routes_need_no_key(api, url):
    assert api.call("GET", url).status_code == 200


@pytest.mark.parametrize("path", ["/v1/claims", "/v1/claims/wallet"])
def test_the_buyers_claim_routes_need_no_key(api, path):
    # A buyer has no account: an empty body is named field by field, never a 401.
    answer = api.call("POST", path, json={})
    assert answer.status_code == 422 and "code" in answer.get_json()["fields"]


def test_the_resolver_needs_no_key(api):
    path = VERIFY_URL.removeprefix("https://id.example.com")
    assert api.call("GET", path, headers={"Accept": "application/json"}).status_code == 200
