"""The agent's trust cache: fetched from the real API app page by page, kept in a file, used
offline."""

from __future__ import annotations

import httpx

from provenance_api.schemas import Role
from reader_agent.trust import TrustCache, fetch_suppliers, load_cache, save_cache
from tests.conftest import free_port


def supplier_with(api, gtins: list[str]) -> str:
    key = api.key(Role.SUPPLIER)
    for gtin in gtins:
        made = api.call("POST", "/v1/products", key, json={"gtin": gtin, "name": "Tea"})
        assert made.status_code == 201, made.get_json()
    return api.call("GET", "/v1/me", key).get_json()["organization"]["address"]


def client_for(api, key: str) -> httpx.Client:
    return httpx.Client(
        transport=httpx.WSGITransport(app=api.app),
        base_url="http://api.test",
        headers={"Authorization": f"Bearer {key}"},
    )


def test_every_gtin_comes_with_its_supplier_across_pages(api):
    first = supplier_with(api, ["09506000134352", "00000000000017"])
    second = supplier_with(api, ["00000000000024"])
    with client_for(api, api.key(Role.CARRIER)) as client:
        suppliers = fetch_suppliers(client, page_limit=2)
    assert suppliers == {
        "00000000000017": first,
        "00000000000024": second,
        "09506000134352": first,
    }


def test_the_cache_is_written_and_used_when_the_api_is_away(api, tmp_path):
    address = supplier_with(api, ["09506000134352"])
    path = tmp_path / "outbox.trust.json"
    with client_for(api, api.key(Role.CARRIER)) as client:
        online = TrustCache(path, client, clock=lambda: 1234.0)
        assert online.suppliers == {} and online.fetched_at is None
        assert online.refresh()
    assert load_cache(path) == ({"09506000134352": address}, 1234.0)

    with httpx.Client(base_url=f"http://127.0.0.1:{free_port()}", timeout=2) as nobody:
        offline = TrustCache(path, nobody)
        assert not offline.refresh()
    assert offline.suppliers == {"09506000134352": address}
    assert offline.fetched_at == 1234.0
    assert offline.error is not None and "ConnectError" in offline.error


def test_a_refused_key_keeps_the_cache(api, tmp_path):
    path = tmp_path / "trust.json"
    save_cache(path, {"09506000134352": "0x" + "11" * 20}, 1.0)
    with client_for(api, "not-a-key") as client:
        cache = TrustCache(path, client)
        assert not cache.refresh()
    assert "401" in (cache.error or "")
    assert cache.suppliers == {"09506000134352": "0x" + "11" * 20}


def test_a_damaged_cache_file_counts_as_none(tmp_path):
    path = tmp_path / "trust.json"
    path.write_text('{"suppliers": [1, 2]', encoding="utf-8")
    assert load_cache(path) == ({}, None)
