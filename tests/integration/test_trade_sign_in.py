"""Signing in to the trade pages (api/sign_in.py) through the app: the session, CSRF, revocation.

Flask's client keeps cookies as a browser does; the forms are posted form-encoded.
"""

from __future__ import annotations

import re

import pytest

from provenance_api.schemas import Role
from provenance_api.web.strings import catalogue
from tests.integration.api_support import Api, make_api

TEXT = catalogue()
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
SAME_SITE = {"Sec-Fetch-Site": "same-origin"}


@pytest.fixture
def api(tmp_path) -> Api:
    return make_api("sqlite", tmp_path)


def token(api: Api, url: str = "/trades/sign-in") -> str:
    """The CSRF token of the form at `url` (the session's)."""
    page = api.client.get(url)
    found = TOKEN.search(page.get_data(as_text=True))
    assert found, page.get_data(as_text=True)
    return found.group(1)


def sign_in(api: Api, key: str, **headers: str):
    return api.client.post(
        "/trades/sign-in",
        data={"csrf_token": token(api), "api_key": key},
        headers={**SAME_SITE, **headers},
    )


def is_signed_in(api: Api) -> bool:
    """Whether the client's session is signed in: the sign-in form sends it to its trades."""
    answer = api.client.get("/trades/sign-in")
    return answer.status_code == 303 and answer.headers["Location"].endswith("/trades")


def session_cookie(response) -> str:
    cookies = [v for k, v in response.headers.items() if k == "Set-Cookie"]
    assert cookies, "no cookie set"
    return cookies[-1]


def test_a_key_signs_in_and_the_cookie_holds_no_key(api):
    key = api.key(Role.RETAILER, "Shop")
    answer = sign_in(api, key)
    assert answer.status_code == 303
    assert answer.headers["Location"].endswith("/trades")
    cookie = session_cookie(answer)
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain http here
    # The signed cookie is readable (only signed, not encrypted): the key must not be in it.
    secret = key.removeprefix("pk_").partition("_")[2]
    assert secret and secret not in cookie and key not in cookie
    assert is_signed_in(api)
    page = api.client.get("/trades")  # 503 here: no contracts deployed, but signed in
    assert page.status_code == 503
    body = page.get_data(as_text=True)
    assert TEXT("trade.unavailable.heading") in body
    assert TEXT("trades.signed_in", name="Shop") in body
    assert page.headers["Cache-Control"] == "no-store"


def test_the_cookie_is_secure_over_https(api):
    key = api.key(Role.RETAILER)
    answer = api.client.post(
        "/trades/sign-in",
        data={"csrf_token": token(api), "api_key": key},
        headers=SAME_SITE,
        base_url="https://localhost",
    )
    assert answer.status_code == 303
    assert "Secure" in session_cookie(answer)


def test_the_cookie_is_secure_over_http_when_configured_so(api):
    api.app.config["SESSION_COOKIE_SECURE"] = True  # behind a proxy that ends TLS
    answer = sign_in(api, api.key(Role.RETAILER))
    assert answer.status_code == 303
    assert "Secure" in session_cookie(answer)


def test_a_post_from_the_same_host_over_https_behind_a_proxy_is_not_cross_site(api):
    key = api.key(Role.RETAILER)
    answer = api.client.post(
        "/trades/sign-in",
        data={"csrf_token": token(api), "api_key": key},
        headers={"Origin": "https://localhost"},  # the browser's view; the app sees http
    )
    assert answer.status_code == 303


@pytest.mark.parametrize(
    "typed", ["", "pk_nothing_here", "not a key", "pk_" + "x" * 300, "pk_abc\x00_def"]
)
def test_a_wrong_key_is_the_form_again_with_a_plain_message(api, typed):
    api.key(Role.RETAILER)
    answer = sign_in(api, typed)
    assert answer.status_code == 401
    body = answer.get_data(as_text=True)
    assert TEXT("sign_in.wrong_key") in body
    assert "Traceback" not in body
    assert not is_signed_in(api)  # not signed in


def test_an_operator_key_does_not_sign_in(api):
    answer = sign_in(api, api.key(Role.OPERATOR))
    assert answer.status_code == 401
    assert TEXT("sign_in.not_an_organization") in answer.get_data(as_text=True)
    assert not is_signed_in(api)


def test_pages_without_a_session_go_to_the_sign_in_form(api):
    answer = api.client.get("/trades")
    assert answer.status_code == 303
    assert answer.headers["Location"].endswith("/trades/sign-in")


def test_revoking_the_key_ends_the_session(api):
    key = api.key(Role.RETAILER)
    other = api.call("POST", "/v1/api-keys", key).get_json()["api_key"]
    assert sign_in(api, key).status_code == 303
    assert is_signed_in(api)
    prefix = key.removeprefix("pk_").partition("_")[0]
    assert api.call("DELETE", f"/v1/api-keys/{prefix}", other).status_code == 200
    assert not is_signed_in(api)
    answer = api.client.get("/trades")
    assert answer.status_code == 303
    assert answer.headers["Location"].endswith("/trades/sign-in")


def test_a_post_without_the_session_token_is_refused(api):
    key = api.key(Role.RETAILER)
    token(api)  # the session has a token; this form does not send it
    answer = api.client.post("/trades/sign-in", data={"api_key": key}, headers=SAME_SITE)
    assert answer.status_code == 403
    assert TEXT("session.refused") in answer.get_data(as_text=True)
    wrong = api.client.post(
        "/trades/sign-in", data={"api_key": key, "csrf_token": "x" * 43}, headers=SAME_SITE
    )
    assert wrong.status_code == 403
    assert not is_signed_in(api)


def test_a_token_from_another_session_is_refused(api, tmp_path):
    key = api.key(Role.RETAILER)
    theirs = api.app.test_client()
    stolen = TOKEN.search(theirs.get("/trades/sign-in").get_data(as_text=True)).group(1)
    token(api)
    answer = api.client.post(
        "/trades/sign-in", data={"api_key": key, "csrf_token": stolen}, headers=SAME_SITE
    )
    assert answer.status_code == 403


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
    ],
)
def test_a_cross_site_post_is_refused_even_with_the_token(api, headers):
    key = api.key(Role.RETAILER)
    answer = api.client.post(
        "/trades/sign-in", data={"api_key": key, "csrf_token": token(api)}, headers=headers
    )
    assert answer.status_code == 403
    assert not is_signed_in(api)


def test_signing_in_makes_a_new_session_and_signing_out_ends_it(api):
    key = api.key(Role.RETAILER)
    before = token(api)
    assert sign_in(api, key).status_code == 303
    after = token(api, "/trades")
    assert after != before  # a token planted before sign-in is worth nothing after
    refused = api.client.post("/trades/sign-out", data={"csrf_token": before}, headers=SAME_SITE)
    assert refused.status_code == 403
    assert is_signed_in(api)
    out = api.client.post("/trades/sign-out", data={"csrf_token": after}, headers=SAME_SITE)
    assert out.status_code == 303
    assert not is_signed_in(api)


def test_a_tampered_cookie_is_no_session(api):
    key = api.key(Role.RETAILER)
    assert sign_in(api, key).status_code == 303
    cookie = api.client.get_cookie("session")
    api.client.set_cookie("session", cookie.value[:-2] + "xx")
    assert not is_signed_in(api)
