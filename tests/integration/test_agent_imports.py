"""The reader agent's core stays light: what importing it loads, and what that costs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CORE = "reader_agent.config, reader_agent.context, reader_agent.events, reader_agent.outbox"
HEAVY = ("eth_account", "eth_utils", "pydantic", "eth_abi", "flask", "sqlalchemy", "web3")
RSS_LIMIT_MB = 40  # of the daemon's 60 MB; measured ~28 MB (~33 MB where rich is installed)

PROBE = f"""
import json, sys
import {CORE}, reader_agent.uploader
# VmHWM: the peak resident set of this program (ru_maxrss would keep the forking parent's).
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
print(json.dumps({{
    "loaded": sorted(m for m in {HEAVY!r} if m in sys.modules),
    "rss_mb": int(status["VmHWM"].split()[0]) / 1024,
}}))
"""


def test_importing_the_agent_core_loads_no_heavy_package() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO, capture_output=True, text=True, check=True
    )
    found = json.loads(result.stdout)
    print(f"agent core imports: {found['rss_mb']:.1f} MB resident")
    assert found["loaded"] == []
    assert found["rss_mb"] < RSS_LIMIT_MB
