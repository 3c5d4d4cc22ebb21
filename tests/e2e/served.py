"""An app served on a real loopback port, in a thread of this process (werkzeug)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask
from werkzeug.serving import make_server


@contextmanager
def served(app: Flask, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve `app` on a free port until the block ends; its base URL ("http://host:port")."""
    server = make_server(host, 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="served-app", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()
