"""Fixtures for the delivery tests: the repository's files and a wheel built once per session."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The checkout the tests run from."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def wheel_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding the one wheel `python -m build --wheel` makes from this checkout."""
    out = tmp_path_factory.mktemp("wheel")
    built = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(REPO_ROOT)],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert built.returncode == 0, f"wheel build failed:\n{built.stdout[-3000:]}{built.stderr}"
    assert len(list(out.glob("evergreen_etl-*.whl"))) == 1
    return out


@pytest.fixture(scope="session")
def wheel_path(wheel_dir: Path) -> Path:
    """The built wheel file."""
    return next(wheel_dir.glob("evergreen_etl-*.whl"))
