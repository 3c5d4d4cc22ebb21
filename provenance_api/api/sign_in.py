"""Signing in at a browser: an organization's API key once, then Flask's signed session cookie.

The cookie holds the organization's id, the key's prefix (its public id) and a CSRF token,
never the key itself; every request checks that key again (organizations.resume), so revoking
it ends the session. The cookie is HttpOnly, SameSite=Lax, and Secure when the request came
over https (`BrowserSessions`). Every form carries the session's CSRF token, compared in
constant time, and a POST from another site (Sec-Fetch-Site, else Origin) is refused before
the token is looked at. Operators do not sign in here: the pages are for parties and arbiters.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface

from provenance_api.api.frame import unit_of_work
from provenance_api.services import organizations
from provenance_api.services.errors import Unauthorized
from provenance_api.services.organizations import Caller
from provenance_api.web import strings
from provenance_api.web.views import private

bp = Blueprint("sign_in", __name__)
TEMPLATE = "sign_in.html"
CSRF_FIELD = "csrf_token"
KEY_MAX = 200  # far longer than any key we issue; a longer paste is not one
SESSION_HOURS = 12  # a session older than this signs in again
# The session's keys: organization id, key prefix, CSRF token, when it began (epoch seconds).
ORG, KEY, CSRF, SINCE = "org", "key", "csrf", "since"


class BrowserSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, Secure whenever the request came over https."""

    def get_cookie_secure(self, app: Flask) -> bool:
        """Secure when configured so, or when this request is https (behind a proxy too)."""
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure

    def get_cookie_samesite(self, app: Flask) -> str | None:
        """Lax unless configured stricter: a link from elsewhere may open a page, not post."""
        return app.config.get("SESSION_COOKIE_SAMESITE") or "Lax"


def install(app: Flask) -> None:
    """Give `app` the browser sessions (HttpOnly is Flask's default, kept)."""
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    app.session_interface = BrowserSessions()


def cross_site(headers: Mapping[str, str], host_url: str) -> bool:
    """Whether a POST came from another site: Sec-Fetch-Site when sent, else Origin's host.

    A request with neither (an old browser, a script) is let through to the CSRF token check.
    Origin's scheme is not compared: behind a proxy that ends TLS the app sees http while the
    browser says https, and the host is what tells one site from another.

    >>> cross_site({"Sec-Fetch-Site": "same-origin"}, "http://a.example/")
    False
    >>> cross_site({"Sec-Fetch-Site": "cross-site"}, "http://a.example/")
    True
    >>> cross_site({"Origin": "http://evil.example"}, "http://a.example/")
    True
    >>> cross_site({"Origin": "http://a.example"}, "http://a.example/"), cross_site({}, "x")
    (False, False)
    >>> cross_site({"Origin": "https://a.example"}, "http://a.example/")
    False
    >>> cross_site({"Origin": "null"}, "http://a.example/")
    True
    """
    fetch_site = headers.get("Sec-Fetch-Site")
    if fetch_site:
        return fetch_site not in ("same-origin", "none")
    origin = headers.get("Origin")
    if not origin:
        return False
    return urlsplit(origin).netloc != urlsplit(host_url).netloc


def csrf_token() -> str:
    """This session's CSRF token (made on first use)."""
    token = session.get(CSRF)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        session[CSRF] = token
    return token


def form_is_ours() -> bool:
    """Whether this POST is same-site and carries this session's CSRF token."""
    if cross_site(request.headers, request.host_url):
        return False
    expected = session.get(CSRF)
    sent = request.form.get(CSRF_FIELD, "")
    if not isinstance(expected, str) or not expected:
        return False
    return hmac.compare_digest(expected.encode(), sent.encode())


def signed_in() -> Caller | None:
    """The organization this browser signed in as, if its key still works; else None.

    A revoked key, an expired or malformed session clears the session.
    """
    org, key, since = session.get(ORG), session.get(KEY), session.get(SINCE)
    if not isinstance(org, int) or not isinstance(key, str) or not isinstance(since, int):
        return None
    age = datetime.now(UTC).timestamp() - since
    if not 0 <= age <= SESSION_HOURS * 3600:
        _forget()
        return None
    try:
        return organizations.resume(unit_of_work(), org, key)
    except Unauthorized:
        _forget()
        return None


def _forget() -> None:
    """Drop who signed in, and the CSRF token with it (a new one is made for the next form)."""
    session.clear()


def page(template: str, status: int, **view: Any) -> Response:
    """A signed-in page as an answer: the buyer's page's private headers, never cached."""
    body = render_template(
        template, t=strings.catalogue(), csrf_field=CSRF_FIELD, csrf=csrf_token(), **view
    )
    return private(current_app.response_class(body, status, mimetype="text/html"))


def refused() -> Response:
    """The answer to a form from another site, or one without this session's token."""
    text = strings.catalogue()
    return page(
        TEMPLATE,
        403,
        message=text("session.refused"),
        title=text("session.refused.heading"),
        key_max=KEY_MAX,
    )


def _form(status: int, message: str | None = None) -> Response:
    text = strings.catalogue()
    return page(TEMPLATE, status, message=message, title=text("sign_in.heading"), key_max=KEY_MAX)


@bp.get("/trades/sign-in")
def sign_in_form() -> Response:
    """The sign-in form; a browser already signed in goes to its trades."""
    if signed_in() is not None:
        return redirect(url_for("trade_pages.list_trades"), 303)
    return _form(200)


@bp.post("/trades/sign-in")
def sign_in() -> Response:
    """Check the API key typed; sign the organization in (a fresh session) or say no (401)."""
    if not form_is_ours():
        return refused()
    text = strings.catalogue()
    typed = request.form.get("api_key", "").strip()
    if not typed or len(typed) > KEY_MAX:
        return _form(401, text("sign_in.wrong_key"))
    try:
        caller = organizations.authenticate(unit_of_work(), typed)
    except Unauthorized:
        return _form(401, text("sign_in.wrong_key"))
    if caller.organization_id is None:  # an operator key: no trade details through the pages
        return _form(401, text("sign_in.not_an_organization"))
    # A new session, so that a cookie planted before sign-in (fixation) is worth nothing.
    session.clear()
    session[ORG] = caller.organization_id
    session[KEY] = caller.key_prefix
    session[SINCE] = int(datetime.now(UTC).timestamp())
    csrf_token()
    return redirect(url_for("trade_pages.list_trades"), 303)


@bp.post("/trades/sign-out")
def sign_out() -> Response:
    """Forget who signed in; back to the sign-in form."""
    if not form_is_ours():
        return refused()
    _forget()
    return redirect(url_for("sign_in.sign_in_form"), 303)
