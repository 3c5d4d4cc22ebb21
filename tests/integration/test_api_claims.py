"""Claims: the owner's one-time code, and a buyer without an account claiming with it, to a
wallet of their own or to one made for them first (POST /v1/claims/wallet).

The chain is real (embedded, or anvil), the chain writer runs as in the transfer tests, and
the buyer's keystore is decrypted with eth-account as a wallet would.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from eth_account import Account

from contracts_abi.passport import passport_id
from firmware_tools.formats.qr import sign_label_url
from provenance_api.models import ClaimCode, ClaimThrottle
from provenance_api.schemas import Role
from provenance_api.services.claims import KEYSTORE_SCRYPT_N
from tests.integration.api_support import GTIN, Api
from tests.integration.test_api_transfers import org_of, passport, settle, transfer, world

CODE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$")
PASSPHRASE = "correct horse battery staple"


@pytest.fixture
def api(tmp_path):
    made = world(tmp_path)
    yield made
    made.rt.close()


def make_code(api: Api, key: str, serial: str = "S1"):
    return api.call("POST", f"/v1/items/{GTIN}/{serial}/claim-codes", key)


def new_code(api: Api, key: str, serial: str = "S1") -> str:
    made = make_code(api, key, serial)
    assert made.status_code == 201, made.get_json()
    return made.get_json()["code"]


def claim(api: Api, serial: str = "S1", **body):
    """A buyer's claim: no key at all."""
    return api.call("POST", "/v1/claims", json={"gtin": GTIN, "serial": serial, **body})


def wallet(api: Api, serial: str = "S1", **body):
    """A buyer's new wallet to claim with: no key at all."""
    sent = {"gtin": GTIN, "serial": serial, "passphrase": PASSPHRASE, **body}
    return api.call("POST", "/v1/claims/wallet", json=sent)


def owner(api: Api, serial: str = "S1") -> str:
    with api.uow() as uow:
        item = uow.items.get(GTIN, serial)
        history = uow.transfers.of_item(item.id)
        if history:
            return history[-1].to_address
        return uow.organizations.get(item.organization_id).address


@pytest.mark.parametrize(
    "where",
    [
        "embedded+sqlite",
        pytest.param("anvil+postgres", marks=[pytest.mark.postgres, pytest.mark.anvil]),
    ],
)
def test_a_buyer_claims_with_an_address_and_the_passport_moves_to_it(tmp_path, request, where):
    if where == "embedded+sqlite":
        api = world(tmp_path)
    else:
        api = world(
            tmp_path,
            request.getfixturevalue("postgres_url"),
            request.getfixturevalue("anvil_url"),
            CONFIRMATIONS=0,
        )
    try:
        _claim_with_an_address(api)
    finally:
        api.rt.close()


def _claim_with_an_address(api: Api) -> None:
    maker = org_of(api, api.supplier)
    made = make_code(api, api.supplier)
    assert made.status_code == 201, made.get_json()
    body = made.get_json()
    assert CODE.match(body["code"]) and (body["gtin"], body["serial"]) == (GTIN, "S1")
    assert body["replaced"] is False
    lifetime = datetime.fromisoformat(body["expires_at"]) - datetime.fromisoformat(
        body["created_at"]
    )
    assert lifetime == timedelta(days=30)
    buyer = Account.create().address
    # Typed by hand: lower case, spaces instead of dashes; the address in lower case.
    typed = body["code"].lower().replace("-", " ")
    claimed = claim(api, code=typed, address=buyer.lower())
    assert claimed.status_code == 201, claimed.get_json()
    answer = claimed.get_json()
    assert answer["owner_address"] == buyer and answer["replayed"] is False
    assert "keystore" not in answer
    moved = answer["transfer"]
    assert (moved["sequence"], moved["mints"], moved["chain"]) == (1, True, "owed")
    assert (moved["from_address"], moved["to_address"]) == (maker["address"], buyer)
    settle(api)
    assert passport(api).functions.ownerOf(passport_id(GTIN, "S1")).call() == buyer
    listed = api.call(
        "GET", "/v1/transfers", api.supplier, query_string={"gtin": GTIN, "serial": "S1"}
    ).get_json()["items"]
    assert [(r["to_address"], r["chain"]) for r in listed] == [(buyer, "confirmed")]
    seen = api.call("GET", f"/v1/items/{GTIN}/S1/passport", api.supplier).get_json()
    assert (seen["owner_address"], seen["owner_organization_id"]) == (buyer, None)
    # Sent again (its answer lost): the same claim, not a refusal, and nothing moves twice.
    retried = claim(api, code=body["code"], address=buyer)
    assert retried.status_code == 200, retried.get_json()
    assert retried.get_json() == {**answer, "transfer": listed[0], "replayed": True}
    # Otherwise, once used, the code is worth nothing, and the seller can no longer make one.
    again = claim(api, code=body["code"], address=Account.create().address)
    assert again.status_code == 422 and again.get_json()["fields"] == {
        "code": "not valid for this item"
    }
    assert make_code(api, api.supplier).status_code == 409
    with api.uow() as uow:
        (stored,) = uow.session.exec(sa.select(ClaimCode)).scalars().all()
        assert stored.used_at is not None and stored.transfer_id is not None
        assert body["code"].replace("-", "") not in repr(stored.model_dump())


def test_a_retailer_sells_on_and_the_buyer_makes_a_wallet_then_claims_to_it(api):
    shop = org_of(api, api.retailer)
    assert transfer(api, api.supplier, to_organization_id=shop["id"]).status_code == 201
    # The former owner cannot make a code; the retailer, now the owner, can.
    assert make_code(api, api.supplier).status_code == 409
    code = new_code(api, api.retailer)
    made = wallet(api, code=code)
    assert made.status_code == 200, made.get_json()
    first = made.get_json()
    assert set(first) == {"address", "keystore"}
    keystore = first["keystore"]
    assert keystore["version"] == 3 and keystore["crypto"]["kdf"] == "scrypt"
    assert keystore["crypto"]["kdfparams"]["n"] == 2**17
    private = Account.decrypt(keystore, PASSPHRASE)
    assert Account.from_key(private).address == first["address"]
    with pytest.raises(ValueError):
        Account.decrypt(keystore, PASSPHRASE + "!")
    # Nothing moved and nothing was spent: an answer lost here costs nothing, make another.
    assert owner(api) == shop["address"]
    assert states(api, api.retailer) == ["live"]
    second = wallet(api, code=code)
    assert second.status_code == 200 and second.get_json()["address"] != first["address"]
    # The buyer saved the first one and claims to it, with the ordinary claim to an address.
    claimed = claim(api, code=code, address=first["address"])
    assert claimed.status_code == 201, claimed.get_json()
    answer = claimed.get_json()
    assert answer["owner_address"] == answer["transfer"]["to_address"] == first["address"]
    assert answer["transfer"]["from_address"] == shop["address"]
    assert answer["transfer"]["mints"] is False  # a relayed TransferConsent
    # Spent now: no more wallets with it either.
    spent = wallet(api, code=code)
    assert spent.status_code == 422 and spent.get_json()["fields"] == {
        "code": "not valid for this item"
    }
    settle(api)
    assert passport(api).functions.ownerOf(passport_id(GTIN, "S1")).call() == first["address"]
    # The keys themselves are stored nowhere: not in any table the service writes.
    unsaved = Account.decrypt(second.get_json()["keystore"], PASSPHRASE)
    with api.rt.engine.connect() as connection:
        for table in sa.inspect(connection).get_table_names():
            rows = repr(connection.execute(sa.text(f'SELECT * FROM "{table}"')).all())
            assert private.hex() not in rows and unsaved.hex() not in rows, table


def fastest(send, times: int = 3) -> float:
    """The shortest of a few runs of `send`, in seconds (the least disturbed by other load)."""
    taken = []
    for _ in range(times):
        start = time.perf_counter()
        send()
        taken.append(time.perf_counter() - start)
    return min(taken)


def test_a_wallet_costs_its_scrypt_only_after_a_valid_code(tmp_path):
    api = world(tmp_path, CLAIM_ATTEMPTS=20)
    try:
        code = new_code(api, api.supplier)
        # What the keystore's scrypt alone costs here (eth-account calls hashlib's).
        scrypt = fastest(
            lambda: hashlib.scrypt(
                b"p", salt=b"s" * 32, n=KEYSTORE_SCRYPT_N, r=8, p=1, maxmem=2**28, dklen=32
            )
        )
        refused = fastest(lambda: wallet(api, code="0000-0000-0000-0000"))
        made = fastest(lambda: wallet(api, code=code))
        assert refused < scrypt / 3 < made, (refused, scrypt, made)
    finally:
        api.rt.close()


def test_a_wallet_checks_the_code_as_a_claim_does_and_counts_the_attempt(tmp_path):
    api = world(tmp_path, CLAIM_ATTEMPTS=3, CLAIM_WINDOW_SECONDS=300)
    try:
        code = new_code(api, api.supplier)
        wrong = "0000-0000-0000-0000"
        refusal = claim(api, code=wrong, address=Account.create().address)
        also_wrong = "0000-0000-0000-0001"
        for answer in (
            wallet(api, code=wrong),
            wallet(api, code=also_wrong),
            wallet(api, "NOSUCH", code=code),
        ):
            assert (answer.status_code, answer.get_json()) == (422, refusal.get_json())
        # Three attempts on S1 (claims and wallets count alike): the right code waits too.
        blocked = wallet(api, code=code)
        assert blocked.status_code == 429, blocked.get_json()
        assert 295 <= int(blocked.headers["Retry-After"]) <= 300
        assert blocked.get_json()["fields"] == {"code": "too many attempts"}
        assert claim(api, code=code, address=Account.create().address).status_code == 429
        # A malformed request counts nothing (NOSUCH's refusal counted nothing either: no item).
        assert wallet(api, "S2", code=code, passphrase="short").status_code == 422
        with api.uow() as uow:
            counted = uow.session.exec(sa.select(ClaimThrottle)).scalars().all()
            assert [(row.item_id, row.attempts) for row in counted] == [
                (uow.items.get(GTIN, "S1").id, 3)
            ]
    finally:
        api.rt.close()


def test_the_buyers_verification_shows_the_new_owner(api):
    code = new_code(api, api.supplier, "S2")
    buyer = Account.create().address
    assert claim(api, "S2", code=code, address=buyer).status_code == 201
    address = org_of(api, api.supplier)["address"]
    with api.uow() as uow:
        sealed = uow.organizations.by_address(address).encrypted_key
    url = sign_label_url(api.rt.keybox.open(sealed, address), "id.example.com", GTIN, "S2")
    checked = api.call("GET", "/v1/verify", query_string={"url": url})
    assert checked.status_code == 200, checked.get_json()
    assert checked.get_json()["owner"]["address"] == buyer
    settle(api)
    assert passport(api).functions.ownerOf(passport_id(GTIN, "S2")).call() == buyer


def _expire(api: Api, serial: str) -> None:
    with api.uow() as uow:
        code = uow.claims.live(uow.items.get(GTIN, serial).id)
        code.expires_at = datetime.now(UTC) - timedelta(seconds=1)
        uow.session.add(code)
        uow.commit()


def test_wrong_expired_used_replaced_and_other_items_codes_get_one_answer(api):
    s1, s2, s3 = (new_code(api, api.supplier, s) for s in ("S1", "S2", "S3"))
    buyer = Account.create().address
    wrong = "0000-0000-0000-0000"
    answers = [
        claim(api, "S1", code=wrong, address=buyer),  # wrong
        claim(api, "S1", code=s2, address=buyer),  # another item's
        claim(api, "NOSUCH", code=s1, address=buyer),  # an item that does not exist
        wallet(api, "S1", code=wrong),  # a wallet with a wrong code
    ]
    replaced = make_code(api, api.supplier, "S1").get_json()
    assert replaced["replaced"] is True
    answers.append(claim(api, "S1", code=s1, address=buyer))  # replaced by a newer one
    _expire(api, "S3")
    answers.append(claim(api, "S3", code=s3, address=buyer))  # expired
    assert claim(api, "S2", code=s2, address=buyer).status_code == 201
    answers.append(claim(api, "S2", code=s2, address=Account.create().address))  # used
    answers.append(wallet(api, "S2", code=s2))  # a wallet with a used code
    bodies = {(a.status_code, repr(a.get_json())) for a in answers}
    assert len(bodies) == 1, bodies
    ((status, _),) = bodies
    assert status == 422
    # The newer code still works: the refusals changed nothing.
    ok = claim(api, "S1", code=replaced["code"], address=buyer)
    assert ok.status_code == 201, ok.get_json()


def test_only_the_current_owner_makes_codes(api):
    assert make_code(api, api.carrier).status_code == 404  # never held it
    rival = api.key(Role.SUPPLIER, "Rival")
    assert make_code(api, rival).status_code == 404
    operator = api.key(Role.OPERATOR)
    assert make_code(api, operator).status_code == 403
    assert api.call("POST", f"/v1/items/{GTIN}/S1/claim-codes").status_code == 401
    assert make_code(api, api.supplier, "NOSUCH").status_code == 404
    # An owner holding its own key: the API could not consent for it at the claim.
    org_id = org_of(api, api.supplier)["id"]
    with api.uow() as uow:
        org = uow.organizations.get(org_id)
        org.address, org.encrypted_key = Account.create().address, None
        uow.organizations.add(org)
        uow.commit()
    own = make_code(api, api.supplier)
    assert own.status_code == 422 and own.get_json()["fields"] == {
        "serial": "the owner holds its own key"
    }


def states(api: Api, key: str, serial: str = "S1") -> list[str]:
    listed = api.call("GET", f"/v1/items/{GTIN}/{serial}/claim-codes", key)
    assert listed.status_code == 200, listed.get_json()
    assert all(set(row) == set(CODE_FIELDS) for row in listed.get_json()["items"])
    return [row["state"] for row in listed.get_json()["items"]]


CODE_FIELDS = ("state", "created_at", "expires_at", "used_at", "revoked_at")


def test_the_owner_lists_its_codes_without_the_codes(api):
    assert states(api, api.supplier) == []
    new_code(api, api.supplier)
    new_code(api, api.supplier)
    assert states(api, api.supplier) == ["live", "revoked"]
    _expire(api, "S1")
    assert states(api, api.supplier) == ["expired", "revoked"]
    code = new_code(api, api.supplier)
    assert claim(api, code=code, address=Account.create().address).status_code == 201
    assert states(api, api.supplier) == ["used", "revoked", "revoked"]
    assert api.call("GET", f"/v1/items/{GTIN}/S1/claim-codes", api.carrier).status_code == 404


def test_a_seller_that_took_its_key_back_voids_its_code(api):
    code = new_code(api, api.supplier)
    org_id = org_of(api, api.supplier)["id"]
    with api.uow() as uow:
        org = uow.organizations.get(org_id)
        org.address, org.encrypted_key = Account.create().address, None
        uow.organizations.add(org)
        uow.commit()
    refused = claim(api, code=code, address=Account.create().address)
    assert refused.status_code == 422 and refused.get_json()["fields"] == {
        "code": "not valid for this item"
    }
    # Nor is a wallet made for a claim that could not be made.
    made = wallet(api, code=code)
    assert (made.status_code, made.get_json()) == (422, refused.get_json())


def test_an_owners_other_transfer_voids_its_code(api):
    code = new_code(api, api.supplier)
    shop = org_of(api, api.retailer)
    assert transfer(api, api.supplier, to_organization_id=shop["id"]).status_code == 201
    assert states(api, api.supplier) == ["revoked"]
    refused = claim(api, code=code, address=Account.create().address)
    assert refused.status_code == 422 and refused.get_json()["fields"] == {
        "code": "not valid for this item"
    }
    # The new owner's codes are its own; the supplier's stay the supplier's.
    assert states(api, api.retailer) == []
    retail = new_code(api, api.retailer)
    assert states(api, api.retailer) == ["live"]
    assert claim(api, code=retail, address=Account.create().address).status_code == 201


def test_attempts_per_item_are_throttled_and_the_window_passes(tmp_path):
    api = world(tmp_path, CLAIM_ATTEMPTS=3, CLAIM_WINDOW_SECONDS=2)
    try:
        code = new_code(api, api.supplier)
        other = new_code(api, api.supplier, "S2")
        buyer = Account.create().address
        for _ in range(3):
            assert claim(api, code="0000-0000-0000-0000", address=buyer).status_code == 422
        # The right code too is refused now, without being looked at.
        blocked = claim(api, code=code, address=buyer)
        assert blocked.status_code == 429, blocked.get_json()
        assert 1 <= int(blocked.headers["Retry-After"]) <= 2
        assert blocked.get_json()["fields"] == {"code": "too many attempts"}
        # Another item is not affected.
        assert claim(api, "S2", code=other, address=buyer).status_code == 201
        time.sleep(2.1)
        assert claim(api, code=code, address=buyer).status_code == 201
        with api.uow() as uow:  # a success forgets the failures
            assert uow.session.get(ClaimThrottle, uow.items.get(GTIN, "S1").id) is None
    finally:
        api.rt.close()


def test_a_new_code_lifts_the_lock(tmp_path):
    api = world(tmp_path, CLAIM_ATTEMPTS=2)
    try:
        new_code(api, api.supplier)
        buyer = Account.create().address
        for _ in range(2):
            claim(api, code="0000-0000-0000-0000", address=buyer)
        assert claim(api, code="0000-0000-0000-0000", address=buyer).status_code == 429
        fresh = new_code(api, api.supplier)  # the seller, at the counter, makes a new one
        assert claim(api, code=fresh, address=buyer).status_code == 201
    finally:
        api.rt.close()


VALID_CODE = "7K3M-Q9XD-2F8H-VN4P"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"address": "0x1234"}, "address"),
        ({"address": "0x" + "00" * 20}, "address"),
        ({"address": "0xAbCdEf0123456789aBcDeF0123456789AbCdEf01"}, "address"),  # bad EIP-55
        ({}, "address"),
        # The old one-step claim to a made key: told to make the wallet first.
        ({"passphrase": PASSPHRASE}, "passphrase"),
        ({"address": "0x" + "11" * 20, "passphrase": PASSPHRASE}, "passphrase"),
        ({"code": None, "address": "0x" + "11" * 20}, "code"),
        ({"code": 1234, "address": "0x" + "11" * 20}, "code"),
        ({"code": "7K3M-Q9XD", "address": "0x" + "11" * 20}, "code"),
        ({"code": "UUUU-UUUU-UUUU-UUUU", "address": "0x" + "11" * 20}, "code"),
        ({"gtin": 9506000134352, "address": "0x" + "11" * 20}, "gtin"),
        ({"gtin": "09506000134353", "address": "0x" + "11" * 20}, "gtin"),  # check digit
        ({"serial": None, "address": "0x" + "11" * 20}, "serial"),
        ({"address": "0x" + "11" * 20, "surprise": 1}, "surprise"),
    ],
)
def test_malformed_claims_are_422_naming_the_field(api, body, field):
    sent = {"gtin": GTIN, "serial": "S1", "code": VALID_CODE, **body}
    sent = {k: v for k, v in sent.items() if v is not None}
    answer = api.call("POST", "/v1/claims", json=sent)
    assert answer.status_code == 422, answer.get_json()
    assert field in answer.get_json()["fields"], answer.get_json()
    with api.uow() as uow:  # a malformed claim counts no attempt
        assert uow.session.exec(sa.select(ClaimThrottle)).first() is None


def test_a_passphrase_in_a_claim_points_to_the_wallet_route(api):
    code = new_code(api, api.supplier)
    answer = claim(api, code=code, passphrase=PASSPHRASE)
    assert answer.status_code == 422
    said = answer.get_json()["fields"]
    assert "POST /v1/claims/wallet" in said["passphrase"] and "address" in said
    assert PASSPHRASE not in repr(answer.get_json())
    assert states(api, api.supplier) == ["live"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"passphrase": "short"}, "passphrase"),
        ({"passphrase": "x" * 1025}, "passphrase"),
        ({"passphrase": 123456789012345}, "passphrase"),
        ({"passphrase": None}, "passphrase"),
        ({"code": "7K3M-Q9XD"}, "code"),
        ({"code": None}, "code"),
        ({"serial": "S#"}, "serial"),
        ({"address": "0x" + "11" * 20}, "address"),  # a wallet goes to nobody yet
    ],
)
def test_malformed_wallets_are_422_naming_the_field(api, body, field):
    sent = {"gtin": GTIN, "serial": "S1", "code": VALID_CODE, "passphrase": PASSPHRASE, **body}
    sent = {k: v for k, v in sent.items() if v is not None}
    answer = api.call("POST", "/v1/claims/wallet", json=sent)
    assert answer.status_code == 422, answer.get_json()
    assert field in answer.get_json()["fields"], answer.get_json()
    with api.uow() as uow:  # a malformed request counts no attempt
        assert uow.session.exec(sa.select(ClaimThrottle)).first() is None


def test_a_claim_that_is_not_json_is_422(api):
    answer = api.call("POST", "/v1/claims", data="gtin=1", content_type="text/plain")
    assert answer.status_code == 422 and "body" in answer.get_json()["fields"]


def test_claiming_to_the_sellers_own_address_is_422_naming_address(api):
    code = new_code(api, api.supplier)
    own = claim(api, code=code, address=org_of(api, api.supplier)["address"])
    assert own.status_code == 422 and own.get_json()["fields"] == {"address": "already the owner"}
    # The code is not spent by a refused claim.
    assert claim(api, code=code, address=Account.create().address).status_code == 201


def race(api: Api, code: str, buyers: list[dict]) -> list[tuple[int, dict]]:
    """Each buyer claims item S1 with the same code at once, from one thread each."""
    start = threading.Barrier(len(buyers))
    answers: list[tuple[int, dict]] = []

    def send(buyer: dict) -> None:
        client = api.app.test_client()
        start.wait()
        answer = client.post(
            "/v1/claims", json={"gtin": GTIN, "serial": "S1", "code": code, **buyer}
        )
        answers.append((answer.status_code, answer.get_json()))

    threads = [threading.Thread(target=send, args=(buyer,)) for buyer in buyers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_concurrent_claims_with_one_code_have_exactly_one_winner(tmp_path, request, database):
    url = request.getfixturevalue("postgres_url") if database == "postgres" else ""
    api = world(tmp_path, url)
    try:
        code = new_code(api, api.supplier)
        buyers = [{"address": Account.create().address} for _ in range(4)]
        answers = race(api, code, buyers)
        assert sorted(status for status, _ in answers) == [201, 422, 422, 422], answers
        ((_, won),) = [(status, body) for status, body in answers if status == 201]
        query = {"gtin": GTIN, "serial": "S1"}
        rows = api.call("GET", "/v1/transfers", api.supplier, query_string=query).get_json()
        (row,) = rows["items"]
        assert row["to_address"] == won["owner_address"]
        with api.uow() as uow:
            codes = uow.session.exec(sa.select(ClaimCode)).scalars().all()
            assert [c.used_at is not None for c in codes] == [True]
        settle(api)
        owner = passport(api).functions.ownerOf(passport_id(GTIN, "S1")).call()
        assert owner == row["to_address"]
    finally:
        api.rt.close()


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_retries_racing_the_first_claim_all_get_that_claim(tmp_path, request, database):
    url = request.getfixturevalue("postgres_url") if database == "postgres" else ""
    api = world(tmp_path, url)
    try:
        code = new_code(api, api.supplier)
        buyer = Account.create().address
        # A double click, and a client retrying at once: the same claim three times.
        answers = race(api, code, [{"address": buyer}] * 3)
        assert sorted(status for status, _ in answers) == [200, 200, 201], answers
        transfers = {repr({**body["transfer"], "chain": None}) for _, body in answers}
        assert len(transfers) == 1, transfers
        assert [body["replayed"] for _, body in sorted(answers, key=lambda a: a[0])] == [
            True,
            True,
            False,
        ]
        query = {"gtin": GTIN, "serial": "S1"}
        rows = api.call("GET", "/v1/transfers", api.supplier, query_string=query).get_json()
        assert [row["to_address"] for row in rows["items"]] == [buyer]
    finally:
        api.rt.close()
