"""The resolver's GS1 link types: `?linkType=` redirects or a linkset, the `Link` header on
every answer, and the public recall status the `gs1:recallStatus` link points to."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from firmware_tools.formats.qr import sign_label_url
from provenance_api.schemas import Role
from tests.integration.api_support import GTIN, make_api
from tests.integration.events_support import make_world, serial_of

HOST = "id.example.com"
VOC = "https://gs1.org/voc/"


@pytest.fixture(params=["sqlite", "fake", pytest.param("postgres", marks=pytest.mark.postgres)])
def api(request, tmp_path):
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    made = make_api(request.param, tmp_path, url)
    yield made
    made.app.extensions["provenance"].close()


def resolver_path(url: str) -> str:
    return url.removeprefix(f"https://{HOST}")


def with_link_type(path: str, link_type: str) -> str:
    return path + ("&" if "?" in path else "?") + f"linkType={link_type}"


def qr_label(api) -> tuple[str, str]:
    """A supplier of Tea with item Q1 under a signed QR label: its key and the label's URL."""
    key = api.key(Role.SUPPLIER, "Acme Tea")
    assert api.call("POST", "/v1/products", key, json={"gtin": GTIN, "name": "Tea"}).status_code
    rows = [{"gtin": GTIN, "serial": "Q1", "tag": "qr"}]
    assert api.call("POST", "/v1/items", key, json={"items": rows}).status_code == 200
    address = api.call("GET", "/v1/me", key).get_json()["organization"]["address"]
    with api.uow() as uow:
        sealed = uow.organizations.by_address(address).encrypted_key
    private = api.app.extensions["provenance"].keybox.open(sealed, address)
    return key, sign_label_url(private, HOST, GTIN, "Q1")


def test_verification_service_redirects_to_verify_with_the_tags_parameters(api):
    world = make_world(api, items=1)
    tap = world.tap(1)
    response = api.call("GET", with_link_type(resolver_path(tap), "gs1:verificationService"))
    assert response.status_code == 307
    target = urlsplit(response.headers["Location"])
    assert target.path == "/v1/verify"
    (scanned,) = parse_qs(target.query)["url"]
    assert urlsplit(scanned).path == urlsplit(tap).path
    assert urlsplit(scanned).query == urlsplit(tap).query  # picc_data and cmac, as tapped
    assert "linkType" not in scanned
    followed = api.call("GET", f"{target.path}?{target.query}")
    assert followed.status_code == 200
    assert (followed.get_json()["verdict"], followed.get_json()["tag_kind"]) == (
        "authentic",
        "ntag424_sun",
    )
    # It was the tap's one check: the same URL again is a replay.
    again = api.call("GET", "/v1/verify", query_string={"url": tap}).get_json()
    assert [r["code"] for r in again["reasons"]] == ["counter_repeated"]


def test_the_verify_answer_behind_the_redirect_is_a_direct_calls(api):
    _, label = qr_label(api)
    direct = api.call("GET", "/v1/verify", query_string={"url": label}).get_json()
    link = with_link_type(resolver_path(label), "https://gs1.org/voc/verificationService")
    redirected = api.client.get(link, follow_redirects=True)
    assert redirected.status_code == 200
    via = redirected.get_json()
    assert direct.pop("checked_at") and via.pop("checked_at")
    assert via == direct
    assert via["verdict"] == "authentic"


def test_recall_status_redirects_to_the_public_status(api):
    key, label = qr_label(api)
    response = api.call("GET", with_link_type(resolver_path(label), "gs1:recallStatus"))
    assert response.status_code == 307
    location = urlsplit(response.headers["Location"])
    assert location.path == f"/v1/items/{GTIN}/Q1/recall-status"
    active = api.call("GET", location.path)
    assert active.status_code == 200
    assert active.get_json() == {
        "gtin": GTIN,
        "serial": "Q1",
        "status": "active",
        "reason": None,
        "since": None,
    }
    recall = {"status": "recalled", "reason": "batch 7 contaminated"}
    assert api.call("POST", f"/v1/items/{GTIN}/Q1/status", key, json=recall).status_code == 200
    recalled = api.call("GET", location.path).get_json()  # no key
    assert (recalled["status"], recalled["reason"]) == ("recalled", "batch 7 contaminated")
    assert recalled["since"] is not None
    assert set(recalled) == {"gtin", "serial", "status", "reason", "since"}


def test_an_unknown_item_has_no_recall_status(api):
    qr_label(api)
    for path in (
        f"/v1/items/{GTIN}/NEVER/recall-status",
        "/v1/items/4006381333931/Q1/recall-status",
    ):
        response = api.call("GET", path)
        assert response.status_code == 404
        assert response.get_json() == {
            "error": "not_found",
            "message": response.get_json()["message"],
            "fields": {"serial": "not found"},
        }
        assert "Tea" not in response.get_json()["message"]


@pytest.mark.parametrize("link_type", ["linkset", "all"])
def test_the_linkset_lists_the_items_links(api, link_type):
    world = make_world(api, items=1)
    path = f"/01/{GTIN}/21/{serial_of(1)}"
    response = api.call("GET", f"{path}?linkType={link_type}")
    assert response.status_code == 200
    assert response.mimetype == "application/linkset+json"
    (context,) = response.get_json()["linkset"]
    assert context["anchor"] == f"http://localhost{path}"
    assert set(context) == {
        "anchor",
        VOC + "pip",
        VOC + "verificationService",
        VOC + "recallStatus",
        VOC + "defaultLink",
    }
    # The item's own page is the buyer's page (HTML; JSON to a client that asks for it).
    for name, media in (
        ("pip", "text/html"),
        ("verificationService", "application/json"),
        ("recallStatus", "application/json"),
        ("defaultLink", "text/html"),
    ):
        (link,) = context[VOC + name]
        assert link["title"] and link["type"] == media
    assert context[VOC + "pip"][0]["href"] == f"http://localhost{path}"
    recall = context[VOC + "recallStatus"][0]["href"]
    assert recall == f"http://localhost/v1/items/{GTIN}/{serial_of(1)}/recall-status"
    assert api.call("GET", recall).get_json()["status"] == "active"
    assert world.supplier  # the item is the world's


def test_every_resolver_answer_carries_the_link_header(api):
    _, label = qr_label(api)
    path = resolver_path(label)
    answers = [
        api.call("GET", path, headers={"Accept": "application/json"}),
        api.call("GET", path, headers={"Accept": "text/html"}),
        api.call("GET", path, headers={"Accept": "image/png"}),
        api.call("GET", with_link_type(path, "gs1:verificationService")),
        api.call("GET", with_link_type(path, "gs1:recallStatus")),
        api.call("GET", with_link_type(path, "linkset")),
        api.call("GET", with_link_type(path, "gs1:nutritionalInfo")),
    ]
    assert [a.status_code for a in answers] == [200, 200, 406, 307, 307, 200, 404]
    for response in answers:
        header = response.headers["Link"]
        for rel in ("gs1:pip", "gs1:verificationService", "gs1:recallStatus", "linkset"):
            assert f'rel="{rel}"' in header, (response.status_code, rel)
    header = answers[0].headers["Link"]
    assert f"</v1/items/{GTIN}/Q1/recall-status>" not in header  # absolute targets
    assert f"<http://localhost/v1/items/{GTIN}/Q1/recall-status>" in header


@pytest.mark.parametrize("link_type", ["gs1:nutritionalInfo", "pip", "linksets", ""])
def test_an_unknown_link_type_is_a_404_naming_it(api, link_type):
    _, label = qr_label(api)
    response = api.call("GET", with_link_type(resolver_path(label), link_type))
    assert response.status_code == 404
    body = response.get_json()
    assert (body["error"], list(body["fields"])) == ("not_found", ["linkType"])


def test_a_link_type_on_a_url_that_is_no_product_link_is_a_422(api):
    response = api.call("GET", "/01/123/21/S1?linkType=linkset")
    assert response.status_code == 422
    assert response.get_json()["fields"] == {"url": "not a GS1 Digital Link"}


def test_the_pip_link_type_is_the_resolvers_own_answer(api):
    _, label = qr_label(api)
    path = with_link_type(resolver_path(label), "gs1:pip")
    response = api.call("GET", path, headers={"Accept": "application/json"})
    assert response.status_code == 200
    assert (response.get_json()["verdict"], response.get_json()["serial"]) == ("authentic", "Q1")


def test_a_query_that_would_break_the_link_header_is_escaped_in_it(api):
    _, label = qr_label(api)
    path = resolver_path(label) + '&note=a"b<c>'
    response = api.call("GET", path, headers={"Accept": "application/json"})
    assert "a%22b%3Cc%3E" in response.headers["Link"]
    assert '"b<' not in response.headers["Link"]
