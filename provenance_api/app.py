"""The composition root: `create_app` picks the configuration and adapters, wires blueprints."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask, request
from flask_openapi3 import Info, OpenAPI

from provenance_api import config
from provenance_api.api import (
    api_keys,
    arbiters,
    claim_pages,
    claims,
    devices,
    docs,
    epcis,
    errors,
    events,
    frame,
    health,
    items,
    me,
    organizations,
    products,
    sign_in,
    sun_keys,
    trade_details,
    trade_pages,
    trades,
    transfers,
    trust,
    verification,
)
from provenance_api.api.deps import EXTENSION, Runtime
from provenance_api.schemas import ErrorBody
from provenance_api.services.ports import UnitOfWork
from provenance_api.unit_of_work import SqlUnitOfWork

API_TITLE = "Provenance API"
API_VERSION = "1"


def create_app(
    test_config: Mapping[str, Any] | None = None,
    *,
    unit_of_work: Callable[[], UnitOfWork] | None = None,
) -> Flask:
    """Build the app: defaults, then PROVENANCE_* variables, then `test_config`.

    Outside testing it refuses to start without SECRET_KEY, OPERATOR_KEY and
    KEY_ENCRYPTION_KEY (config.ConfigError names what is missing). `unit_of_work` replaces the
    SQL adapter (tests pass the in-memory fake).
    """
    settings = config.build(test_config)
    if settings.get("TESTING"):
        # Tests get throwaway secrets rather than a reason to write real ones anywhere.
        for name, value in config.new_secrets().items():
            if not settings.get(name):
                settings[name] = value
    else:
        config.require_secrets(settings)
    app = OpenAPI(
        __name__,
        # The buyer's page (the resolver's answer to a browser) and its own assets: /static/.
        static_folder="web/static",
        template_folder="web/templates",
        info=Info(title=API_TITLE, version=API_VERSION),
        security_schemes=frame.SECURITY_SCHEMES,
        validation_error_model=ErrorBody,
        validation_error_callback=errors.validation_response,
        doc_ui=False,  # /docs is ours (api/docs.py), from vendored files
    )
    # flask-openapi3's own `openapi` command would write the document in another layout than
    # the committed one; `python -m provenance_api.api.docs` is the one way to regenerate it.
    app.cli.commands.pop("openapi", None)
    app.config.update(settings)
    app.json = frame.JsonProvider(app)
    runtime = Runtime(app.config)
    app.extensions[EXTENSION] = runtime
    frame.install(app, unit_of_work or (lambda: _sql_unit_of_work(runtime)))
    errors.register(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(docs.bp)
    for module in (
        me,
        api_keys,
        organizations,
        products,
        items,
        sun_keys,
        devices,
        events,
        transfers,
        trust,
        epcis,
        claims,
        trades,
        trade_details,
    ):
        app.register_api(module.bp)
    # Verification (issue 10): public /v1/verify, the GS1 resolver, the supplier's item status.
    app.register_api(verification.public)
    app.register_api(verification.bp)
    app.register_blueprint(verification.resolver)
    # Claims (issue 11): a buyer, who has no key, claims an item with the seller's code.
    app.register_api(claims.public)
    app.register_blueprint(claim_pages.bp)  # and the buyer's claim form, as web pages
    # Trades (issue 12): arbiters' profiles are public, so parties can choose before paying.
    frame.register_sharing_paths(app, arbiters.bp, arbiters.public)
    # The parties' and arbiters' pages, signed in with an API key once.
    sign_in.install(app)
    app.register_blueprint(sign_in.bp)
    app.register_blueprint(trade_pages.bp)
    logging.getLogger("provenance_api").setLevel(logging.INFO)
    return app


def _sql_unit_of_work(runtime: Runtime) -> SqlUnitOfWork:
    """A unit of work for this request; owed chain writes are signed by the operator key."""
    return SqlUnitOfWork(runtime.engine, writes=_writes(), sender=lambda: runtime.operator.address)


def _writes() -> bool:
    """Whether the current request may write: reads never wait for SQLite's write lock."""
    if request.endpoint in verification.WRITING_READS:
        return True  # a check records its scan and advances a SUN counter
    if request.endpoint in trade_details.WRITING_READS:
        return True  # a read of a trade's details is logged
    if request.endpoint in trades.WRITING_READS:
        return True  # a read of a trade refreshes its cached chain state
    if request.endpoint in trade_pages.WRITING_READS:
        return True  # the trade pages read the details, and so log that read
    return request.method not in ("GET", "HEAD", "OPTIONS")
