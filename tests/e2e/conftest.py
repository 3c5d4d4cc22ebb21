"""The browser tier: Debian's chromium driven by Playwright (pytest-playwright's fixtures).

Nothing is downloaded at test time: the browser is /usr/bin/chromium (the `chromium` Debian
package, installed by .ci/run), passed to Playwright as its executable. A machine without it
skips these tests locally and fails them in CI (tests/conftest.py `unavailable`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import unavailable

CHROMIUM = Path(os.environ.get("PROVENANCE_TEST_CHROMIUM", "/usr/bin/chromium"))
PHONE = {"width": 360, "height": 800}  # a small phone, in CSS pixels


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """Launch Debian's chromium rather than a browser Playwright would download."""
    if not CHROMIUM.exists():
        unavailable(f"chromium not installed at {CHROMIUM} (apt-get install chromium)")
    return {**browser_type_launch_args, "executable_path": str(CHROMIUM)}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    """Every page opens at phone size."""
    return {**browser_context_args, "viewport": PHONE}
