"""The composition root: `create_app` picks the configuration and adapters, wires blueprints."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask

from provenance_api import config
from provenance_api.api import errors, health
from provenance_api.api.deps import EXTENSION, Runtime


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: defaults, then PROVENANCE_* variables, then `test_config`.

    Outside testing it refuses to start without SECRET_KEY, OPERATOR_KEY and
    KEY_ENCRYPTION_KEY (config.ConfigError names what is missing).
    """
    settings = config.build(test_config)
    if settings.get("TESTING"):
        # Tests get throwaway secrets rather than a reason to write real ones anywhere.
        for name, value in config.new_secrets().items():
            if not settings.get(name):
                settings[name] = value
    else:
        config.require_secrets(settings)
    app = Flask(__name__)
    app.config.update(settings)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions[EXTENSION] = Runtime(app.config)
    errors.register(app)
    app.register_blueprint(health.bp)
    logging.getLogger("provenance_api").setLevel(logging.INFO)
    return app
