"""Two runs on one data directory take turns: one run never loads another's staged users."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from evergreen_etl.datadir import DataDir
from evergreen_etl.datadir import lock as lock_module
from evergreen_etl.errors import ConcurrentLoadError
from evergreen_etl.failpoints import FAILPOINT_ENV, READY_ENV
from evergreen_etl.pipeline import run
from evergreen_etl.sample import SampleResult, generate_sample
from evergreen_etl.settings import Settings
from support.keys import TEST_KEY


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SampleResult:
    """Two snapshots of different sizes (the second has joiners)."""
    return generate_sample(
        tmp_path_factory.mktemp("sample"), users=80, postcodes=500, snapshots=2, seed=5
    )


def _start_run(
    data: Path, users: Path, lookup: Path, as_of: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "evergreen_etl", "run", "--data-dir", str(data)),
            *("--users-url", str(users), "--postcodes-url", str(lookup), "--as-of", as_of),
            *("--format", "json", "--log-format", "json"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "EVERGREEN_PSEUDONYM_KEY": TEST_KEY, **(env or {})},
    )


def _users_loaded(stderr: str) -> int:
    for line in stderr.splitlines():
        record = json.loads(line)
        if record.get("stage") == "load":
            return int(record["counts"]["users_in_snapshot"])
    raise AssertionError(f"no load line in: {stderr}")


def _records(path: Path) -> int:
    return path.read_text().count('"email"')


def test_overlapping_runs_each_load_their_own_snapshot(
    tmp_path: Path, sample: SampleResult
) -> None:
    """A run held between anonymise and load keeps a second run waiting: each loads its own."""
    data = tmp_path / "data"
    ready = tmp_path / "ready"
    first_users, second_users = sample.users_paths
    first = _start_run(
        data,
        first_users,
        sample.postcodes_path,
        "2024-01-01",
        env={FAILPOINT_ENV: "run.anonymised", READY_ENV: str(ready)},
    )
    deadline = time.monotonic() + 60
    while not ready.exists():
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline, "the first run never reached its failpoint"
        time.sleep(0.05)
    second = _start_run(data, second_users, sample.postcodes_path, "2024-04-01")
    time.sleep(2)  # the second run starts and, with the lock, waits for the first
    ready.unlink()  # the first run carries on to its load
    _, first_err = first.communicate(timeout=120)
    _, second_err = second.communicate(timeout=120)

    assert (first.returncode, second.returncode) == (0, 0), (first_err, second_err)
    assert _users_loaded(first_err) <= _records(first_users)
    assert _users_loaded(first_err) != _users_loaded(second_err)


@pytest.fixture
def held(tmp_path: Path) -> Iterator[Path]:
    """A data directory whose lock another holder (not this module) has taken."""
    data = tmp_path / "data"
    data.mkdir()
    fd = os.open(DataDir(data).run_lock, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield data
    finally:
        os.close(fd)


def test_a_run_gives_up_after_the_wait_with_a_clear_error(
    held: Path, sample: SampleResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While another run holds the data directory, a run waits, then fails naming it (exit 5)."""
    monkeypatch.setattr(lock_module, "LOCK_WAIT_SECONDS", 0.3)
    settings = Settings(
        data_dir=held,
        users_url=str(sample.users_paths[0]),
        postcodes_url=str(sample.postcodes_path),
        pseudonym_key=TEST_KEY,
    )

    with pytest.raises(
        ConcurrentLoadError, match=r"another run is using the data directory"
    ) as caught:
        run(settings, progress=False)

    assert str(held) in str(caught.value)
    assert caught.value.exit_code == 5
    assert not (held / "raw").exists()  # it waited before touching anything


def test_the_lock_is_reentrant_within_a_thread(tmp_path: Path) -> None:
    """A run inside a demo takes the lock its caller already holds without waiting."""
    with lock_module.data_dir_lock(tmp_path, wait=0), lock_module.data_dir_lock(tmp_path, wait=0):
        pass
