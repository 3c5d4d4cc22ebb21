"""The API under gunicorn, started by `provenance-api serve` after the settings are checked."""

from __future__ import annotations

from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from provenance_api.app import create_app


class GunicornServer(BaseApplication):
    """gunicorn with its options given in code; each worker builds its own app after the fork."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for name, value in self.options.items():
            self.cfg.set(name, value)

    def load(self) -> Flask:
        return create_app()


def serve(bind: str, workers: int) -> None:
    """Serve until gunicorn is told to stop (SIGTERM, SIGINT)."""
    options = {
        "bind": bind,
        "workers": workers,
        "proc_name": "provenance-api",
        "timeout": 120,  # a 10,000-item registration is one request
        # gunicorn's control socket sits at one path in $HOME: a service user may have no
        # writable home, and two servers on one host would share it. Nothing here uses it.
        "control_socket_disable": True,
    }
    GunicornServer(options).run()
