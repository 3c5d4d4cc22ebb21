"""secrets.json as an attacker with write access to DATA_DIR, or many processes at once, meet it.

The file is created under a lock, exclusively, never through a link, with mode 0600; a file
that other users can read is refused.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import stat

import pytest

from provenance_api import config
from provenance_api.cli import prepare_run

STARTS = 30

# What the old code wrote through before renaming: a fixed name an attacker could prepare.
OLD_TEMPORARY = "secrets.tmp"


def _first_start(data_dir: str, barrier, results) -> None:  # type: ignore[no-untyped-def]
    # One process doing what `provenance-api run` does first, released with all the others.
    for name in config.SECRET_SETTINGS:
        os.environ.pop(f"PROVENANCE_{name}", None)
    os.environ["PROVENANCE_DATA_DIR"] = data_dir
    barrier.wait(timeout=120)
    try:
        app = prepare_run()
    except BaseException as exc:
        results.put({"error": f"{type(exc).__name__}: {exc}"})  # the parent must not wait
        raise
    results.put({name: app.config[name] for name in config.SECRET_SETTINGS})
    app.extensions["provenance"].close()


@pytest.mark.slow
def test_simultaneous_first_starts_agree_on_the_secrets_on_disk(tmp_path):
    data_dir = tmp_path / "data"
    # Forked from a fresh single-threaded server that imported the app once: real processes,
    # without paying 30 interpreter start-ups on a small CI machine.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["provenance_api.cli"])
    barrier = context.Barrier(STARTS)
    results = context.Queue()
    processes = [
        context.Process(target=_first_start, args=(str(data_dir), barrier, results))
        for _ in range(STARTS)
    ]
    for process in processes:
        process.start()
    used = [results.get(timeout=300) for _ in processes]
    for process in processes:
        process.join(timeout=60)

    path = data_dir / config.SECRETS_FILE
    on_disk = json.loads(path.read_text())
    assert set(on_disk) == set(config.SECRET_SETTINGS)
    assert [secrets for secrets in used if secrets != on_disk] == []
    assert [process.exitcode for process in processes] == [0] * STARTS
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in data_dir.iterdir()) == [config.SECRETS_FILE, config.SECRETS_LOCK]


def test_a_planted_link_at_the_temporary_name_is_not_followed(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    stolen = tmp_path / "attacker-readable"
    (data_dir / OLD_TEMPORARY).symlink_to(stolen)

    path, created = config.ensure_secrets(data_dir)

    assert created
    assert not stolen.exists()
    assert not path.is_symlink()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert set(json.loads(path.read_text())) == set(config.SECRET_SETTINGS)


def test_a_stale_world_readable_temporary_file_does_not_lend_its_mode(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    stale = data_dir / OLD_TEMPORARY
    stale.write_text("")
    stale.chmod(0o644)

    path, created = config.ensure_secrets(data_dir)

    assert created
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stale.read_text() == ""  # left alone, and nothing secret went into it


def test_a_planted_link_as_the_secrets_file_is_refused(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    planted = tmp_path / "attacker-secrets.json"
    planted.write_text(json.dumps(config.new_secrets()))
    planted.chmod(0o600)
    (data_dir / config.SECRETS_FILE).symlink_to(planted)

    with pytest.raises(config.ConfigError, match="symbolic link"):
        config.build({"DATA_DIR": str(data_dir)})
    with pytest.raises(config.ConfigError, match="symbolic link"):
        config.ensure_secrets(data_dir)


def test_a_dangling_link_as_the_secrets_file_is_not_written_through(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    stolen = tmp_path / "attacker-readable"
    (data_dir / config.SECRETS_FILE).symlink_to(stolen)

    with pytest.raises(config.ConfigError, match="symbolic link"):
        config.ensure_secrets(data_dir)
    assert not stolen.exists()


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_a_secrets_file_open_to_others_is_refused_with_the_fix(tmp_path, mode):
    path, _ = config.ensure_secrets(tmp_path)
    path.chmod(mode)

    with pytest.raises(config.ConfigError) as error:
        config.build({"DATA_DIR": str(tmp_path)})
    assert f"chmod 600 {path}" in str(error.value)
    assert f"{mode:04o}" in str(error.value)

    path.chmod(0o600)
    assert config.build({"DATA_DIR": str(tmp_path)})["OPERATOR_KEY"]


def test_complete_secrets_are_not_rewritten(tmp_path):
    path, created = config.ensure_secrets(tmp_path)
    assert created
    before = path.stat()
    assert config.ensure_secrets(tmp_path) == (path, False)
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_a_missing_secret_is_added_and_the_others_kept(tmp_path):
    path = tmp_path / config.SECRETS_FILE
    path.write_text(json.dumps({"SECRET_KEY": "kept"}))
    path.chmod(0o600)

    _, created = config.ensure_secrets(tmp_path)

    stored = json.loads(path.read_text())
    assert created
    assert stored["SECRET_KEY"] == "kept"
    assert set(stored) == set(config.SECRET_SETTINGS)
