"""The buyer's page as an HTTP answer: the template, its data for proof.js, and its headers.

The app serves web/static/ as /static/ and finds web/templates/ (create_app).

The resolver route (api/verification.py) checks the item once and calls `verification_page`
with the answer; this module never checks anything itself.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Response, current_app, render_template, request

from provenance_api.api.deps import ledger
from provenance_api.schemas import Verification
from provenance_api.web import page, strings

TEMPLATE = "verification.html"
PREVIEW_TEMPLATE = "preview.html"


def content_security_policy(rpc_url: str | None) -> str:
    """The page's CSP: its own site only, plus the public JSON-RPC endpoint for proof.js.

    >>> content_security_policy(None).split("; ")[:3]
    ["default-src 'none'", "script-src 'self'", "style-src 'self'"]
    >>> "connect-src 'self' https://rpc.example" in content_security_policy(
    ...     "https://rpc.example/v1/key")
    True
    """
    connect = "'self'"
    if rpc_url:
        parts = urlsplit(rpc_url)
        connect += f" {parts.scheme}://{parts.netloc}"
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self'",
            f"connect-src {connect}",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


def _chain() -> dict[str, Any]:
    """The chain's public endpoint, id and CustodyLedger address, for proof.js (None if unknown)."""
    domain = ledger()
    return {
        "rpc_url": current_app.config.get("PUBLIC_RPC_URL") or None,
        "chain_id": domain[0] if domain else None,
        "ledger": domain[1] if domain else None,
    }


# Link-preview fetchers of chat apps and social sites (their User-Agent tokens). They fetch a
# shared link before the person it was sent to opens it; checking there would spend an NTAG 424
# DNA tap's counter, and the buyer's own tap would then read as a replay.
LINK_PREVIEWERS = (
    "facebookexternalhit",
    "facebot",
    "twitterbot",
    "slackbot",
    "whatsapp",
    "telegrambot",
    "discordbot",
    "linkedinbot",
    "skypeuripreview",
    "viber",
    "redditbot",
    "pinterest",
    "vkshare",
    "iframely",
    "embedly",
    "mastodon",
    "snapchat",
    "google-pagerenderer",
)


def is_link_preview(user_agent: str) -> bool:
    """Whether the request comes from a chat app's or a site's link-preview fetcher.

    >>> is_link_preview("WhatsApp/2.23.20.0 A"), is_link_preview("Slackbot-LinkExpanding 1.0")
    (True, True)
    >>> is_link_preview("Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/131.0")
    False
    """
    agent = user_agent.lower()
    return any(token in agent for token in LINK_PREVIEWERS)


def preview_page() -> Response:
    """A page that checks nothing: for HEAD requests and link previews, so no tap is spent."""
    body = render_template(PREVIEW_TEMPLATE, t=strings.catalogue())
    return private(current_app.response_class(body, 200, mimetype="text/html"))


def verification_page(found: Verification, status: int = 200) -> Response:
    """The page for `found`, with the data proof.js needs and headers that keep it private."""
    config = current_app.config
    text = strings.catalogue()
    chain = _chain()
    shown = page.page(found, text, config.get("EXPLORER_TX_URL") or None, request.host)
    body = render_template(
        TEMPLATE,
        p=shown,
        t=text,
        proof_data={"verification": found.model_dump(mode="json"), "chain": chain},
        proof_strings=text.proof_script(),
    )
    response = current_app.response_class(body, status, mimetype="text/html")
    response.headers["Vary"] = "Accept, User-Agent"
    return private(response, config.get("PUBLIC_RPC_URL") or None)


def private(response: Response, rpc_url: str | None = None) -> Response:
    """The headers every buyer's page carries: its own site only (and `rpc_url` to connect
    to), never cached, never named to another site.

    A SUN URL is single-use evidence, and a claim page may hold a code or a new keystore.
    """
    headers = response.headers
    headers["Content-Security-Policy"] = content_security_policy(rpc_url)
    headers["Cache-Control"] = "no-store"
    headers["Referrer-Policy"] = "no-referrer"
    headers["X-Content-Type-Options"] = "nosniff"
    return response
