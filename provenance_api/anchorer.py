"""The anchoring loop: close due batches (services.anchoring) until told to stop.

`provenance-api run` runs it in a thread next to the chain writer, `provenance-api worker` in
its own; any number may run at once over one database (their batches never share an event).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.engine import Engine

from provenance_api.models import utcnow
from provenance_api.services.anchoring import batch_due, close_due_batches
from provenance_api.unit_of_work import SqlUnitOfWork

log = logging.getLogger(__name__)


class Anchorer:
    """Closes due batches over `engine`; owed anchors are signed by `sender`'s chain writer."""

    def __init__(
        self, engine: Engine, sender: Callable[[], str], config: Mapping[str, Any]
    ) -> None:
        self.engine = engine
        self.sender = sender
        self.max_count = int(config["ANCHOR_BATCH_MAX"])
        self.max_age_seconds = float(config["ANCHOR_MAX_AGE_SECONDS"])
        # Look often enough that a batch closes close to its age.
        self.poll_seconds = min(0.5, max(0.05, self.max_age_seconds / 4))

    def tick(self) -> int:
        """Close every batch due now; how many."""
        # Look first without the write lock: on SQLite a writing unit holds it from BEGIN, and
        # an idle poll every half second would make every request wait behind it.
        peek = SqlUnitOfWork(self.engine, writes=False)
        limits = {"max_count": self.max_count, "max_age_seconds": self.max_age_seconds}
        if not batch_due(peek, now=utcnow(), **limits):
            return 0
        return close_due_batches(
            SqlUnitOfWork(self.engine, sender=self.sender),
            now=utcnow,
            max_count=self.max_count,
            max_age_seconds=self.max_age_seconds,
        )

    def run(self, stop: threading.Event) -> None:
        """Tick until `stop` is set; an error is logged and the next tick tries again."""
        while not stop.is_set():
            try:
                closed = self.tick()
                if closed:
                    log.info("anchoring: closed %d batch(es)", closed)
            except Exception:
                log.exception("anchoring tick failed; retrying")
            stop.wait(self.poll_seconds)
