"""Who may call what: the one table of route (endpoint) × role.

Every route the app serves is either PUBLIC or in ACCESS; a route in neither is refused to
everyone (fail closed), and tests/integration/test_api_access.py fails until it is added.
Whether the caller owns the resource (tenancy) is the service's business, not this table's:
another tenant's resource answers 404.
"""

from __future__ import annotations

from provenance_api.schemas import Role

PARTIES = frozenset({Role.SUPPLIER, Role.CARRIER, Role.WAREHOUSE, Role.RETAILER})
EVERYONE = PARTIES | {Role.ARBITER, Role.OPERATOR}
SUPPLIERS = frozenset({Role.SUPPLIER})
OPERATORS = frozenset({Role.OPERATOR})
ARBITERS = frozenset({Role.ARBITER})
# A trade's parties hold goods; its arbiter acts on trades it was appointed to (the service
# checks which). Withdrawing is for both.
TRADERS = PARTIES | ARBITERS

# Routes anyone may call without a key.
# Verification (issue 10): a buyer's phone checks an item, and reads its recall status
# (the GS1 link type gs1:recallStatus), without a key.
# Claims (issue 11): a buyer has no account; the seller's one-time code is the credential,
# and attempts per item are throttled (services/claims.py). Making a wallet to claim with is
# public for the same reason and on the same terms: it checks the code (counting an attempt)
# before it does any work, and spends and stores nothing.
PUBLIC_V1 = frozenset(
    {
        "verify.verify_url",
        "verify.get_recall_status",
        "claims.claim_item",
        "claims.make_claim_wallet",
        # Trades (issue 12): arbiters' profiles, which the registry's profileURI points to.
        "arbiter_profiles.list_arbiters",
        "arbiter_profiles.get_arbiter",
    }
)
TRADE_PAGES = frozenset(
    {
        "sign_in.sign_in_form",
        "sign_in.sign_in",
        "sign_in.sign_out",
        "trade_pages.list_trades",
        "trade_pages.show_trade",
        "trade_pages.act",
        "trade_pages.add_detail",
        "trade_pages.record_content",
        "trade_pages.export_details",
        "trade_pages.erase_details",
    }
)
PUBLIC = (
    frozenset({"health.healthz", "docs.openapi", "docs.ui", "docs.static", "static"})
    | PUBLIC_V1
    | {"resolver.resolve"}
    # The buyer's claim form (issue 11): the web pages of claims.make_claim_wallet and
    # claims.claim_item.
    | {"claim_page.show_claim_form", "claim_page.submit_claim"}
    # The trade pages (issue 12) for people at a browser: no bearer key, because they sign in
    # once with their organization's API key and carry Flask's signed session cookie instead
    # (api/sign_in.py); every page checks that session and its key again, and every form its
    # CSRF token. They call the trades services as the signed-in organization, which refuse
    # what the JSON routes refuse. Operators cannot sign in there.
    | TRADE_PAGES
)

ACCESS: dict[str, frozenset[Role]] = {
    "me.get_me": EVERYONE,
    "api_keys.list_api_keys": EVERYONE,
    "api_keys.create_api_key": EVERYONE,
    "api_keys.revoke_api_key": EVERYONE,
    "organizations.create_organization": OPERATORS,
    "organizations.list_organizations": OPERATORS,
    "products.create_product": SUPPLIERS,
    "products.list_products": SUPPLIERS,
    "products.get_product": SUPPLIERS,
    "products.update_product": SUPPLIERS,
    "items.register_items": SUPPLIERS,
    "items.list_items": SUPPLIERS,
    "items.get_item": SUPPLIERS,
    "items.mint_passport": SUPPLIERS,
    "items.get_passport": PARTIES,
    "items.get_history": PARTIES,
    "sun_keys.create_sun_key": SUPPLIERS,
    "sun_keys.list_sun_keys": SUPPLIERS,
    "devices.register_device": PARTIES,
    "devices.list_devices": PARTIES,
    "devices.revoke_device": PARTIES,
    "events.record_events": PARTIES,
    "events.get_event": PARTIES,
    "transfers.create_transfer": PARTIES,
    "transfers.list_transfers": PARTIES,
    # Claims (issue 11): the item's current owner makes a buyer's one-time code.
    "claim_codes.create_claim_code": PARTIES,
    "claim_codes.list_claim_codes": PARTIES,
    "trust.list_trust": EVERYONE,
    # EPCIS 2.0 export and capture (the job: its capturer only, the service checks)
    "epcis.query_epcis_events": PARTIES,
    "epcis.capture_epcis_document": PARTIES,
    "epcis.get_capture_job": PARTIES,
    # Trades (issue 12): the service checks who is a party or the appointed arbiter (404 else).
    "trades.create_trade": PARTIES,
    "trades.list_trades": TRADERS,
    "trades.get_trade": TRADERS,
    "trades.deposit": PARTIES,
    "trades.cancel": PARTIES,
    "trades.ship": PARTIES,
    "trades.confirm": PARTIES,
    "trades.dispute": PARTIES,
    "trades.decline_arbiter": PARTIES,
    "trades.accept_arbiter": PARTIES,
    "trades.rule": ARBITERS,
    "trades.timeout": TRADERS,
    "trades.get_credit": TRADERS,
    "trades.withdraw": TRADERS,
    "arbiters.register_arbiter": ARBITERS,
    "arbiters.retire_arbiter": ARBITERS,
    "arbiters.flag_arbiter_tie": OPERATORS,
    # Verification (issue 10).
    "verifications.set_item_status": SUPPLIERS,
    "verifications.get_item_status": SUPPLIERS,
    "verifications.list_item_scans": SUPPLIERS | OPERATORS,
    # A trade's personal data (issue 12): the service admits the trade's two parties and its
    # accepted arbiter only; everyone else, operators included, is answered 404 as if the
    # trade did not exist (so operators are listed, to get that answer rather than a 403).
    "trade_details.add_trade_record": EVERYONE,
    "trade_details.get_trade_details": EVERYONE,
    "trade_details.get_trade_record_content": EVERYONE,
    "trade_details.export_trade_details": EVERYONE,
    "trade_details.erase_trade_details": EVERYONE,
    "trade_details.get_trade_access_log": EVERYONE,
    # Operators hold a trade's details from erasure; the route reads none of them.
    "trade_details.set_trade_legal_hold": OPERATORS,
}


def allowed(endpoint: str, role: Role) -> bool:
    """Whether `role` may call `endpoint`; an endpoint missing from the table is refused."""
    return role in ACCESS.get(endpoint, frozenset())
