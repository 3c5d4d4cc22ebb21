"""The WSGI entry for gunicorn: `gunicorn -w 2 provenance_api.wsgi:app`.

An operator's mistake in the configuration (a bad `PROVENANCE_*` value, a missing secret, an
unreachable database or node) ends in one line naming it, not a traceback per worker.
"""

from __future__ import annotations

import sys

from provenance_api import chain, config, db
from provenance_api.app import create_app
from provenance_api.keys import KeyBoxError

# gunicorn's "worker failed to boot" status: the master then stops instead of respawning
# workers that would fail the same way.
WORKER_BOOT_ERROR = 3

try:
    app = create_app()
except (config.ConfigError, db.DatabaseError, chain.ChainError, KeyBoxError) as exc:
    print(f"provenance-api: {exc}", file=sys.stderr, flush=True)
    sys.exit(WORKER_BOOT_ERROR)
