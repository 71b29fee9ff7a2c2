"""Everything a run leaves under DATA_DIR is its owner's only: files 0600, directories 0700."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from evergreen_etl.sample import SampleResult, generate_sample
from support.keys import TEST_KEY

# The run happens in a child process, so that its umask is the one under test.
RUN = """
import os, sys
os.umask(int(sys.argv[1], 8))
from evergreen_etl.cli import main
sys.argv = ["evergreen-etl", *sys.argv[2:]]
main()
"""


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SampleResult:
    """Two small snapshots, outside any data directory."""
    return generate_sample(
        tmp_path_factory.mktemp("sample"), users=60, postcodes=400, snapshots=2, seed=3
    )


def _modes(root: Path) -> dict[str, str]:
    """Every path under ``root`` (and root) whose mode is not private, with that mode."""
    loose: dict[str, str] = {}
    for path in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        wanted = 0o700 if path.is_dir() else 0o600
        if mode != wanted:
            loose[str(path.relative_to(root.parent))] = oct(mode)
    return loose


def _cli(umask: str, *args: str, env: dict[str, str] | None = None) -> None:
    done = subprocess.run(
        [sys.executable, "-c", RUN, umask, *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, **(env or {})},
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("umask", ["022", "000", "277"])
def test_every_file_of_a_run_is_private(tmp_path: Path, sample: SampleResult, umask: str) -> None:
    """After two runs (WAL and SHM still there between them), every file is 0600, dirs 0700."""
    data = tmp_path / "data"
    for k, users in enumerate(sample.users_paths):
        _cli(
            umask,
            *("run", "--data-dir", str(data), "--users-url", str(users)),
            *("--postcodes-url", str(sample.postcodes_path), "--as-of", f"2024-0{k + 1}-01", "-q"),
        )
        names = {p.name for p in data.rglob("*")}
        assert {"warehouse.db", "users.csv", "pseudonym.key"} <= names

    assert _modes(data) == {}


def test_every_file_of_the_demo_is_private(tmp_path: Path) -> None:
    """The demo's generated sources under raw/sample are private too."""
    data = tmp_path / "data"
    _cli("022", "demo", "--data-dir", str(data), "--users", "50", "--postcodes", "300", "-q")

    assert (data / "raw" / "sample").is_dir()
    assert _modes(data) == {}


def test_a_configured_key_is_not_written(tmp_path: Path, sample: SampleResult) -> None:
    """With the key in the environment no key file appears, and the rest is still private."""
    data = tmp_path / "data"
    _cli(
        "022",
        *("run", "--data-dir", str(data), "--users-url", str(sample.users_paths[0])),
        *("--postcodes-url", str(sample.postcodes_path), "-q"),
        env={"EVERGREEN_PSEUDONYM_KEY": TEST_KEY},
    )

    assert not (data / "pseudonym.key").exists()
    assert _modes(data) == {}


OPEN_WAREHOUSE = """
import os, stat, sys
from pathlib import Path
from sqlalchemy import text
os.umask(0o022)
from evergreen_etl.warehouse.engine import make_engine
db = Path(sys.argv[1])
engine = make_engine(f"sqlite:///{db}")
with engine.begin() as conn:
    conn.execute(text("CREATE TABLE t (x INTEGER)"))
    conn.execute(text("INSERT INTO t VALUES (1)"))
    for suffix in ("", "-wal", "-shm"):
        path = Path(str(db) + suffix)
        print(suffix or "db", oct(stat.S_IMODE(path.stat().st_mode)))
"""


def test_sqlite_wal_and_shm_files_are_private(tmp_path: Path) -> None:
    """While the warehouse is open, warehouse.db and its -wal and -shm files are 0600."""
    done = subprocess.run(
        [sys.executable, "-c", OPEN_WAREHOUSE, str(tmp_path / "new" / "warehouse.db")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["db", "0o600", "-wal", "0o600", "-shm", "0o600"]
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o700
