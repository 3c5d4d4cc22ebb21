"""Trust material cached from the API: which supplier address signs each GTIN.

`fetch_suppliers` pages through `GET /v1/trust`; `save_cache` and `load_cache` keep the
answer in a small JSON file, so that a device that starts offline still checks tags;
`TrustCache` holds the table in force and refreshes it from a thread.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from reader_agent.files import replace_file

TRUST_PATH = "/v1/trust"
PAGE_LIMIT = 200  # the API's maximum page
REFRESH_SECONDS = 3600.0
RETRY_SECONDS = 60.0
PAGES_MAX = 10_000  # 2 million GTINs: a loop guard against an API that never says "last page"

log = logging.getLogger("reader_agent.trust")


def fetch_suppliers(client: httpx.Client, *, page_limit: int = PAGE_LIMIT) -> dict[str, str]:
    """Every GTIN the API knows, with its supplier's signing address (raises httpx errors)."""
    suppliers: dict[str, str] = {}
    after: str | None = None
    for _ in range(PAGES_MAX):
        params: dict[str, str | int] = {"limit": page_limit}
        if after is not None:
            params["after"] = after
        response = client.get(TRUST_PATH, params=params)
        response.raise_for_status()
        page = response.json()
        for item in page["items"]:
            suppliers[str(item["gtin"])] = str(item["supplier_address"])
        after = page.get("next")
        if after is None:
            return suppliers
    raise ValueError(f"{TRUST_PATH} did not end after {PAGES_MAX} pages")


def save_cache(path: Path, suppliers: dict[str, str], fetched_at: float) -> None:
    """Replace the cache file atomically and durably."""
    text = json.dumps({"fetched_at": fetched_at, "suppliers": suppliers}, sort_keys=True)
    replace_file(path, text, durable=True)


def load_cache(path: Path) -> tuple[dict[str, str], float | None]:
    """The cached table and when it was fetched; empty when there is no usable cache."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        suppliers = document["suppliers"]
        if not isinstance(suppliers, dict):
            raise TypeError("suppliers is not an object")
        return {str(k): str(v) for k, v in suppliers.items()}, float(document["fetched_at"])
    except FileNotFoundError:
        return {}, None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("trust cache %s unusable, ignored: %s", path, exc)
        return {}, None


class TrustCache:
    """The supplier table in force: loaded from the cache file, refreshed from the API."""

    def __init__(
        self, path: Path, client: httpx.Client, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.path = path
        self.client = client
        self._clock = clock
        self.suppliers, self.fetched_at = load_cache(path)
        self.error: str | None = None

    def refresh(self) -> bool:
        """Fetch the table from the API and cache it; False (and `error` set) if that failed."""
        try:
            suppliers = fetch_suppliers(self.client)
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            self.error = f"trust refresh failed: {type(exc).__name__}: {exc}"
            log.warning("%s; using the cache of %d GTINs", self.error, len(self.suppliers))
            return False
        now = self._clock()
        try:
            save_cache(self.path, suppliers, now)
        except OSError as exc:
            log.warning("cannot write the trust cache %s: %s", self.path, exc.strerror)
        # One assignment: a scan thread sees the old table or the new one.
        self.suppliers, self.fetched_at, self.error = suppliers, now, None
        log.info("trust refreshed: %d GTINs", len(suppliers))
        return True

    def run(self, stop: threading.Event) -> None:
        """Refresh now, then every hour (a minute after a failure) until `stop` is set."""
        while not stop.is_set():
            ok = self.refresh()
            stop.wait(REFRESH_SECONDS if ok else RETRY_SECONDS)

    def state(self) -> dict[str, object]:
        """What `status` shows."""
        return {"gtins": len(self.suppliers), "fetched_at": self.fetched_at, "error": self.error}
