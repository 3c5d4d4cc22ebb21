"""Fixtures shared by the API tests."""

from __future__ import annotations

import pytest

from tests.integration.api_support import make_api


@pytest.fixture
def api(tmp_path):
    """The API on a migrated SQLite database (tests/integration/api_support.Api)."""
    made = make_api("sqlite", tmp_path)
    yield made
    made.app.extensions["provenance"].close()
