"""Fixtures for CLI tests: a runner that keeps stdout and stderr apart, and sample sources."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from evergreen_etl.sample import SampleResult, generate_sample


@pytest.fixture
def runner() -> CliRunner:
    """A CliRunner; result.stdout and result.stderr are captured separately."""
    return CliRunner()


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SampleResult:
    """Generated sources with every kind of mess, two snapshots."""
    directory = tmp_path_factory.mktemp("sample")
    return generate_sample(directory, users=400, postcodes=4000, snapshots=2, seed=7)


@pytest.fixture
def key_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fixed key in the environment, as a deployment would give it."""
    from support.keys import TEST_KEY

    monkeypatch.setenv("EVERGREEN_PSEUDONYM_KEY", TEST_KEY)


def data_dir(tmp_path: Path) -> str:
    """The data dir for one test."""
    return str(tmp_path / "data")
