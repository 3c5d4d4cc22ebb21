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
    headers = response.headers
    headers["Content-Security-Policy"] = content_security_policy(config.get("PUBLIC_RPC_URL"))
    # A SUN URL is single-use evidence: never cached, never sent on to another site.
    headers["Cache-Control"] = "no-store"
    headers["Referrer-Policy"] = "no-referrer"
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Vary"] = "Accept"
    return response
