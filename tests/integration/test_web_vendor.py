"""The vendored crypto bundle is exactly what the pinned npm packages build, and stays small."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from tests.conftest import unavailable

WEB = Path(__file__).resolve().parents[2] / "provenance_api" / "web"
VENDOR = WEB / "static" / "vendor"
PINNED = ("@noble/hashes", "@noble/curves", "esbuild")
# proof.js loads on every buyer page; the crypto only when the buyer asks for the check.
PROOF_JS_MAX_BYTES = 22_000
VENDOR_MAX_BYTES = 50_000


def test_rebuild_is_byte_identical(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        unavailable("node is not installed")
    if not (WEB / "node_modules" / "esbuild").exists():
        unavailable("provenance_api/web/node_modules is missing (run npm ci there)")
    result = subprocess.run(
        [node, "build.mjs", "--out", str(tmp_path)],
        cwd=WEB,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in VENDOR.iterdir())
    for path in VENDOR.iterdir():
        assert (tmp_path / path.name).read_bytes() == path.read_bytes(), path.name


def test_versions_are_pinned_exactly_and_named_in_the_bundle() -> None:
    manifest = json.loads((WEB / "package.json").read_text("utf-8"))
    lock = json.loads((WEB / "package-lock.json").read_text("utf-8"))
    header = (VENDOR / "noble.js").read_text("utf-8").splitlines()[0]
    for name in PINNED:
        version = manifest["devDependencies"][name]
        assert version.count(".") == 2 and version.replace(".", "").isdigit(), (name, version)
        assert lock["packages"][f"node_modules/{name}"]["version"] == version
        assert f"{name} {version}" in header
    assert "dependencies" not in manifest  # nothing of npm's runs in the service


def test_the_scripts_stay_small() -> None:
    assert (WEB / "static" / "proof.js").stat().st_size <= PROOF_JS_MAX_BYTES
    assert (VENDOR / "noble.js").stat().st_size <= VENDOR_MAX_BYTES
