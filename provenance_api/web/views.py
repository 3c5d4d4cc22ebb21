"""The buyer's page as an HTTP answer: the template, its data for proof.js, and its headers.

The app serves web/static/ as /static/ and finds web/templates/ (create_app).

The resolver route (api/verification.py) checks the item once and calls `verification_page`
with the answer; this module never checks anything itself.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Response, current_app, render_template, request
from sqlmodel import Session

from provenance_api.api.deps import runtime
from provenance_api.schemas import Verification
from provenance_api.services.deployments import known_addresses
from provenance_api.web import page, strings

log = logging.getLogger(__name__)

TEMPLATE = "verification.html"
PROOF_JS = "proof.js"  # written by the "verify it yourself" work; included only when present
LEDGER = "CustodyLedger"
_CHAIN = "provenance.web.chain"
LOOK_AGAIN_SECONDS = 60.0


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
    """The chain id and the CustodyLedger address (None if unknown), read once per process.

    Before the contracts are deployed the address is looked for again at most once a minute,
    so that a page never waits on the chain for it.
    """
    known: dict[str, Any] = current_app.extensions.setdefault(_CHAIN, {"looked": -math.inf})
    if known.get("ledger") is None and time.monotonic() - known["looked"] > LOOK_AGAIN_SECONDS:
        known["looked"] = time.monotonic()
        rt = runtime()
        try:
            if known.get("chain_id") is None:
                known["chain_id"] = int(rt.w3.eth.chain_id)
            with Session(rt.engine) as session:
                known["ledger"] = known_addresses(session, known["chain_id"]).get(LEDGER)
        except Exception:  # a page without the chain's details beats no page
            log.warning("page: chain details unavailable", exc_info=True)
    return {
        "rpc_url": current_app.config.get("PUBLIC_RPC_URL") or None,
        "chain_id": known.get("chain_id"),
        "ledger": known.get("ledger"),
    }


def _has_proof_js() -> bool:
    folder = current_app.static_folder
    return folder is not None and (Path(folder) / PROOF_JS).is_file()


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
        proof_js=_has_proof_js(),
        proof_data={"verification": found.model_dump(mode="json"), "chain": chain},
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
