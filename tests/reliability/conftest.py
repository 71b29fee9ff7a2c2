"""Fixtures for the fault battery: instant, exact backoff; a fixed key; a CLI runner."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from evergreen_etl.extract import retry
from support.keys import TEST_KEY


class _UpperJitter:
    """Stands in for ``random`` in the retry module: jitter always at its upper bound."""

    @staticmethod
    def uniform(low: float, high: float) -> float:
        return high


@pytest.fixture(autouse=True)
def backoff_delays(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits between retries, recorded instead of slept; jitter pinned so they are exact."""
    delays: list[float] = []
    monkeypatch.setattr(retry, "sleep", delays.append)
    monkeypatch.setattr(retry, "random", _UpperJitter())
    return delays


@pytest.fixture(autouse=True)
def key_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fixed pseudonym key in the environment, as a deployment gives it."""
    monkeypatch.setenv("EVERGREEN_PSEUDONYM_KEY", TEST_KEY)


@pytest.fixture
def runner() -> CliRunner:
    """A CliRunner; result.stdout and result.stderr are captured apart."""
    return CliRunner()
